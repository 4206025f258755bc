"""Inbox tables: one row per group of near-identical customer messages, one per label.

An item is found by `key_hash`, the SHA-256 of its normalised text (`text_key`, unbounded
``Text``): a long message must not break the unique index. A label is committed first and
written to its data file afterwards (`written_at`); a failed write leaves `write_error` for
``python -m bot trainer flush`` to retry.
"""

from __future__ import annotations

import hashlib

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
)
from sqlalchemy.orm import validates

from bot.core.db import Base, sql_in

ITEM_STATUSES = ("open", "labelled", "discarded")
DISCARD_REASONS = ("noise", "personal_data", "duplicate")


def key_hash(text_key: str) -> str:
    """SHA-256 (hex) of a normalised text key: the inbox's fixed-length lookup key."""
    return hashlib.sha256(text_key.encode("utf-8")).hexdigest()


class InboxItem(Base):
    """Messages the assistant misunderstood or was unsure about, grouped by normalised text."""

    __tablename__ = "trainer_inbox_items"
    __table_args__ = (CheckConstraint(sql_in("status", ITEM_STATUSES), name="status"),)

    id = Column(Integer, primary_key=True)
    text_key = Column(Text, nullable=False)  # normalised (inbox.text_key), any length
    key_hash = Column(String(64), nullable=False, unique=True, index=True)  # set with text_key
    text = Column(Text, nullable=False)  # the first occurrence, as the customer wrote it
    count = Column(Integer, nullable=False)
    reasons = Column(JSON, nullable=False)  # e.g. ["fallback", "low_confidence"]
    predicted_intent = Column(String(64))
    confidence = Column(Float)
    context = Column(JSON, nullable=False)  # {previous_bot, next_user, sender_id}
    status = Column(String(16), nullable=False, index=True, default="open")
    first_seen = Column(DateTime, nullable=False)
    last_seen = Column(DateTime, nullable=False)

    @validates("text_key")
    def _set_key_hash(self, _name: str, value: str) -> str:
        self.key_hash = key_hash(value)
        return value


class InboxLabel(Base):
    """What a trainer decided about one inbox item (a label or a discard), and where it went."""

    __tablename__ = "trainer_labels"
    __table_args__ = (
        CheckConstraint(
            "(intent IS NOT NULL) OR (discard_reason IS NOT NULL)", name="label_or_discard"
        ),
        CheckConstraint(
            f"discard_reason IS NULL OR {sql_in('discard_reason', DISCARD_REASONS)}",
            name="discard_reason",
        ),
    )

    id = Column(Integer, primary_key=True)
    item_id = Column(
        Integer,
        ForeignKey("trainer_inbox_items.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    intent = Column(String(64))
    example = Column(Text)  # Rasa markup with personal data already replaced
    data_file = Column(String(255))
    discard_reason = Column(String(32))
    labelled_by = Column(String(64), nullable=False)
    labelled_at = Column(DateTime, nullable=False)
    written_at = Column(DateTime)  # when the example reached data_file (NULL: not yet)
    write_error = Column(Text)  # why the last write failed (NULL: none)
