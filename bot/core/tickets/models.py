"""Ticket tables: tickets, their append-only history, and the per-day number sequence.

Datetimes are stored as naive UTC (see bot.core.clock).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    event,
    text,
)
from sqlalchemy.orm import relationship

from bot.core.db import Base, sql_in

STATUSES = ("new", "assigned", "in_progress", "resolved", "closed", "cancelled")
FINAL_STATUSES = ("resolved", "closed", "cancelled")


class Ticket(Base):
    """One service request (spec §3)."""

    __tablename__ = "tickets"
    __table_args__ = (CheckConstraint(sql_in("status", STATUSES), name="status"),)

    id = Column(Integer, primary_key=True)
    ticket_no = Column(String(16), nullable=False, unique=True)
    category = Column(String(32), nullable=False, index=True)
    priority = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False, index=True)
    department = Column(String(64), nullable=False)
    assignee = Column(String(64))
    details = Column(JSON, nullable=False)
    contact_phone = Column(String(20), index=True)
    conversation_id = Column(String(128), index=True)
    channel = Column(String(32), nullable=False)
    request_key = Column(String(64), nullable=False, unique=True)
    created_at = Column(DateTime, nullable=False)
    updated_at = Column(DateTime, nullable=False)
    due_at = Column(DateTime)
    # The first-contact promise (complaints: a person calls within 24 h) and when staff first
    # acted on the ticket (a status change or a note).
    first_contact_due_at = Column(DateTime)
    first_contacted_at = Column(DateTime)
    # A location the customer shared (Telegram, WeChat, the web chat), and its place in words.
    latitude = Column(Float)
    longitude = Column(Float)
    location_text = Column(String(200))
    # The branch office serving the address (config/areas.yml `branches`); None: unassigned.
    branch = Column(String(32), index=True)
    # Escalation of a ticket not resolved on time (bot/core/tickets/escalation.py): the level
    # reached (0: none; levels of config/service.yml `escalation`) and when it was reached.
    escalation_level = Column(Integer, nullable=False, default=0, server_default=text("0"))
    escalated_at = Column(DateTime)

    events = relationship("TicketEvent", order_by="TicketEvent.id", back_populates="ticket")

    def __repr__(self) -> str:
        return f"<Ticket {self.ticket_no} {self.category} {self.status}>"


class TicketEvent(Base):
    """One entry of a ticket's history: who did what, when. Never updated or deleted."""

    __tablename__ = "ticket_events"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id"), nullable=False, index=True)
    at = Column(DateTime, nullable=False)
    actor = Column(String(64), nullable=False)
    action = Column(String(32), nullable=False)
    changes = Column(JSON)
    note = Column(Text)

    ticket = relationship("Ticket", back_populates="events")


class TicketSequence(Base):
    """The last ticket number handed out on a local day (YYYYMMDD)."""

    __tablename__ = "ticket_sequences"

    day = Column(String(8), primary_key=True)
    last_value = Column(Integer, nullable=False)


class HistoryIsAppendOnly(RuntimeError):
    """Raised when code tries to change or delete a ticket history entry."""


@event.listens_for(TicketEvent, "before_update")
@event.listens_for(TicketEvent, "before_delete")
def _refuse_history_change(_mapper: Any, _connection: Any, target: TicketEvent) -> None:
    raise HistoryIsAppendOnly(f"ticket history entry {target.id} cannot be changed")
