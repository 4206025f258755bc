"""Rasa's REST channel, hardened: the contract's customer endpoint `POST /webhooks/rest/webhook`
with `{"sender": …, "message": …}` (registered in credentials.yml in place of Rasa's `rest`).

Before Rasa sees a message:
* **Identity is the channel's decision.** Senders `tg-…` and `wx-…` belong to Telegram and
  WeChat and are refused here; `web-…` only when the console's web chat vouches for it with
  its shared secret (header `X-Intake-Webchat-Secret`). `input_channel` and `metadata` of the
  body are ignored: the channel is `rest` (or `webchat`), the metadata only the client's
  address as the trusted proxy reports it.
* **Limits.** Bodies over `limits.body_max_bytes` get a polite 413, messages over
  `limits.message_max_chars` a polite reply (Rasa never sees either); more than `limits.messages_per_sender_per_minute` from one sender or
  `messages_per_ip_per_minute` from one address a polite 429 (config/service.yml;
  INTAKE_RATE_LIMITS=off turns the rate limits off).

After Rasa has handled it, the customer is never answered with silence: a conversation
waiting for an agent gets its queue position, a turn with no reply at all (the action server
down, a timeout) a short apology — the message is in the tracker, nothing is lost.

Every channel counts its turns with `metrics.measured_turn` (messages, reply latency, failed
turns) and the apology with `intake_busy_replies_total` (bot/core/metrics.py).
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any, Awaitable, Callable, Dict, Optional, Sequence, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.core import metrics
from bot.core.catalog import load_catalog
from bot.core.db import session_scope
from bot.core.handoff.repository import HandoffRepository
from bot.core.net import client_address
from bot.core.rasa_api import WEBCHAT_SECRET_HEADER
from bot.core.settings import get_settings
from bot.core.stores import shared_store

logger = logging.getLogger(__name__)

RESERVED_PREFIXES = ("tg-", "wx-")
WEBCHAT_PREFIX = "web-"
SENDER_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


def client_ip(request: Request, trusted: Sequence[str]) -> str:
    """The customer's address: the peer, or what a trusted proxy in front says it was."""
    return client_address(request.ip or "", request.headers.get("X-Forwarded-For", ""), trusted)


def over_limit(kind: str, key: str, per_minute: int) -> bool:
    """Count one message of `key`; True when it is over `per_minute` (limits off: never)."""
    if not get_settings().rate_limits_on or per_minute <= 0:
        return False
    return shared_store().hit(f"rate:{kind}:{key}", 60) > per_minute


def texts() -> Dict[str, str]:
    return dict(load_catalog().system_messages)


def refusal(status: int, key: str) -> HTTPResponse:
    """A clear status and a polite Chinese line (catalog `system_messages`)."""
    limits = get_settings().service.limits
    return response.json(
        {"error": key, "message": texts()[key].format(max_chars=limits.message_max_chars)},
        status=status,
    )


def too_long(text: str) -> bool:
    """True when a customer's message is over `limits.message_max_chars`."""
    return len(text) > get_settings().service.limits.message_max_chars


def too_long_text() -> str:
    """The polite line for an over-long message."""
    return texts()["message_too_long"].format(
        max_chars=get_settings().service.limits.message_max_chars
    )


def waiting_position(conversation_id: str) -> int | None:
    """1-based queue position of a conversation waiting for an agent, 0 when an agent is
    already talking with the customer (their replies come from the console), else None."""
    with session_scope() as session:
        repository = HandoffRepository(session)
        handoff = repository.current(conversation_id)
        if handoff is None:
            return None
        if handoff.status == "active":
            return 0
        return repository.queue_position(handoff)


async def reply_when_silent(message: UserMessage) -> None:
    """Add the queue position or an apology when Rasa produced no reply for `message`."""
    collector = message.output_channel
    if not isinstance(collector, CollectingOutputChannel) or collector.messages:
        return
    system = texts()
    try:
        position = waiting_position(message.sender_id)
    except Exception:  # the database is down too: still answer the customer
        logger.exception("could not read the queue for a silent turn")
        position = None
    if position == 0:
        return  # an agent has the conversation: the message is in the transcript they watch
    if position is not None:
        text = system["waiting_for_agent"].format(ahead=max(position - 1, 0))
    else:
        text = system["busy"]
        metrics.count_busy_reply(message.input_channel)
        logger.warning("no reply produced for a message; sent the apology")
    await collector.send_text_message(message.sender_id, text)


