"""Escalation of tickets not resolved on time, and who owns a ticket.

A ticket's *limit* is the first-contact time while a first contact is promised and nobody has
contacted the customer yet (complaints: 24 h), else its due time (faults and emergencies:
the on-site time, 45/90/120 minutes by area). Level n of config/service.yml `escalation` is
reached `levels[n-1].multiple` times the limit after filing (1×: the department's supervisor,
2×: the next level). Resolved, closed and cancelled tickets never escalate.

    with session_scope() as session:
        escalated = escalate_due(session, utc_now())   # [(ticket_no, level), …]

Exactly once, even with two console processes, a restart in between or a step that was down
for a while: each level is one conditional UPDATE ``… SET escalation_level = n WHERE
escalation_level = n - 1`` whose row count says whether this process won it; only the winner
writes the history entry, in the same transaction. (PostgreSQL: a second UPDATE waits for the
first transaction and then finds the level already moved; SQLite: writers are serialised.)
A ticket late enough for two levels gets both, one after the other, each recorded.

The history entry (actor "escalation", action "escalated") is the console's notification:
the 「超时督办」 list, the badges and the header count read it back from the tickets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, List, Mapping, Optional

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from bot.core.catalog import Catalog, load_catalog
from bot.core.clock import to_local, to_utc_naive
from bot.core.settings import EscalationConfig, get_settings
from bot.core.tickets.models import FINAL_STATUSES, Ticket, TicketEvent

logger = logging.getLogger(__name__)

ACTOR = "escalation"
ACTION = "escalated"


def escalation_limit(ticket: Ticket) -> Optional[datetime]:
    """The (stored, naive UTC) time limit escalation counts from, or None when there is none."""
    if ticket.first_contact_due_at is not None and ticket.first_contacted_at is None:
        return ticket.first_contact_due_at
    return ticket.due_at


def level_deadline(ticket: Ticket, multiple: float) -> Optional[datetime]:
    """When `multiple` times the ticket's limit, counted from its filing, has passed."""
    limit = escalation_limit(ticket)
    if limit is None:
        return None
    created: datetime = ticket.created_at
    return created + (limit - created) * multiple


def level_reached(ticket: Ticket, now: datetime, config: EscalationConfig) -> int:
    """The escalation level the ticket deserves at `now` (stored naive UTC); 0 when on time
    or finished."""
    if ticket.status in FINAL_STATUSES:
        return 0
    reached = 0
    for number, level in enumerate(config.levels, start=1):
        deadline = level_deadline(ticket, level.multiple)
        if deadline is None or now < deadline:
            break
        reached = number
    return reached


def level_name(level: int, catalog: Optional[Catalog] = None) -> str:
    """「一级督办」 (catalog labels.escalation); empty for level 0."""
    if level <= 0:
        return ""
    labels = (catalog or load_catalog()).labels.get("escalation", {})
    return labels.get(f"level_{level}") or labels.get("level_other", "{level}").format(level=level)


def escalated_to(ticket: Ticket, level: int, config: EscalationConfig) -> str:
    """Whom level `level` of this ticket goes to (config `to`, with its department)."""
    if not 1 <= level <= len(config.levels):
        return ""
    return config.levels[level - 1].to.format(department=ticket.department)


def owner_label(ticket: Ticket, names: Optional[Mapping[str, str]] = None) -> str:
    """Who owns the ticket now: its assignee (by display name when `names` has it), else its
    department's queue (catalog labels.owner.queue, 「抢修队列」)."""
    if ticket.assignee:
        assignee = str(ticket.assignee)
        return (names or {}).get(assignee, assignee)
    return queue_label(str(ticket.department))


def queue_label(department: str, catalog: Optional[Catalog] = None) -> str:
    """The department's queue as staff read it (「抢修队列」)."""
    template = (catalog or load_catalog()).labels.get("owner", {}).get("queue", "{department}")
    return template.format(department=department)


def _candidates(session: Session, now: datetime, top: int) -> List[Ticket]:
    """Open tickets below the top level whose limit has passed (the only ones that can
    escalate: every level's deadline is at or after the limit)."""
    late_first_contact = and_(
        Ticket.first_contact_due_at.isnot(None),
        Ticket.first_contacted_at.is_(None),
        Ticket.first_contact_due_at <= now,
    )
    late_due = and_(Ticket.due_at.isnot(None), Ticket.due_at <= now)
    query = (
        select(Ticket)
        .where(
            Ticket.status.notin_(FINAL_STATUSES),
            Ticket.escalation_level < top,
            or_(late_first_contact, late_due),
        )
        .order_by(Ticket.id)
    )
    return list(session.execute(query).scalars())


