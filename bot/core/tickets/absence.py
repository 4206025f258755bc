"""An absent agent or crew member's open tickets go to a named colleague or back to their
department's queue, each with a history entry saying who did it, from whom to whom and why.

    with session_scope() as session:
        moved = release_open_tickets(session, "crew1", actor="boss", reason="病假", colleague="crew2")

Only the tickets are moved: the absence itself is not stored (there is no absence table yet),
so the record of who covers for whom is the tickets' history (catalog staff_messages.absent).
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.catalog import Catalog, load_catalog
from bot.core.clock import utc_now
from bot.core.tickets.models import FINAL_STATUSES, Ticket
from bot.core.tickets.repository import TicketRepository


class SameColleague(ValueError):
    """An absent person cannot cover for themselves."""


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
    template = catalog.staff_messages.get("absent", "{user}: {reason}")
    why = template.format(user=username, reason=reason)
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