async def take_turn(
    message: UserMessage, on_new_message: Callable[[UserMessage], Awaitable[Any]], channel: str
) -> None:
    """One customer turn through Rasa, never half-told: when the turn fails (the conversation
    store refused the write, a bug), what it had produced is dropped — the conversation was not
    saved, so those replies describe a state that does not exist — and the customer gets the
    apology instead; their next try replays the turn. Never silent either (`reply_when_silent`)."""
    collector = message.output_channel
    try:
        await on_new_message(message)
    except Exception:
        metrics.count_turn_error(channel)
        logger.exception("message handling failed (%s); its replies are dropped", channel)
        if isinstance(collector, CollectingOutputChannel):
            collector.messages.clear()
    await reply_when_silent(message)


def webchat_metadata(raw: Any) -> Dict[str, Any]:
    """What the console's web chat may tell Rasa with a message (it holds the secret): the
    page's id of the message, the id of a photo it stored, a location it checked."""
    given = raw if isinstance(raw, dict) else {}
    metadata: Dict[str, Any] = {}
    webchat_id = given.get("webchat_id")
    if isinstance(webchat_id, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", webchat_id):
        metadata["webchat_id"] = webchat_id  # the page's id of its own message
    attachment_id = given.get("attachment_id")
    if isinstance(attachment_id, int) and not isinstance(attachment_id, bool):
        metadata["attachment_id"] = attachment_id
    location = given.get("location")
    if isinstance(location, dict):
        metadata["location"] = {
            key: location[key] for key in ("lat", "lon", "label") if key in location
        }
    return metadata


class IntakeRestInput(InputChannel):
    """`rest` channel: the contract's endpoint, with identity and limits decided here."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    def _identity(self, request: Request, sender: Any) -> Optional[str]:
        """The input channel the sender may speak as, or None when it may not."""
        if not isinstance(sender, str) or not SENDER_RE.fullmatch(sender):
            return None
        if sender.startswith(RESERVED_PREFIXES):
            return None
        if sender.startswith(WEBCHAT_PREFIX):
            given = request.headers.get(WEBCHAT_SECRET_HEADER, "").encode()
            expected = get_settings().webchat_secret().encode()
            return "webchat" if secrets.compare_digest(given, expected) else None
        return self.name()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        rest = Blueprint("intake_rest_webhook", __name__)

        @rest.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @rest.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            limits = get_settings().service.limits
            if len(request.body or b"") > limits.body_max_bytes:
                return refusal(413, "message_too_long")
            try:
                body = request.json
            except Exception:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("message"), str):
                return refusal(400, "rest_bad_request")
            sender, text = body.get("sender"), body["message"]
            channel = self._identity(request, sender)
            if channel is None:
                logger.warning("REST message refused: sender not allowed on this channel")
                return refusal(403, "rest_sender_refused")
            if too_long(text):
                # Within the body limit: the customer gets the polite line as a chat reply.
                return response.json([{"recipient_id": sender, "text": too_long_text()}])
            ip = client_ip(request, limits.trusted_proxies)
            # This machine itself (the proxy, the console's web chat, operators) is not limited
            # per address: the address that counts is the one the proxy reports.
            per_ip = 0 if ip in limits.trusted_proxies else limits.messages_per_ip_per_minute
            if over_limit(
                "sender", str(sender), limits.messages_per_sender_per_minute
            ) or over_limit("ip", ip, per_ip):
                return refusal(429, "rate_limited")
            metadata: Dict[str, Any] = {"client_ip": ip}
            if channel == "webchat":
                metadata.update(webchat_metadata(body.get("metadata")))
            collector = CollectingOutputChannel()
            message = UserMessage(
                text, collector, str(sender), input_channel=channel, metadata=metadata
            )
            with metrics.measured_turn(channel):
                await take_turn(message, on_new_message, channel)
            return response.json(collector.messages)

        return rest
