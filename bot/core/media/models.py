"""The attachments table: one row per photo a customer sent (the files are in the media store).

A photo is *held* for its conversation (`ticket_id` NULL) until a ticket is filed there, then
attached to it. Datetimes are naive UTC (see bot.core.clock).
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Index, Integer, String

from bot.core.db import Base, sql_in

KINDS = ("photo",)


class Attachment(Base):
    """One photo: who sent it, where it is stored, and the ticket it belongs to (if any)."""

    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint(sql_in("kind", KINDS), name="kind"),
        Index("ix_attachments_conversation_id_ticket_id", "conversation_id", "ticket_id"),
    )

    id = Column(Integer, primary_key=True)
    kind = Column(String(16), nullable=False)
    conversation_id = Column(String(128), nullable=False)
    ticket_id = Column(Integer, ForeignKey("tickets.id"), index=True)
    channel = Column(String(32), nullable=False)
    content_type = Column(String(32), nullable=False)
    size_bytes = Column(Integer, nullable=False)
    width = Column(Integer, nullable=False)
    height = Column(Integer, nullable=False)
    sha256 = Column(String(64), nullable=False)
    file_key = Column(String(255), nullable=False, unique=True)
    thumbnail_key = Column(String(255), nullable=False, unique=True)
    created_at = Column(DateTime, nullable=False, index=True)
    attached_at = Column(DateTime)

    def __repr__(self) -> str:
        return f"<Attachment {self.id} {self.kind} ticket={self.ticket_id}>"
