"""Time conventions: the database stores naive UTC; people see local time (settings.timezone).

`utc_now()` is the one clock of the application; repositories accept a `clock` callable so
tests can pin it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Optional
from zoneinfo import ZoneInfo

from bot.core.settings import get_settings


@lru_cache(maxsize=None)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_zone() -> ZoneInfo:
    """The deployment's time zone (INTAKE_TIMEZONE, default Asia/Shanghai)."""
    return _zone(get_settings().timezone)


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def to_utc_naive(value: datetime) -> datetime:
    """An aware datetime as naive UTC for storage; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def to_local(value: datetime) -> datetime:
    """A stored (naive UTC) or aware datetime as an aware local datetime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(local_zone())


def as_local(value: datetime) -> datetime:
    """A datetime meant as local time: naive ones get the local zone, aware ones are converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=local_zone())
    return value.astimezone(local_zone())


def iso_local(value: Optional[datetime]) -> Optional[str]:
    """ISO 8601 in local time, e.g. ``2026-11-27T17:30:00+08:00`` (None stays None)."""
    if value is None:
        return None
    return to_local(value).replace(microsecond=0).isoformat()
