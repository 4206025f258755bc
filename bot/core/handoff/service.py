"""What agents do with a handed-over conversation, used by the pages and the JSON API alike.

claim → reply (through Rasa, into the customer's channel and the tracker) → transfer →
hand back (the bot resumes and asks for a rating) or close (the bot resumes silently).
`sweep_unclaimed` turns conversations nobody claimed within `claim_wait_minutes` into
call-back tickets and tells the customer (spec §4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from bot.core import intake
from bot.core.catalog import load_catalog
from bot.core.clock import to_utc_naive, utc_now
from bot.core.db import session_scope
from bot.core.handoff.models import Handoff
from bot.core.handoff.repository import HandoffNotFound, HandoffRepository, HandoffStateError
from bot.core.notifications.delivery import NoticeDelivery
from bot.core.notifications.outbox import enqueue_handback, enqueue_notice
from bot.core.rasa_api import RasaClient
from bot.core.settings import Settings
from bot.core.tickets.repository import TicketRepository

logger = logging.getLogger(__name__)

MAX_REPLY_CHARS = 2000
__all__ = ["HandoffNotFound", "HandoffStateError", "HandoverError"]


class HandoverError(ValueError):
    """An agent action that does not fit the conversation's state (shown to the agent)."""


@dataclass(frozen=True)
class HandoffView:
    """A handoff as pages and the API show it."""

    id: int
    conversation_id: str
    channel: str
    reason: str
    status: str
    priority: str
    agent: Optional[str]
    details: Dict[str, Any]
    ticket_no: Optional[str]
    created_at: Any
    claimed_at: Any
    closed_at: Any
    rating: Optional[int]
    queue_position: Optional[int]
    moves: Tuple[Dict[str, Any], ...] = ()  # changes of agent: at, by, from, to, why


def _view(handoff: Handoff, position: Optional[int]) -> HandoffView:
    return HandoffView(
        handoff.id,
        handoff.conversation_id,
        handoff.channel,
        handoff.reason,
        handoff.status,
        handoff.priority,
        handoff.agent,
        dict(handoff.details or {}),
        handoff.ticket_no,
        handoff.created_at,
        handoff.claimed_at,
        handoff.closed_at,
        handoff.rating,
        position,
        tuple(handoff.moves or ()),
    )


def queue(settings: Settings, include_closed: int = 0) -> List[HandoffView]:
    """Waiting (queue order) and active handoffs, plus the latest `include_closed` closed."""
    with session_scope(settings.database_url) as session:
        repository = HandoffRepository(session)
        positions = repository.queue_positions()
        views = [
            _view(h, positions.get(h.id))
            for s in ("waiting", "active")
            for h in repository.list(status=s, limit=500)
        ]
        if include_closed:
            closed = repository.list(status="closed", limit=1000)
            closed.sort(key=lambda h: h.closed_at or h.created_at, reverse=True)
            views += [_view(h, None) for h in closed[:include_closed]]
        return views


def get(settings: Settings, handoff_id: int) -> HandoffView:
    with session_scope(settings.database_url) as session:
        repository = HandoffRepository(session)
        handoff = repository.get(handoff_id)
        if handoff is None:
            raise HandoffNotFound(handoff_id)
        return _view(handoff, repository.queue_position(handoff))


def claim(settings: Settings, handoff_id: int, agent: str) -> HandoffView:
    with session_scope(settings.database_url) as session:
        handoff = HandoffRepository(session).claim(handoff_id, agent)
        view = _view(handoff, None)
    logger.info("handoff %s claimed by %s", handoff_id, agent)
    return view


def _active_for(settings: Settings, handoff_id: int, agent: str, override: bool) -> HandoffView:
    view = get(settings, handoff_id)
    if view.status != "active":
        raise HandoverError("该会话未被接入或已结束")
    if view.agent != agent and not override:
        raise HandoverError("该会话由其他坐席接待")
    return view