def _claim_level(session: Session, ticket_id: int, level: int, now: datetime) -> bool:
    """Move the ticket from level-1 to `level` if nobody has; True when this call did."""
    result: Any = session.execute(
        update(Ticket)
        .where(
            Ticket.id == ticket_id,
            Ticket.escalation_level == level - 1,
            Ticket.status.notin_(FINAL_STATUSES),
        )
        .values(escalation_level=level, escalated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)


@dataclass(frozen=True)
class Escalation:
    ticket_no: str
    level: int
    to: str


def escalate_due(
    session: Session,
    now: datetime,
    config: Optional[EscalationConfig] = None,
    catalog: Optional[Catalog] = None,
) -> List[Escalation]:
    """Escalate every open ticket whose next level is due at `now` (aware, or naive UTC);
    returns what this call escalated. The caller owns (and commits) the transaction."""
    config = config or get_settings().service.escalation
    catalog = catalog or load_catalog()
    if not config.levels:
        return []
    stored_now = to_utc_naive(now)
    done: List[Escalation] = []
    template = catalog.staff_messages.get("escalated", "{level_name} {to}")
    for ticket in _candidates(session, stored_now, len(config.levels)):
        target = level_reached(ticket, stored_now, config)
        start = int(ticket.escalation_level or 0)
        for level in range(start + 1, target + 1):
            if not _claim_level(session, int(ticket.id), level, stored_now):
                break  # another process escalated it meanwhile
            to = escalated_to(ticket, level, config)
            deadline = level_deadline(ticket, config.levels[level - 1].multiple)
            note = template.format(
                limit=to_local(deadline).strftime("%Y-%m-%d %H:%M") if deadline else "",
                level_name=level_name(level, catalog),
                to=to,
                level=level,
            )
            session.add(
                TicketEvent(
                    ticket_id=ticket.id,
                    at=stored_now,
                    actor=ACTOR,
                    action=ACTION,
                    changes={"level": [level - 1, level], "to": to},
                    note=note,
                )
            )
            done.append(Escalation(str(ticket.ticket_no), level, to))
        session.flush()
        session.expire(ticket)  # its level moved under the ORM (the bulk UPDATE)
    for item in done:
        logger.warning("ticket %s escalated to level %s (%s)", item.ticket_no, item.level, item.to)
    return done


@dataclass(frozen=True)
class EscalatedRow:
    """One line of the 「超时督办」 list."""

    ticket: Ticket
    level: int
    level_name: str
    to: str
    owner: str
    limit: Optional[datetime]
    overdue_minutes: Optional[float]


def escalated_tickets(
    session: Session,
    now: datetime,
    config: Optional[EscalationConfig] = None,
    names: Optional[Mapping[str, str]] = None,
) -> List[EscalatedRow]:
    """Open escalated tickets, highest level first, then the longest overdue."""
    config = config or get_settings().service.escalation
    stored_now = to_utc_naive(now)
    query = select(Ticket).where(Ticket.escalation_level > 0, Ticket.status.notin_(FINAL_STATUSES))
    rows = []
    for ticket in session.execute(query).scalars():
        limit = escalation_limit(ticket)
        level = int(ticket.escalation_level or 0)
        rows.append(
            EscalatedRow(
                ticket=ticket,
                level=level,
                level_name=level_name(level),
                to=escalated_to(ticket, level, config),
                owner=owner_label(ticket, names),
                limit=limit,
                overdue_minutes=(
                    (stored_now - limit).total_seconds() / 60 if limit is not None else None
                ),
            )
        )
    rows.sort(key=lambda r: (-r.level, -(r.overdue_minutes or 0.0)))
    return rows


def open_escalation_count(session: Session) -> int:
    """How many open tickets are escalated (the header's count for supervisors)."""
    query = (
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.escalation_level > 0, Ticket.status.notin_(FINAL_STATUSES))
    )
    return int(session.execute(query).scalar_one())
