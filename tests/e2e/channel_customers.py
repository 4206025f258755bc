"""Customers of the messaging channels for the end-to-end tests: a Telegram user posting
real Update JSON to the webhook, and WeChat pushes built and encrypted as WeChat's server does.

Test modules import these from here (never from one another): pytest imports test modules
under their bare names, so a counter defined in a test module and imported elsewhere would
exist twice — and two WeChat MsgId counters started in the same second hand out the same ids,
which the channel rightly drops as replays.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import requests

from bot.core.catalog import load_catalog
from bot.plugins.channels.telegram import SECRET_HEADER
from bot.tools.runner import Stack
from tests.fakes.fake_telegram import FakeBotApi, callback_update, contact_update, text_update
from tests.fakes.wechat_simulator import WeChatPushes
from tests.stack import TELEGRAM_SECRET, WECHAT

UPDATE_IDS = itertools.count(random.randrange(10**8, 9 * 10**8))


def webhook_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.settings.rasa_port}/webhooks/telegram/webhook"


@dataclass
class TelegramCustomer:
    """One Telegram user chatting with the bot through the webhook."""

    stack: Stack
    fake: FakeBotApi
    chat_id: int = field(default_factory=lambda: random.randrange(10**9, 2 * 10**9))

    @property
    def sender_id(self) -> str:
        return f"tg-{self.chat_id}"

    def send(
        self, update: Dict[str, Any], secret: Optional[str] = TELEGRAM_SECRET
    ) -> requests.Response:
        """POST an update as Telegram does; returns the webhook's answer."""
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return requests.post(webhook_url(self.stack), json=update, headers=headers, timeout=60)

    def replies_to(self, update: Dict[str, Any]) -> List[Dict[str, Any]]:
        """The messages the bot sent to this chat while handling `update`."""
        before = len(self.fake.sent(chat_id=self.chat_id))
        answer = self.send(update)
        assert answer.status_code == 200, answer.text
        return self.fake.sent(chat_id=self.chat_id)[before:]

    def say(self, text: str) -> List[Dict[str, Any]]:
        return self.replies_to(text_update(next(UPDATE_IDS), self.chat_id, text))

    def press(self, replies: List[Dict[str, Any]], title: str) -> List[Dict[str, Any]]:
        """Press the inline button `title` of the last replies."""
        buttons = [
            b
            for r in replies
            for row in r.get("reply_markup", {}).get("inline_keyboard", [])
            for b in row
        ]
        data = next((b["callback_data"] for b in buttons if b["text"] == title), None)
        assert data is not None, f"no inline button {title!r} in {replies}"
        return self.replies_to(
            callback_update(next(UPDATE_IDS), self.chat_id, data, query_id=f"q{self.chat_id}")
        )

    def share_contact(self, phone_number: str) -> List[Dict[str, Any]]:
        return self.replies_to(contact_update(next(UPDATE_IDS), self.chat_id, phone_number))


# ---------------------------------------------------------------- WeChat

PUSHES = WeChatPushes(WECHAT["token"], WECHAT["app_id"], WECHAT["aes_key"])
msg_ids = itertools.count(int(time.time()) * 1_000_000)
ASK = {name: field.ask for name, field in load_catalog().fields.items()}
ASK_TOGETHER = {joint.fields: joint.ask for joint in load_catalog().ask_together}


def webhook(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.settings.rasa_port}/webhooks/wechat/webhook"


def push(stack: Stack, xml: str) -> requests.Response:
    query, body = PUSHES.push(xml)
    return requests.post(webhook(stack), params=query, data=body, timeout=30)


def reply_content(response: requests.Response) -> str:
    assert response.status_code == 200 and response.text != "success", response.text
    return PUSHES.read_reply(response.text)["Content"]


def openid() -> str:
    return f"oE2E{uuid.uuid4().hex[:12]}"