def reply(
    settings: Settings,
    handoff_id: int,
    agent: str,
    agent_name: str,
    text: str,
    override: bool = False,
) -> HandoffView:
    """Send the agent's message through the customer's channel (and into the tracker)."""
    text = text.strip()
    if not text:
        raise HandoverError("请输入回复内容")
    if len(text) > MAX_REPLY_CHARS:
        raise HandoverError(f"回复太长（最多{MAX_REPLY_CHARS}字）")
    view = _active_for(settings, handoff_id, agent, override)
    RasaClient(settings).say(view.conversation_id, text, view.channel, agent_name)
    return view


def transfer(
    settings: Settings, handoff_id: int, agent: str, to_agent: str, override: bool = False
) -> HandoffView:
    current = _active_for(settings, handoff_id, agent, override)
    with session_scope(settings.database_url) as session:
        moved = HandoffRepository(session).transfer(
            handoff_id,
            to_agent,
            from_agent=current.agent,
            by=agent,
            why=load_catalog().staff_messages.get("transferred", "transfer"),
        )
        view = _view(moved, None)
    logger.info("handoff %s transferred from %s to %s", handoff_id, agent, to_agent)
    return view


def finish(
    settings: Settings, handoff_id: int, agent: str, ask_rating: bool, override: bool = False
) -> HandoffView:
    """End the handover: the bot resumes; with `ask_rating` it asks for a 1–5 rating.

    The close and the bot's return are one transaction (the return goes through the notice
    outbox, retried while Rasa is down), so a customer is never left paused."""
    _active_for(settings, handoff_id, agent, override)
    with session_scope(settings.database_url) as session:
        try:
            handoff = HandoffRepository(session).close(handoff_id)
        except HandoffStateError as error:
            raise HandoverError("该会话已结束") from error
        enqueue_handback(session, handoff, ask_rating, to_utc_naive(utc_now()))
        view = _view(handoff, None)
    NoticeDelivery(settings).deliver_due()
    logger.info("handoff %s %s by %s", handoff_id, "handed back" if ask_rating else "closed", agent)
    return view


def claim_wait_minutes(settings: Settings) -> float:
    return settings.service.handoff.claim_wait_minutes


def _file_callback(settings: Settings, view: HandoffView) -> Optional[str]:
    """In one transaction: close the hand-over as a call-back if it is still waiting, file its
    ticket (one per hand-over, whichever console process gets there) and owe the customer the
    「无人接入」 notice. None when an agent claimed it first."""
    catalog = load_catalog()
    details = {k: v for k, v in view.details.items() if k in catalog.fields}
    details["description"] = intake.staff_text(
        "callback_unclaimed",
        reason=view.reason,
        minutes=f"{claim_wait_minutes(settings):g}",
        conversation_id=view.conversation_id,
    )
    with session_scope(settings.database_url) as session:
        try:
            handoff = HandoffRepository(session).convert_to_callback(view.id, None)
        except HandoffStateError:
            return None  # claimed (or swept by another console) meanwhile
        ticket, created = TicketRepository(session).create(
            intake.CALLBACK_SERVICE,
            details,
            view.conversation_id,
            view.channel,
            submission=f"handoff-callback:{view.id}",
        )
        handoff.ticket_no = ticket.ticket_no
        if created:
            text = catalog.system_messages["handoff_timeout"].format(ticket_no=ticket.ticket_no)
            enqueue_notice(session, ticket, "handoff_timeout", text, to_utc_naive(utc_now()))
        return str(ticket.ticket_no)


def sweep_unclaimed(settings: Settings) -> List[str]:
    """Call-back tickets for conversations nobody claimed in time; their ticket numbers.

    The customer is told through the notice outbox (bot.core.notifications), which also resumes
    the paused conversation — retried until Rasa and the channel take it."""
    with session_scope(settings.database_url) as session:
        stale = [
            _view(h, None)
            for h in HandoffRepository(session).waiting_since(claim_wait_minutes(settings))
        ]
    filed = []
    for view in stale:
        ticket_no = _file_callback(settings, view)
        if ticket_no is not None:
            logger.info("handoff %s unclaimed: call-back ticket %s", view.id, ticket_no)
            filed.append(ticket_no)
    if filed:
        NoticeDelivery(settings).deliver_due()
    return filed
