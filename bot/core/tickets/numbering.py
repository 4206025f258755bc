"""Ticket numbers: ``GD`` + local date ``YYYYMMDD`` + a 6-digit per-day sequence.

Unique under concurrency on SQLite and PostgreSQL: the day's counter row is created if missing
(INSERT … ON CONFLICT DO NOTHING), then incremented with a single UPDATE — which takes the row
(PostgreSQL) or database (SQLite) write lock until the caller's transaction ends — and read
back. The unique constraint on tickets.ticket_no is the last guard.
"""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.core.tickets.models import TicketSequence

PREFIX = "GD"
SEQUENCE_DIGITS = 6
TICKET_NO_PATTERN = re.compile(rf"^{PREFIX}\d{{8}}\d{{{SEQUENCE_DIGITS}}}$")

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def format_ticket_no(local_date: date, value: int) -> str:
    """``GD20261127000123`` for the 123rd ticket of 2026-11-27."""
    if not 0 < value < 10**SEQUENCE_DIGITS:
        raise OverflowError(f"ticket sequence {value} out of range for {local_date}")
    return f"{PREFIX}{local_date:%Y%m%d}{value:0{SEQUENCE_DIGITS}d}"


def next_ticket_no(session: Session, local_date: date) -> str:
    """Reserve the next number of `local_date` inside the session's transaction."""
    day = f"{local_date:%Y%m%d}"
    dialect = session.get_bind().dialect.name
    insert = _INSERTS.get(dialect)
    if insert is None:
        raise NotImplementedError(f"ticket numbering does not support {dialect}")
    session.execute(
        insert(TicketSequence)
        .values(day=day, last_value=0)
        .on_conflict_do_nothing(index_elements=["day"])
    )
    session.execute(
        update(TicketSequence)
        .where(TicketSequence.day == day)
        .values(last_value=TicketSequence.last_value + 1)
        .execution_options(synchronize_session=False)
    )
    value = session.execute(
        select(TicketSequence.last_value).where(TicketSequence.day == day)
    ).scalar_one()
    return format_ticket_no(local_date, value)
