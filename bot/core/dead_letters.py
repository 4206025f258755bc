"""Dead letters: work given up after its bounded retries, kept for staff to look at.

An outbound call that keeps failing (today: forwarding a Telegram update from the long-polling
runner to the Rasa server) is tried a bounded number of times; then one row is written here
and the caller moves on, so one poisonous item never blocks the ones after it.

    from bot.core import dead_letters
    dead_letters.record("telegram_poll", 123456, attempts=5, error="HTTP 500", payload={...})
    dead_letters.recent(20)                        # newest first

Staff see them with `python -m bot dead-letters` (no payload) and `GET /api/v1/dead-letters`
(with the payload). The payload is what was being sent and may hold personal data (a
customer's message); logs name the key only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Dict, List, Optional, Union

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    delete,
    select,
)

from bot.core.clock import iso_local, to_utc_naive, utc_now
from bot.core.db import Base, session_scope

SOURCE_MAX_CHARS = 32
KEY_MAX_CHARS = 128
ERROR_MAX_CHARS = 300


class DeadLetter(Base):
    """One item given up: where it came from, its key, how often it was tried and why."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        CheckConstraint("attempts >= 1", name="attempts"),
        Index("ix_dead_letters_source_created_at", "source", "created_at"),
    )

    id = Column(Integer, primary_key=True)
    created_at = Column(DateTime, nullable=False)  # naive UTC
    source = Column(String(SOURCE_MAX_CHARS), nullable=False)  # e.g. "telegram_poll"
    key = Column(String(KEY_MAX_CHARS), nullable=False)  # e.g. the Telegram update_id
    attempts = Column(Integer, nullable=False)
    last_error = Column(String(ERROR_MAX_CHARS), nullable=False)
    payload = Column(Text, nullable=False)  # JSON text

    def __repr__(self) -> str:
        return f"<DeadLetter {self.id} {self.source}:{self.key} x{self.attempts}>"


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split())  # one line
    return text if len(text) <= limit else text[: limit - 1] + "…"


def record(
    source: str,
    key: Union[str, int],
    *,
    attempts: int,
    error: str,
    payload: Any,
    url: Optional[str] = None,
    now: Optional[datetime] = None,
) -> DeadLetter:
    """Write one dead letter (committed) and return it; `payload` must be JSON-serialisable."""
    letter = DeadLetter(
        created_at=to_utc_naive(now or utc_now()),
        source=_short(source, SOURCE_MAX_CHARS),
        key=_short(str(key), KEY_MAX_CHARS),
        attempts=max(int(attempts), 1),
        last_error=_short(error or "unknown error", ERROR_MAX_CHARS),
        payload=json.dumps(payload, ensure_ascii=False, default=str),
    )
    with session_scope(url) as session:
        session.add(letter)
    return letter


def recent(
    limit: int = 50, source: Optional[str] = None, url: Optional[str] = None
) -> List[DeadLetter]:
    """The newest dead letters first, of one `source` if given."""
    if source and "\x00" in source:
        return []  # no source has one (and PostgreSQL refuses NUL in a parameter)
    query = select(DeadLetter).order_by(DeadLetter.created_at.desc(), DeadLetter.id.desc())
    if source:
        query = query.where(DeadLetter.source == source)
    with session_scope(url) as session:
        return list(session.execute(query.limit(max(int(limit), 1))).scalars())


def delete_before(cutoff: datetime, url: Optional[str] = None) -> int:
    """Delete dead letters written before `cutoff` (for a retention purge); returns how many."""
    with session_scope(url) as session:
        result = session.execute(
            delete(DeadLetter).where(DeadLetter.created_at < to_utc_naive(cutoff))
        )
        return int(result.rowcount or 0)


def payload_of(letter: DeadLetter) -> Any:
    """The payload as JSON data (the raw text if it is not JSON)."""
    try:
        return json.loads(letter.payload)
    except (TypeError, ValueError):
        return letter.payload


def as_dict(letter: DeadLetter, with_payload: bool = False) -> Dict[str, Any]:
    """A dead letter for the API (local times); the payload only when asked for."""
    data: Dict[str, Any] = {
        "id": letter.id,
        "created_at": iso_local(letter.created_at),
        "source": letter.source,
        "key": letter.key,
        "attempts": letter.attempts,
        "last_error": letter.last_error,
    }
    if with_payload:
        data["payload"] = payload_of(letter)
    return data
