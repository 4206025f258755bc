"""The handoffs table: one row per conversation handed to a human agent."""

from __future__ import annotations

from sqlalchemy import JSON, CheckConstraint, Column, DateTime, Integer, String

from bot.core.catalog import PRIORITIES
from bot.core.db import Base, sql_in

REASONS = ("request_human", "emergency", "fallback", "validation", "complaint", "callback")
HANDOFF_STATUSES = ("waiting", "active", "closed")
OPEN_STATUSES = ("waiting", "active")


class Handoff(Base):
    """A conversation in (or through) the agents' queue."""

    __tablename__ = "handoffs"
    __table_args__ = (
        CheckConstraint(sql_in("reason", REASONS), name="reason"),
        CheckConstraint(sql_in("status", HANDOFF_STATUSES), name="status"),
        CheckConstraint(sql_in("priority", PRIORITIES), name="priority"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(128), nullable=False, index=True)
    channel = Column(String(32), nullable=False)
    reason = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False, index=True)
    priority = Column(String(16), nullable=False)
    agent = Column(String(64))
    details = Column(JSON, nullable=False)
    ticket_no = Column(String(16))
    created_at = Column(DateTime, nullable=False)
    claimed_at = Column(DateTime)
    closed_at = Column(DateTime)
    rating = Column(Integer)
    rating_at = Column(DateTime)
    # every change of agent: [{"at", "by", "from", "to", "why"}] (transfers, absences)
    moves = Column(JSON)

    def __repr__(self) -> str:
        return f"<Handoff {self.id} {self.conversation_id} {self.status}>"
