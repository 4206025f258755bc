"""The Telegram channel against a local fake Bot API server (tests/fake_telegram.py).

The channel's Sanic blueprint runs in a Sanic app driven over ASGI; python-telegram-bot
sends to the fake server through its base URL. A stand-in for Rasa answers each message
the way the assistant does (texts, buttons, the phone question).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List

import httpx
import pytest
from aiohttp import web
from rasa.core.channels.channel import UserMessage
from sanic import Sanic
from telegram import Update

from bot.core import dead_letters
from bot.core.catalog import load_catalog
from bot.core.settings import ForwardRetryConfig
from bot.plugins.channels import telegram_poll
from bot.plugins.channels.telegram import (
    SECRET_HEADER,
    TelegramInput,
    TelegramSettings,
    contact_text,
    split_text,
)
from bot.plugins.channels.telegram_poll import poll
from tests.fakes.fake_telegram import (
    TOKEN,
    FakeBotApi,
    callback_update,
    contact_update,
    text_update,
)

SECRET = "unit-test-secret_1"
CHAT = 555001
PHONE_ASK = load_catalog().fields["phone"].ask
CONFIRM_BUTTONS = [
    {"title": "确认提交", "payload": "/affirm"},
    {"title": "修改", "payload": "/deny"},
]


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sanic's own switch for several apps in one process (one per test here)."""
    monkeypatch.setattr(Sanic, "test_mode", True)


@pytest.fixture
def fake_api() -> Iterator[FakeBotApi]:
    fake = FakeBotApi()
    fake.start()
    yield fake
    fake.stop()


class FakeAssistant:
    """Stands in for Rasa's agent: records messages and answers like the assistant."""

    def __init__(self) -> None:
        self.messages: List[UserMessage] = []
        self.replies: Dict[str, List[Dict[str, Any]]] = {}

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)
        for reply in self.replies.get(message.text or "", [{"text": f"收到：{message.text}"}]):
            await message.output_channel.send_response(message.sender_id, dict(reply))


@asynccontextmanager
async def webhook_client(
    channel: TelegramInput, assistant: FakeAssistant
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for a Sanic app serving the channel's blueprint where Rasa mounts it."""
    app = Sanic(f"telegram_test_{uuid.uuid4().hex[:8]}")
    app.blueprint(channel.blueprint(assistant), url_prefix="/webhooks/telegram")
    await (
        app._startup()
    )  # Sanic's start-up before serving (routes, signals); ASGI has no lifespan here
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://rasa"
    ) as client:
        yield client


def channel_for(fake_api: FakeBotApi) -> TelegramInput:
    return TelegramInput(TelegramSettings(TOKEN, SECRET, fake_api.base_url))


async def post_update(
    client: httpx.AsyncClient, update: Dict[str, Any], secret: str | None = SECRET
) -> httpx.Response:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    return await client.post("/webhooks/telegram/webhook", json=update, headers=headers)


# ---------------------------------------------------------------------- configuration


def test_channel_is_off_without_token_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.INFO, logger="bot.plugins.channels.telegram"):
        channel = TelegramInput.from_credentials(None)
    assert not channel.enabled
    assert channel.get_output_channel() is None
    assert [r.getMessage() for r in caplog.records] == [
        "Telegram channel off: TELEGRAM_BOT_TOKEN not set"
    ]


def test_settings_come_from_the_environment_and_unexpanded_placeholders_count_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("TELEGRAM_API_BASE_URL", raising=False)
    settings = TelegramSettings.from_settings(
        overrides={"webhook_secret": "${TELEGRAM_WEBHOOK_SECRET}"}
    )
    assert settings.token == TOKEN
    assert settings.missing == ["TELEGRAM_WEBHOOK_SECRET"]
    assert settings.api_base_url == "https://api.telegram.org/bot"
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    assert TelegramInput.from_credentials(None).enabled


@pytest.mark.asyncio
async def test_webhook_of_a_channel_that_is_off_answers_503() -> None:
    channel = TelegramInput(TelegramSettings("", "", "http://127.0.0.1:9/bot"))
    assistant = FakeAssistant()
    async with webhook_client(channel, assistant) as client:
        answer = await post_update(client, text_update(1, CHAT, "你好"))
    assert answer.status_code == 503
    assert assistant.messages == []


