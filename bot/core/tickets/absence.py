"""An absent agent or crew member's open tickets go to a named colleague or back to their
department's queue, each with a history entry saying who did it, from whom to whom and why.

    with session_scope() as session:
        moved = release_open_tickets(session, "crew1", actor="boss", reason="病假", colleague="crew2")

`mark_absent` does all of it: it records the absence on the staff account (since when, why,
who covers: bot.core.staff.set_absent), moves the open tickets and the hand-overs the person
has claimed (to the colleague, or back to the waiting queue); `mark_returned` clears it.
Each hand-over move is appended to the hand-over's `moves` (who, from, to, why); the agent's
conversation page shows them under 「转交记录」.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.catalog import Catalog, load_catalog
from bot.core.clock import utc_now
from bot.core.handoff.repository import HandoffRepository, HandoffStateError
from bot.core.staff import clear_absence, list_agents, set_absent
from bot.core.tickets.models import FINAL_STATUSES, Ticket
from bot.core.tickets.repository import TicketRepository

log = logging.getLogger(__name__)


class SameColleague(ValueError):
    """An absent person cannot cover for themselves."""


class ColleagueAbsent(ValueError):
    """The colleague named to cover is absent too (or not an active agent)."""


def _check_colleague(session: Session, username: str, colleague: Optional[str]) -> None:
    if colleague is None:
        return
    if colleague == username:
        raise SameColleague(username)
    if colleague not in {u.username for u in list_agents(session, present_only=True)}:
        raise ColleagueAbsent(colleague)


def absence_note(username: str, reason: str, catalog: Catalog) -> str:
    """Why the work moved, as the history says it (catalog staff_messages.absent)."""
    template = catalog.staff_messages.get("absent", "{user}: {reason}")
    return template.format(user=username, reason=reason)


def release_open_tickets(
    session: Session,
    username: str,
    actor: str,
    reason: str,
    colleague: Optional[str] = None,
    clock: Callable[[], datetime] = utc_now,
    catalog: Optional[Catalog] = None,
) -> List[str]:
    """Move every open ticket of `username` to `colleague` (None: their department's queue);
    the ticket numbers moved, oldest first. The caller owns the transaction."""
    colleague = colleague or None
    if colleague == username:
        raise SameColleague(username)
    catalog = catalog or load_catalog()
    why = absence_note(username, reason, catalog)
    numbers = [
        str(number)
        for number in session.execute(
            select(Ticket.ticket_no)
            .where(Ticket.assignee == username, Ticket.status.notin_(FINAL_STATUSES))
            .order_by(Ticket.id)
        ).scalars()
    ]
    repository = TicketRepository(session, catalog=catalog, clock=clock)
    for number in numbers:
        repository.reassign(number, actor, colleague, why)
    return numbers


def release_claimed_handoffs(
    session: Session,
    username: str,
    actor: str,
    colleague: Optional[str] = None,
    clock: Callable[[], datetime] = utc_now,
    reason: str = "",
    catalog: Optional[Catalog] = None,
) -> List[int]:
    """Move the hand-overs `username` has claimed to `colleague` (None: back to the queue,
    waiting and unclaimed); the ids moved. One another agent closed or took meanwhile is
    left alone (conditional update). Each move is in the hand-over's moves (who, why)."""
    colleague = colleague or None
    if colleague == username:
        raise SameColleague(username)
    why = absence_note(username, reason, catalog or load_catalog())
    repository = HandoffRepository(session, clock=clock)
    moved = []
    for handoff_id in repository.claimed_by(username):
        try:
            repository.release(handoff_id, username, colleague, by=actor, why=why)
        except HandoffStateError:
            continue
        moved.append(handoff_id)
        log.info(
            "handoff %s of absent %s moved to %s by %s",
            handoff_id,
            username,
            colleague or "queue",
            actor,
        )
    return moved


@dataclass(frozen=True)
class Released:
    """What marking someone absent moved."""

    tickets: List[str]
    handoffs: List[int]


def mark_absent(
    session: Session,
    username: str,
    actor: str,
    reason: str,
    colleague: Optional[str] = None,
    clock: Callable[[], datetime] = utc_now,
    catalog: Optional[Catalog] = None,
) -> Released:
    """Record the absence on `username`'s account and move their open tickets and claimed
    hand-overs to `colleague` (None: the queues); ColleagueAbsent when the colleague is away
    too. The caller owns the transaction."""
    colleague = colleague or None
    _check_colleague(session, username, colleague)
    set_absent(session, username, reason, colleague, now=clock())
    tickets = release_open_tickets(session, username, actor, reason, colleague, clock, catalog)
    handoffs = release_claimed_handoffs(session, username, actor, colleague, clock, reason, catalog)
    return Released(tickets, handoffs)


def mark_returned(session: Session, username: str) -> bool:
    """`username` is back at work (nothing moves back); False when they were not absent."""
    return clear_absence(session, username)
