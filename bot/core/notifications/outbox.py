"""Writing notices: called inside the transaction that changes a ticket, so a committed change
always has its notice and a rolled-back one never does."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.catalog import Catalog
from bot.core.clock import iso_local
from bot.core.handoff.models import Handoff
from bot.core.notifications.models import Notification
from bot.core.tickets.models import Ticket


def status_notice_text(catalog: Catalog, ticket: Ticket) -> Optional[str]:
    """What the customer is told about the ticket's status (None: it is not announced)."""
    status = ticket.status
    template = catalog.ticket_notifications.get(status)
    if not template:
        return None
    service = catalog.services.get(ticket.category)
    return template.format(
        ticket_no=ticket.ticket_no,
        service=service.name if service else "",
        status=catalog.statuses.get(status, status),
        department=ticket.department,
    )


def enqueue_status_notice(
    session: Session, catalog: Catalog, ticket: Ticket, now: datetime
) -> Optional[Notification]:
    """Owe the ticket's customer a message about its new status, replacing any unsent one.

    Nothing is owed when the status is not announced or the ticket has no conversation to
    write into (`now` is naive UTC, as stored)."""
    text = status_notice_text(catalog, ticket)
    if text is None or not ticket.conversation_id:
        return None
    session.execute(
        update(Notification)
        .where(
            Notification.ticket_id == ticket.id,
            Notification.kind == "ticket_status",
            Notification.state == "pending",
        )
        .values(state="superseded")
        .execution_options(synchronize_session=False)
    )
    return enqueue_notice(session, ticket, "ticket_status", text, now)


def enqueue_notice(
    session: Session, ticket: Ticket, kind: str, text: str, now: datetime
) -> Notification:
    """Owe the customer of `ticket` the message `text`, on the ticket's channel."""
    if not ticket.conversation_id:
        raise ValueError(f"ticket {ticket.ticket_no} has no conversation to write into")
    return _owe(
        session,
        now,
        ticket_id=ticket.id,
        conversation_id=ticket.conversation_id,
        channel=ticket.channel,
        kind=kind,
        ticket_status=ticket.status,
        text=text,
    )


def enqueue_handback(
    session: Session, handoff: Handoff, ask_rating: bool, now: datetime, text: str = ""
) -> Notification:
    """Owe the customer of a closed hand-over the bot's return (and the rating question).

    Written in the transaction that closes the hand-over, so a close that commits always
    resumes the conversation — retried while Rasa is down — and a failed close never does."""
    return _owe(
        session,
        now,
        handoff_id=handoff.id,
        conversation_id=handoff.conversation_id,
        channel=handoff.channel,
        kind="handback_rating" if ask_rating else "handback",
        text=text,
    )


def _owe(session: Session, now: datetime, **fields: Any) -> Notification:
    """A new pending notice, due now, added to the session."""
    notice = Notification(
        state="pending", attempts=0, next_attempt_at=now, created_at=now, **fields
    )
    session.add(notice)
    return notice


def list_notices(
    session: Session, ticket_id: Optional[int] = None, states: Sequence[str] = (), limit: int = 100
) -> List[Notification]:
    """Notices, newest first, optionally of one ticket and/or in some states."""
    query = select(Notification)
    if ticket_id is not None:
        query = query.where(Notification.ticket_id == ticket_id)
    if states:
        query = query.where(Notification.state.in_(states))
    return list(session.execute(query.order_by(Notification.id.desc()).limit(limit)).scalars())


def notice_dict(notice: Notification) -> Dict[str, Any]:
    """A notice as the JSON API shows it (times in local ISO format)."""
    ticket = notice.ticket
    return {
        "id": notice.id,
        "ticket_no": ticket.ticket_no if ticket is not None else None,
        "handoff_id": notice.handoff_id,
        "kind": notice.kind,
        "ticket_status": notice.ticket_status,
        "conversation_id": notice.conversation_id,
        "channel": notice.channel,
        "text": notice.text,
        "state": notice.state,
        "attempts": notice.attempts,
        "last_error": notice.last_error,
        "created_at": iso_local(notice.created_at),
        "last_attempt_at": iso_local(notice.last_attempt_at),
        "next_attempt_at": iso_local(notice.next_attempt_at) if notice.state == "pending" else None,
        "sent_at": iso_local(notice.sent_at),
    }
