"""The REST channel decides who speaks and how much, before Rasa sees anything
(bot/plugins/channels/rest.py), against a fake assistant in a real Sanic app."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, List

import httpx
import pytest
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.core.catalog import load_catalog
from bot.core.rasa_api import WEBCHAT_SECRET_HEADER
from bot.core.settings import get_settings
from bot.plugins.channels.rest import IntakeRestInput

pytestmark = pytest.mark.asyncio
TEXTS = load_catalog().system_messages


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)


@pytest.fixture
def one_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh memory store whose clock stands still: the limits count per clock minute, and a
    test that happened to cross a minute boundary would see its count start again."""
    from bot.core import stores

    monkeypatch.setitem(stores._memory, "default", stores.MemoryStore(clock=lambda: 6_000.0))


class FakeAssistant:
    def __init__(self) -> None:
        self.messages: List[UserMessage] = []

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, f"收到：{message.text}")


@asynccontextmanager
async def rest_client(assistant: FakeAssistant) -> AsyncIterator[httpx.AsyncClient]:
    app = Sanic(f"rest_test_{uuid.uuid4().hex[:8]}")
    app.blueprint(IntakeRestInput().blueprint(assistant), url_prefix="/webhooks/rest")
    await app._startup()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://rasa"
    ) as client:
        yield client


async def post(client: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    return await client.post("/webhooks/rest/webhook", json=body, headers=headers)


async def test_a_message_goes_through_as_channel_rest_with_only_the_client_address() -> None:
    assistant = FakeAssistant()
    async with rest_client(assistant) as client:
        body = {
            "sender": "demo-1",
            "message": "你好",
            "input_channel": "telegram",
            "metadata": {"telegram_update_id": 1, "client_ip": "6.6.6.6"},
        }
        response = await post(client, body)
    assert response.status_code == 200 and response.json()[0]["text"] == "收到：你好"
    [message] = assistant.messages
    assert (message.sender_id, message.input_channel) == ("demo-1", "rest")
    assert message.metadata == {"client_ip": "127.0.0.1"}


@pytest.mark.parametrize(
    "sender",
    [
        "tg-12345",
        "wx-oAbCdEf",
        "web-0123456789abcdef0123456789abcdef",
        "",
        "../../model",
        None,
        42,
        "a" * 200,
    ],
)
async def test_senders_of_other_channels_are_refused(sender: Any) -> None:
    assistant = FakeAssistant()
    async with rest_client(assistant) as client:
        response = await post(client, {"sender": sender, "message": "查工单进度"})
    assert response.status_code == 403
    assert response.json()["message"] == TEXTS["rest_sender_refused"]
    assert assistant.messages == []


async def test_the_web_chat_speaks_for_web_senders_with_its_secret() -> None:
    assistant = FakeAssistant()
    sender = "web-0123456789abcdef0123456789abcdef"
    async with rest_client(assistant) as client:
        wrong = await post(
            client, {"sender": sender, "message": "你好"}, **{WEBCHAT_SECRET_HEADER: "guess"}
        )
        right = await post(
            client,
            {"sender": sender, "message": "你好", "metadata": {"webchat_id": "m1"}},
            **{WEBCHAT_SECRET_HEADER: get_settings().webchat_secret()},
        )
    assert wrong.status_code == 403 and right.status_code == 200
    [message] = assistant.messages
    assert message.input_channel == "webchat" and message.metadata["webchat_id"] == "m1"


@pytest.mark.parametrize(
    "body", [b"not json", b"[1]", b'{"sender": "x"}', b'{"sender": "x", "message": 5}']
)
async def test_malformed_bodies_get_a_clear_400(body: bytes) -> None:
    assistant = FakeAssistant()
    async with rest_client(assistant) as client:
        response = await client.post(
            "/webhooks/rest/webhook", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400 and response.json()["message"] == TEXTS["rest_bad_request"]
    assert assistant.messages == []


async def test_a_long_message_gets_a_polite_reply_and_never_reaches_rasa() -> None:
    assistant = FakeAssistant()
    async with rest_client(assistant) as client:
        response = await post(client, {"sender": "demo-2", "message": "电" * 2001})
    assert response.status_code == 200
    [reply] = response.json()
    assert reply["recipient_id"] == "demo-2" and "2000" in reply["text"]
    assert assistant.messages == []


async def test_a_huge_body_is_refused_before_processing() -> None:
    assistant = FakeAssistant()
    async with rest_client(assistant) as client:
        response = await post(client, {"sender": "demo-2", "message": "电" * 3_000_000})
    assert response.status_code == 413
    assert "2000" in response.json()["message"]
    assert assistant.messages == []


async def test_one_sender_is_limited_per_minute(one_minute: None) -> None:
    limit = get_settings().service.limits.messages_per_sender_per_minute
    assistant = FakeAssistant()
    async with rest_client(assistant) as client:
        statuses = [
            (await post(client, {"sender": "flood-1", "message": "你好"})).status_code
            for _ in range(limit + 1)
        ]
        other = await post(client, {"sender": "calm-1", "message": "你好"})
    assert statuses[:limit] == [200] * limit and statuses[-1] == 429
    assert other.status_code == 200
    assert len(assistant.messages) == limit + 1


async def test_one_address_is_limited_per_minute_as_the_trusted_proxy_reports_it(
    one_minute: None,
) -> None:
    limit = get_settings().service.limits.messages_per_ip_per_minute
    assistant = FakeAssistant()
    async with rest_client(assistant) as client:
        for index in range(limit):
            await post(
                client,
                {"sender": f"s-{index}", "message": "你好"},
                **{"X-Forwarded-For": "203.0.113.9"},
            )
        refused = await post(
            client, {"sender": "s-last", "message": "你好"}, **{"X-Forwarded-For": "203.0.113.9"}
        )
        elsewhere = await post(
            client, {"sender": "s-else", "message": "你好"}, **{"X-Forwarded-For": "198.51.100.7"}
        )
    assert refused.status_code == 429 and refused.json()["message"] == TEXTS["rate_limited"]
    assert elsewhere.status_code == 200
    assert assistant.messages[-1].metadata == {"client_ip": "198.51.100.7"}


async def test_limits_off_for_load_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_RATE_LIMITS", "off")
    limit = get_settings().service.limits.messages_per_sender_per_minute
    assistant = FakeAssistant()
    async with rest_client(assistant) as client:
        statuses = {
            (await post(client, {"sender": "load-1", "message": "你好"})).status_code
            for _ in range(limit + 5)
        }
    assert statuses == {200}


async def test_a_turn_without_any_reply_still_answers_the_customer() -> None:
    async def silent(message: UserMessage) -> None:
        return None

    async with rest_client(silent) as client:  # type: ignore[arg-type]
        response = await post(client, {"sender": "quiet-1", "message": "你好"})
    assert response.json() == [{"recipient_id": "quiet-1", "text": TEXTS["busy"]}]


async def test_a_turn_that_fails_after_replying_is_not_half_told() -> None:
    """The conversation store refused the turn after the bot had answered: that answer
    describes a state that was never saved, so the customer gets the apology instead."""

    async def answers_then_fails(message: UserMessage) -> None:
        await message.output_channel.send_text_message(message.sender_id, "请提供用电户号。")
        raise RuntimeError("database or disk is full")

    async with rest_client(answers_then_fails) as client:  # type: ignore[arg-type]
        response = await post(client, {"sender": "full-1", "message": "我要办过户"})
    assert response.json() == [{"recipient_id": "full-1", "text": TEXTS["busy"]}]
