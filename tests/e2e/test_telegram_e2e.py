"""Telegram end to end: the real stack with its Telegram channel pointed at a fake Bot API.

Telegram's side is played by tests/fake_telegram.py: updates (real Update JSON) are POSTed
to the Rasa server's Telegram webhook with the secret header — or served to the long-polling
runner — and the bot's answers are read from the sendMessage calls the fake server records.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import pytest
import requests

from bot.core.catalog import load_catalog
from bot.plugins.channels.telegram import TelegramSettings
from bot.plugins.channels.telegram_poll import poll
from bot.tools.runner import Stack
from tests.e2e.channel_customers import UPDATE_IDS, TelegramCustomer, webhook_url
from tests.fakes.fake_telegram import TOKEN, FakeBotApi, text_update
from tests.stack import TELEGRAM_SECRET, Api

CATALOG = load_catalog()
ANSWERS = {"customer_name": "陈伟明", "address": "龙湖区长平路88号3栋502"}


def asked_field(replies: List[Dict[str, Any]]) -> Optional[str]:
    """The detail asked; for a joint question with the phone (「姓名和联系电话」), the phone: the
    customer taps 分享手机号 and is asked the other detail next."""
    text = "\n".join(r.get("text", "") for r in replies)
    if any(j.ask in text and "phone" in j.fields for j in CATALOG.ask_together):
        return "phone"
    return next((name for name, f in CATALOG.fields.items() if f.ask in text), None)


@pytest.fixture
def tg_customer(stack: Stack, fake_telegram: FakeBotApi) -> TelegramCustomer:
    return TelegramCustomer(stack, fake_telegram)


def test_a_customer_files_a_request_in_telegram(tg_customer: TelegramCustomer, api: Api) -> None:
    """Text, the contact button for the phone, inline buttons — and a ticket at the end."""
    replies = tg_customer.say("你好，我新买的房子要装个电表，想报装用电")
    saw_phone_keyboard = False
    for _ in range(8):
        if any(
            "inline_keyboard" in r.get("reply_markup", {}) and "确认提交" in str(r["reply_markup"])
            for r in replies
        ):
            break
        asked = asked_field(replies)
        assert asked is not None, f"bot asked nothing recognisable: {replies}"
        if asked == "phone":
            keyboard = replies[-1]["reply_markup"]["keyboard"]
            assert keyboard == [[{"text": "分享手机号", "request_contact": True}]]
            saw_phone_keyboard = True
            replies = tg_customer.share_contact("+86 138 1234 5678")
        elif CATALOG.fields[asked].buttons:
            replies = tg_customer.press(replies, CATALOG.fields[asked].buttons[0])
        else:
            replies = tg_customer.say(ANSWERS[asked])
    assert saw_phone_keyboard
    replies = tg_customer.press(replies, "确认提交")
    assert "GD" in "\n".join(r["text"] for r in replies)
    [ticket] = api.tickets(tg_customer.sender_id)
    assert ticket["category"] == "new_connection"
    assert ticket["channel"] == "telegram"
    assert ticket["details"]["phone"] == "13812345678"
    acknowledged = tg_customer.fake.sent("answerCallbackQuery")
    assert f"q{tg_customer.chat_id}" in [c["callback_query_id"] for c in acknowledged]


def test_wrong_secret_token_is_rejected(tg_customer: TelegramCustomer) -> None:
    update = text_update(next(UPDATE_IDS), tg_customer.chat_id, "你好")
    assert tg_customer.send(update, secret="not-the-secret").status_code == 403
    assert tg_customer.send(update, secret=None).status_code == 403
    assert tg_customer.fake.sent(chat_id=tg_customer.chat_id) == []


def test_a_redelivered_update_is_answered_once(tg_customer: TelegramCustomer) -> None:
    update = text_update(next(UPDATE_IDS), tg_customer.chat_id, "你好")
    first = tg_customer.replies_to(update)
    assert first, "no answer to the first delivery"
    again = tg_customer.send(update)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert len(tg_customer.fake.sent(chat_id=tg_customer.chat_id)) == len(first)


def test_messages_pushed_by_rasa_reach_the_telegram_chat(tg_customer: TelegramCustomer) -> None:
    """Agent replies and notifications use Rasa's output_channel mechanism (`latest`)."""
    tg_customer.say("你好")
    before = len(tg_customer.fake.sent(chat_id=tg_customer.chat_id))
    answer = requests.post(
        f"http://127.0.0.1:{tg_customer.stack.settings.rasa_port}/conversations/"
        f"{tg_customer.sender_id}/execute",
        params={"output_channel": "latest", "token": tg_customer.stack.settings.rasa_token},
        json={"name": "utter_goodbye"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    pushed = tg_customer.fake.sent(chat_id=tg_customer.chat_id)[before:]
    assert [m["text"] for m in pushed] == ["感谢您的联系，祝您生活愉快！用电上有任何问题随时找我。"]


def test_long_polling_runner_forwards_updates_to_the_webhook(tg_customer: TelegramCustomer) -> None:
    fake = tg_customer.fake
    fake.queue_update(text_update(next(UPDATE_IDS), tg_customer.chat_id, "你好"))
    settings = TelegramSettings(TOKEN, TELEGRAM_SECRET, fake.base_url)
    forwarded = asyncio.run(poll(settings, webhook_url(tg_customer.stack), timeout=1, max_rounds=1))
    assert forwarded == 1
    assert fake.sent(chat_id=tg_customer.chat_id), "the bot did not answer the polled update"