# ---------------------------------------------------------------------- pure pieces


@pytest.mark.parametrize(
    "text, limit, expected",
    [
        ("短消息", 4096, ["短消息"]),
        ("第一行\n第二行\n第三行", 8, ["第一行\n第二行", "第三行"]),
        ("一二三四五六七八九十", 4, ["一二三四", "五六七八", "九十"]),
        ("甲\n" + "乙" * 5 + "\n丙", 4, ["甲", "乙乙乙乙", "乙\n丙"]),
    ],
)
def test_split_text_keeps_lines_whole_and_within_the_limit(
    text: str, limit: int, expected: List[str]
) -> None:
    assert split_text(text, limit) == expected


@pytest.mark.parametrize(
    "shared, expected",
    [
        ("8613812345678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("13812345678", "13812345678"),
        ("+447700900123", "447700900123"),
    ],
)
def test_a_shared_contact_becomes_the_phone_digits(shared: str, expected: str) -> None:
    assert contact_text(shared) == expected


# ---------------------------------------------------------------------- inbound webhook


@pytest.mark.asyncio
async def test_text_update_reaches_rasa_and_buttons_become_an_inline_keyboard(
    fake_api: FakeBotApi,
) -> None:
    assistant = FakeAssistant()
    assistant.replies["我要报装用电"] = [
        {"text": "请核对报装用电的信息：…", "buttons": CONFIRM_BUTTONS}
    ]
    async with webhook_client(channel_for(fake_api), assistant) as client:
        answer = await post_update(client, text_update(700001, CHAT, "我要报装用电"))
    assert answer.status_code == 200
    [message] = assistant.messages
    assert (message.text, message.sender_id, message.input_channel) == (
        "我要报装用电",
        f"tg-{CHAT}",
        "telegram",
    )
    [sent] = fake_api.sent("sendMessage")
    assert sent["chat_id"] == CHAT and sent["text"] == "请核对报装用电的信息：…"
    assert sent["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "确认提交", "callback_data": "/affirm"}],
            [{"text": "修改", "callback_data": "/deny"}],
        ]
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("secret", ["wrong-secret", None, SECRET + "x"])
async def test_wrong_or_missing_secret_token_is_rejected(
    fake_api: FakeBotApi, secret: str | None
) -> None:
    assistant = FakeAssistant()
    async with webhook_client(channel_for(fake_api), assistant) as client:
        answer = await post_update(client, text_update(700002, CHAT, "你好"), secret=secret)
    assert answer.status_code == 403
    assert assistant.messages == [] and fake_api.sent("sendMessage") == []


@pytest.mark.asyncio
async def test_a_redelivered_update_is_handled_once(fake_api: FakeBotApi) -> None:
    assistant = FakeAssistant()
    update = text_update(700003, CHAT, "查电费")
    async with webhook_client(channel_for(fake_api), assistant) as client:
        first = await post_update(client, update)
        again = await post_update(client, update)
        other = await post_update(client, text_update(700004, CHAT, "查电费"))
    assert [first.json()["status"], again.json()["status"], other.json()["status"]] == [
        "ok",
        "duplicate",
        "ok",
    ]
    assert [m.text for m in assistant.messages] == ["查电费", "查电费"]
    assert len(fake_api.sent("sendMessage")) == 2


class SlowAssistant(FakeAssistant):
    """An assistant whose turn waits until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def __call__(self, message: UserMessage) -> None:
        await self.release.wait()
        await super().__call__(message)


@pytest.mark.asyncio
async def test_a_redelivery_while_the_turn_runs_waits_for_it_and_is_dropped(
    fake_api: FakeBotApi,
) -> None:
    assistant = SlowAssistant()
    update = text_update(700010, CHAT, "家里停电了")
    async with webhook_client(channel_for(fake_api), assistant) as client:
        first = asyncio.create_task(post_update(client, update))
        await asyncio.sleep(0.2)
        meanwhile = asyncio.create_task(post_update(client, update))  # Telegram's re-delivery
        await asyncio.sleep(0.3)
        assert not meanwhile.done()  # it waits for the turn under way
        assistant.release.set()
        done, again = await first, await meanwhile
    assert (done.status_code, done.json()["status"]) == (200, "ok")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert [m.text for m in assistant.messages] == ["家里停电了"]  # one turn, not two


@pytest.mark.asyncio
async def test_a_turn_whose_caller_gave_up_runs_to_its_end_and_its_retry_is_dropped(
    fake_api: FakeBotApi,
) -> None:
    """nginx gives up on a slow turn (Sanic then cancels the request's handler): the turn goes
    on to its end, replies and all, and the retry waits for it instead of finding a "done"
    turn that never finished (the customer would answer a question the conversation lost)."""
    assistant = SlowAssistant()
    update = text_update(700014, CHAT, "家里停电了")
    async with webhook_client(channel_for(fake_api), assistant) as client:
        first = asyncio.create_task(post_update(client, update))
        await asyncio.sleep(0.2)
        first.cancel()  # the caller went away in mid-turn
        with pytest.raises(asyncio.CancelledError):
            await first
        retry = asyncio.create_task(post_update(client, update))
        await asyncio.sleep(0.3)
        assert not retry.done()  # the turn is still under way: the retry waits for it
        assistant.release.set()
        again = await retry
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert [m.text for m in assistant.messages] == ["家里停电了"]
    assert [m["text"] for m in fake_api.sent(chat_id=CHAT)] == ["收到：家里停电了"]


@pytest.mark.asyncio
async def test_a_redelivery_is_told_to_come_back_when_the_turn_outlasts_its_wait(
    fake_api: FakeBotApi,
) -> None:
    assistant = SlowAssistant()
    channel = channel_for(fake_api)
    channel.seen.wait_s = 0.2
    update = text_update(700013, CHAT, "家里停电了")
    async with webhook_client(channel, assistant) as client:
        first = asyncio.create_task(post_update(client, update))
        await asyncio.sleep(0.2)
        meanwhile = await post_update(client, update)
        assistant.release.set()
        await first
    assert (meanwhile.status_code, meanwhile.json()["status"]) == (503, "in progress")
    assert meanwhile.headers["Retry-After"] == "5"
    assert [m.text for m in assistant.messages] == ["家里停电了"]


@pytest.mark.asyncio
async def test_a_turn_longer_than_the_claim_keeps_it(fake_api: FakeBotApi) -> None:
    """A slow turn on a live server refreshes its claim: a re-delivery after the claim's
    lifetime is still told to come back, and the update is handled once."""
    assistant = SlowAssistant()
    channel = channel_for(fake_api)
    channel.seen.in_progress_s, channel.seen.wait_s = 0.3, 0.1
    update = text_update(700012, CHAT, "确认提交")
    async with webhook_client(channel, assistant) as client:
        first = asyncio.create_task(post_update(client, update))
        await asyncio.sleep(0.7)  # more than twice the claim's lifetime
        meanwhile = await post_update(client, update)
        assistant.release.set()
        assert (await first).json()["status"] == "ok"
    assert meanwhile.status_code == 503
    assert [m.text for m in assistant.messages] == ["确认提交"]


@pytest.mark.asyncio
async def test_an_update_whose_server_died_in_mid_turn_is_handled_on_redelivery(
    fake_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server claimed the update and was killed before finishing it (its claim is left):
    once the claim has expired, the next re-delivery is handled instead of dropped."""
    from bot.core.stores import shared_store

    assistant = FakeAssistant()
    channel = channel_for(fake_api)
    channel.seen.in_progress_s = 0.3
    update = text_update(700011, CHAT, "我的电话是13800000000")
    assert shared_store().claim("tg-update:700011", 0.3) is None  # the killed server's claim
    async with webhook_client(channel, assistant) as client:
        answer = await post_update(client, update)  # waits until that claim runs out
    assert (answer.status_code, answer.json()["status"]) == (200, "ok")
    assert [m.text for m in assistant.messages] == ["我的电话是13800000000"]


@pytest.mark.asyncio
async def test_pressed_button_sends_its_payload_and_is_acknowledged(fake_api: FakeBotApi) -> None:
    assistant = FakeAssistant()
    async with webhook_client(channel_for(fake_api), assistant) as client:
        await post_update(client, callback_update(700005, CHAT, "/affirm", query_id="cbq-1"))
    assert [m.text for m in assistant.messages] == ["/affirm"]
    assert assistant.messages[0].sender_id == f"tg-{CHAT}"
    assert [c["callback_query_id"] for c in fake_api.sent("answerCallbackQuery")] == ["cbq-1"]


@pytest.mark.asyncio
async def test_phone_question_offers_contact_sharing_and_the_contact_fills_the_phone(
    fake_api: FakeBotApi,
) -> None:
    assistant = FakeAssistant()
    assistant.replies["张三"] = [{"text": PHONE_ASK}]
    async with webhook_client(channel_for(fake_api), assistant) as client:
        await post_update(client, text_update(700006, CHAT, "张三"))
        await post_update(client, contact_update(700007, CHAT, "8613812345678"))
    question, after = fake_api.sent("sendMessage")
    assert question["text"] == PHONE_ASK
    assert question["reply_markup"]["keyboard"] == [
        [{"text": "分享手机号", "request_contact": True}]
    ]
    assert question["reply_markup"]["one_time_keyboard"] is True
    assert assistant.messages[1].text == "13812345678"
    assert after["reply_markup"] == {"remove_keyboard": True}


@pytest.mark.asyncio
async def test_long_reply_is_split_within_telegram_limits_with_buttons_on_the_last_part(
    fake_api: FakeBotApi,
) -> None:
    assistant = FakeAssistant()
    long_text = "\n".join(
        f"第{i}条：" + "停电计划说明" * 30 for i in range(60)
    )  # ≈ 11 000 characters
    assistant.replies["停电"] = [{"text": long_text, "buttons": CONFIRM_BUTTONS[:1]}]
    async with webhook_client(channel_for(fake_api), assistant) as client:
        await post_update(client, text_update(700008, CHAT, "停电"))
    parts = fake_api.sent("sendMessage")
    assert len(parts) == 3
    assert all(len(p["text"]) <= 4096 for p in parts)
    assert "\n".join(p["text"] for p in parts) == long_text  # split only at line ends
    assert [("inline_keyboard" in p.get("reply_markup", {})) for p in parts] == [False, False, True]


@pytest.mark.asyncio
async def test_telegram_rate_limit_is_waited_out(fake_api: FakeBotApi) -> None:
    assistant = FakeAssistant()
    fake_api.rate_limit_next("sendMessage", retry_after=1)
    async with webhook_client(channel_for(fake_api), assistant) as client:
        await post_update(client, text_update(700009, CHAT, "你好"))
    calls = [c.method for c in fake_api.calls]
    assert calls == ["sendMessage", "sendMessage"]  # 429 first, then delivered
    assert fake_api.sent("sendMessage")[-1]["text"] == "收到：你好"


@pytest.mark.asyncio
async def test_a_turn_without_any_reply_gets_the_apology(fake_api: FakeBotApi) -> None:
    assistant = FakeAssistant()
    assistant.replies["你好"] = []  # e.g. the action server is down
    async with webhook_client(channel_for(fake_api), assistant) as client:
        await post_update(client, text_update(700010, CHAT, "你好"))
    [sent] = fake_api.sent("sendMessage")
    assert sent["text"] == load_catalog().system_messages["busy"]


@pytest.mark.asyncio
async def test_a_turn_that_fails_after_replying_ends_with_the_apology(
    fake_api: FakeBotApi,
) -> None:
    """Telegram gets the bot's messages as they are produced; a turn whose store write failed
    afterwards ends with the apology, so the customer knows to send it again."""

    class FailsAfterReplying(FakeAssistant):
        async def __call__(self, message: UserMessage) -> None:
            await super().__call__(message)
            raise RuntimeError("database or disk is full")

    async with webhook_client(channel_for(fake_api), FailsAfterReplying()) as client:
        await post_update(client, text_update(700011, CHAT, "我要办过户"))
    sent = [m["text"] for m in fake_api.sent("sendMessage")]
    assert sent == ["收到：我要办过户", load_catalog().system_messages["busy"]]


@pytest.mark.asyncio
async def test_a_message_without_words_gets_a_polite_line_and_other_updates_are_ignored(
    fake_api: FakeBotApi,
) -> None:
    assistant = FakeAssistant()
    sticker = text_update(700011, CHAT, "")
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {
        "file_id": "CAACAgIAAxk",
        "file_unique_id": "AgAD",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    }
    edited = text_update(700012, CHAT, "改一下")
    edited["edited_message"] = dict(edited.pop("message"), edit_date=1764230000)
    async with webhook_client(channel_for(fake_api), assistant) as client:
        answers = [await post_update(client, sticker), await post_update(client, edited)]
    assert [a.json()["status"] for a in answers] == ["unsupported", "ignored"]
    assert assistant.messages == []
    assert [m["text"] for m in fake_api.sent("sendMessage")] == [
        load_catalog().system_messages["telegram_unsupported"]
    ]


@pytest.mark.asyncio
async def test_a_group_chat_is_told_to_write_privately_and_never_reaches_rasa(
    fake_api: FakeBotApi,
) -> None:
    """A group shares one chat id: its members would share one conversation (and see each
    other's details), so the bot answers there only with a pointer to a private chat."""
    assistant = FakeAssistant()
    group = text_update(700014, CHAT, "我家停电了，户号0301234567")
    group["message"]["chat"] = {"id": -100200300, "title": "小区业主群", "type": "supergroup"}
    async with webhook_client(channel_for(fake_api), assistant) as client:
        answer = await post_update(client, group)
    assert answer.json()["status"] == "group_ignored"
    assert assistant.messages == []
    [sent] = fake_api.sent("sendMessage")
    assert sent["chat_id"] == -100200300
    assert sent["text"] == load_catalog().system_messages["telegram_private_only"]


@pytest.mark.asyncio
async def test_an_over_long_message_gets_a_polite_line_and_never_reaches_rasa(
    fake_api: FakeBotApi,
) -> None:
    assistant = FakeAssistant()
    async with webhook_client(channel_for(fake_api), assistant) as client:
        answer = await post_update(client, text_update(700013, CHAT, "停电" * 1500))
    assert answer.json()["status"] == "too_long"
    assert assistant.messages == []
    [sent] = fake_api.sent("sendMessage")
    assert "2000" in sent["text"]


# ---------------------------------------------------------------------- outbound


@pytest.mark.asyncio
async def test_output_channel_sends_agent_replies_to_the_customers_chat(
    fake_api: FakeBotApi,
) -> None:
    output = channel_for(fake_api).get_output_channel()
    assert output is not None and output.name() == "telegram"
    await output.send_response(f"tg-{CHAT}", {"text": "您好，我是客服小王，您的工单已派单。"})
    [sent] = fake_api.sent("sendMessage")
    assert (sent["chat_id"], sent["text"]) == (CHAT, "您好，我是客服小王，您的工单已派单。")


# ---------------------------------------------------------------------- long polling


@pytest.mark.asyncio
async def test_polling_forwards_each_update_to_the_webhook_with_the_secret(
    fake_api: FakeBotApi,
) -> None:
    received: List[Dict[str, Any]] = []

    async def webhook(request: web.Request) -> web.Response:
        received.append(
            {"secret": request.headers.get(SECRET_HEADER), "update": await request.json()}
        )
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/webhooks/telegram/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    fake_api.queue_update(text_update(800001, CHAT, "停电了"))
    fake_api.queue_update(callback_update(800002, CHAT, "/affirm"))
    try:
        settings = TelegramSettings(TOKEN, SECRET, fake_api.base_url)
        forwarded = await poll(
            settings, f"http://127.0.0.1:{port}/webhooks/telegram/webhook", timeout=1, max_rounds=2
        )
    finally:
        await runner.cleanup()
    assert forwarded == 2
    assert [r["secret"] for r in received] == [SECRET, SECRET]
    assert received[0]["update"]["message"]["text"] == "停电了"
    assert received[0]["update"]["message"]["chat"]["id"] == CHAT
    assert received[1]["update"]["callback_query"]["data"] == "/affirm"
    offsets = [c.params.get("offset") for c in fake_api.calls if c.method == "getUpdates"]
    assert offsets == [None, 800003]  # the second call acknowledges both updates
    assert "deleteWebhook" in [c.method for c in fake_api.calls]


# ------------------------------------------------------- long polling: bounded retries

FAST_RETRY = ForwardRetryConfig(max_attempts=3, retry_after_seconds=(0.01, 0.02))


@asynccontextmanager
async def stub_webhook(status_for: Callable[[int, int], int]) -> AsyncIterator[tuple]:
    """A webhook on 127.0.0.1 answering `status_for(update_id, attempt)`; yields its URL and
    the list of (update_id, status) it answered."""
    answered: List[tuple] = []

    async def webhook(request: web.Request) -> web.Response:
        update_id = (await request.json())["update_id"]
        attempt = 1 + sum(1 for seen, _ in answered if seen == update_id)
        status = status_for(update_id, attempt)
        answered.append((update_id, status))
        return web.json_response({"status": "ok" if status == 200 else "error"}, status=status)

    app = web.Application()
    app.router.add_post("/webhooks/telegram/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/webhooks/telegram/webhook", answered
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_poisonous_update_is_dead_lettered_after_its_attempts_and_the_next_is_delivered(
    fake_api: FakeBotApi,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    poison_text = "我的电话13812345678，地址长平路88号"
    fake_api.queue_update(text_update(810001, CHAT, poison_text))
    fake_api.queue_update(text_update(810002, CHAT, "停电了"))
    settings = TelegramSettings(TOKEN, SECRET, fake_api.base_url)
    with caplog.at_level(logging.INFO, logger="bot.plugins.channels.telegram_poll"):
        async with stub_webhook(lambda update_id, _: 500 if update_id == 810001 else 200) as (
            url,
            answered,
        ):
            forwarded = await poll(settings, url, timeout=1, max_rounds=2, retry=FAST_RETRY)
    assert forwarded == 1
    assert answered == [(810001, 500)] * 3 + [(810002, 200)]
    offsets = [c.params.get("offset") for c in fake_api.calls if c.method == "getUpdates"]
    assert offsets == [None, 810003]  # the poisonous update is acknowledged too
    [letter] = dead_letters.recent(10)
    assert (letter.source, letter.key, letter.attempts, letter.last_error) == (
        "telegram_poll",
        "810001",
        3,
        "HTTP 500",
    )
    assert dead_letters.payload_of(letter)["message"]["text"] == poison_text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "810001" in logged and "dead letter" in logged
    assert "13812345678" not in logged and "长平路" not in logged  # the update id only


@pytest.mark.asyncio
async def test_a_transient_failure_is_retried_and_delivered_once_without_a_dead_letter(
    fake_api: FakeBotApi, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    fake_api.queue_update(text_update(820001, CHAT, "查电费"))
    settings = TelegramSettings(TOKEN, SECRET, fake_api.base_url)
    async with stub_webhook(lambda _, attempt: 502 if attempt < 3 else 200) as (url, answered):
        forwarded = await poll(settings, url, timeout=1, max_rounds=1, retry=FAST_RETRY)
    assert forwarded == 1
    assert answered == [(820001, 502), (820001, 502), (820001, 200)]
    assert dead_letters.recent(10) == []


@pytest.mark.asyncio
async def test_an_update_the_webhook_refuses_with_a_4xx_is_dead_lettered_at_once(
    fake_api: FakeBotApi, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    fake_api.queue_update(text_update(830001, CHAT, "你好"))
    fake_api.queue_update(text_update(830002, CHAT, "你好"))
    settings = TelegramSettings(TOKEN, SECRET, fake_api.base_url)
    async with stub_webhook(lambda update_id, _: 400 if update_id == 830001 else 200) as (
        url,
        answered,
    ):
        forwarded = await poll(settings, url, timeout=1, max_rounds=1, retry=FAST_RETRY)
    assert forwarded == 1 and answered == [(830001, 400), (830002, 200)]
    [letter] = dead_letters.recent(10, source="telegram_poll")
    assert (letter.key, letter.attempts, letter.last_error) == ("830001", 1, "HTTP 400")


@pytest.mark.asyncio
async def test_while_rasa_accepts_no_connection_the_update_waits_without_using_attempts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: List[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(telegram_poll, "sleep", no_wait)
    outcomes = iter(["refused"] * 5 + [500, 200])

    def answer(request: httpx.Request) -> httpx.Response:
        outcome = next(outcomes)
        if outcome == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(int(outcome), json={})

    update = Update.de_json(text_update(840001, CHAT, "你好"), None)
    assert update is not None
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        outcome = await telegram_poll.forward(
            http, "http://rasa/webhooks/telegram/webhook", SECRET, update, FAST_RETRY
        )
    assert outcome.delivered and outcome.attempts == 2  # the refused connections not counted
    assert waits == [0.01, 0.02, 0.02, 0.02, 0.02, 0.01]  # backing off, capped at the last wait
