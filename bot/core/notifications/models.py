"""The notifications table: one row per message owed to a customer, and how its delivery went."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import relationship

from bot.core.db import Base, sql_in

# pending: to be sent at next_attempt_at · sent · failed: retries used up ·
# superseded: a newer notice about the same ticket replaced it before it went out.
NOTICE_STATES = ("pending", "sent", "failed", "superseded")
# ticket_status: staff changed the ticket's status. handoff_timeout: nobody took the customer's
# hand-over in time; a call-back ticket was filed and the bot resumes the conversation.
# handback / handback_rating: an agent ended a hand-over; the bot resumes the conversation
# (and asks for a 1–5 rating). These belong to a hand-over, not a ticket.
# The form a hand-back with a rating runs (domain: rating_form).
RATING_FORM = "rating_form"
NOTICE_KINDS = ("ticket_status", "handoff_timeout", "handback", "handback_rating")


class Notification(Base):
    """A message (or a resume) owed to the customer of a ticket or a hand-over, sent through
    the channel they used."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(sql_in("state", NOTICE_STATES), name="state"),
        CheckConstraint(sql_in("kind", NOTICE_KINDS), name="kind"),
        Index("ix_notifications_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_notifications_conversation_id_state", "conversation_id", "state"),
    )

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id"), index=True)
    handoff_id = Column(Integer, ForeignKey("handoffs.id"), index=True)
    conversation_id = Column(String(128), nullable=False)
    channel = Column(String(32), nullable=False)
    kind = Column(String(16), nullable=False)
    ticket_status = Column(String(16))
    text = Column(Text, nullable=False)
    state = Column(String(16), nullable=False)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime, nullable=False)
    last_attempt_at = Column(DateTime)
    last_error = Column(String(500))
    created_at = Column(DateTime, nullable=False)
    sent_at = Column(DateTime)

    ticket = relationship("Ticket", lazy="joined")

    def __repr__(self) -> str:
        return f"<Notification {self.id} ticket={self.ticket_id} {self.state}>"
