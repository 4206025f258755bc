"""Rasa's REST channel with two guarantees: the customer is never answered with silence.

Same URL (`POST /webhooks/rest/webhook`) and JSON as Rasa's own `rest` channel (the
contract's customer endpoint); registered in credentials.yml in its place. After Rasa has
handled a message:
* a conversation waiting for an agent (paused by a hand-over) gets its queue position;
* a turn that produced no reply at all (the action server crashed, a timeout) gets a short
  apology — the message itself is already in the tracker, so nothing is lost, and the
  conversation continues where it was once the action server is back.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint

from bot.core.catalog import load_catalog
from bot.core.db import session_scope
from bot.core.handoff.repository import HandoffRepository

logger = logging.getLogger(__name__)


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
    texts = load_catalog().system_messages
    try:
        position = waiting_position(message.sender_id)
    except Exception:  # the database is down too: still answer the customer
        logger.exception("could not read the queue for a silent turn")
        position = None
    if position == 0:
        return  # an agent has the conversation: the message is in the transcript they watch
    if position is not None:
        text = texts["waiting_for_agent"].format(ahead=max(position - 1, 0))
    else:
        text = texts["busy"]
        logger.warning("no reply produced for a message of %s; sent the apology", message.sender_id)
    await collector.send_text_message(message.sender_id, text)


class IntakeRestInput(RestInput):
    """`rest` channel that never leaves a customer without an answer."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        async def handle(message: UserMessage) -> Any:
            try:
                result = await on_new_message(message)
            except Exception:
                logger.exception("message handling failed")
                result = None
            await reply_when_silent(message)
            return result

        return super().blueprint(handle)
