"""Due times of tickets from the catalog's time limits and the Chinese working-day calendar.

Working days: chinese-calendar for the years it knows (it includes 调休 working weekends);
config/holidays.yml for later years; plain weekends (with one logged warning per year) for a
year in neither — a due time is never worth a crash.

Rule for N working days: the due time is the end (23:59:59 local) of the Nth working day
after the filing day.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping, Optional, Set, Tuple

import chinese_calendar

from bot.core.catalog import Service
from bot.core.clock import as_local
from bot.core.settings import get_settings

logger = logging.getLogger(__name__)

END_OF_DAY = time(23, 59, 59)
DEFAULT_AREA_TYPE = "urban"
_MAX_SCAN_DAYS = 366  # no calendar has a year of holidays; stops a bad config from looping

_warned_years: Set[int] = set()


def _configured_year(year: int) -> Optional[Tuple[Set[date], Set[date]]]:
    """(holidays, workdays) of `year` from config/holidays.yml, or None when absent."""
    entry = get_settings().holidays.get(year)
    if entry is None:
        return None
    return set(entry.holidays), set(entry.workdays)


def is_working_day(day: date) -> bool:
    """True when `day` is an official working day in mainland China."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        pass
    configured = _configured_year(day.year)
    if configured is not None:
        holidays, workdays = configured
        return day in workdays or (day.weekday() < 5 and day not in holidays)
    if day.year not in _warned_years:
        _warned_years.add(day.year)
        logger.warning(
            "No holiday calendar for %s (chinese-calendar and config/holidays.yml): counting "
            "weekends only. Add the year to config/holidays.yml.",
            day.year,
        )
    return day.weekday() < 5


def add_working_days(start: date, days: int) -> date:
    """The `days`-th working day after `start` (`start` itself does not count)."""
    current, remaining = start, days
    for _ in range(days + _MAX_SCAN_DAYS):
        if remaining <= 0:
            return current
        current += timedelta(days=1)
        if is_working_day(current):
            remaining -= 1
    if remaining <= 0:
        return current
    raise RuntimeError(f"no {days} working days after {start}: check config/holidays.yml")


def area_type(address: Optional[str]) -> str:
    """urban / rural / remote for an address, from config/areas.yml (urban when unknown)."""
    areas = get_settings().areas
    default = areas.default
    if not address:
        return default
    districts = areas.districts
    # Longest name first, so 南澳县 wins over a shorter key contained in it.
    for name in sorted(districts, key=len, reverse=True):
        if name in address:
            return districts[name]
    return default


def _working_days(limit: Mapping[str, Any], details: Mapping[str, Any]) -> Optional[int]:
    by_type = limit.get("by_customer_type")
    if by_type:
        customer_type = details.get("customer_type")
        if customer_type in by_type:
            return int(by_type[customer_type])
        # Unknown type: the longest commitment, so the due time is never too early.
        return int(limit.get("days") or max(by_type.values()))
    days = limit.get("days")
    return None if days is None else int(days)


def compute_due_at(
    service: Service, created_local: datetime, details: Mapping[str, Any]
) -> Optional[datetime]:
    """The due time (aware, local) of a ticket of `service` filed at `created_local`.

    A naive `created_local` is taken as local time (settings.timezone). None when the
    category has no time limit.
    """
    limit = service.time_limit or {}
    kind = limit.get("kind", "none")
    created = as_local(created_local)
    if kind == "none":
        return None
    if kind == "hours":
        return created + timedelta(hours=float(limit["hours"]))
    if kind == "on_site_minutes_by_area":
        minutes = limit["minutes"]
        area = area_type(details.get("address"))
        value = minutes.get(area, minutes.get(DEFAULT_AREA_TYPE))
        return created + timedelta(minutes=float(value))
    if kind == "working_days":
        days = _working_days(limit, details)
        if days is None:
            return None
        due_day = add_working_days(created.date(), days)
        return datetime.combine(due_day, END_OF_DAY, tzinfo=created.tzinfo)
    # A configuration mistake must not stop a customer's ticket from being filed.
    logger.error("unknown time limit kind %r for %s: no due time", kind, service.code)
    return None


def compute_first_contact_due(service: Service, created_local: datetime) -> Optional[datetime]:
    """When a person must first contact the customer (`first_contact_hours` of the category's
    time limit: a complaint is called back within 24 h), or None."""
    hours = (service.time_limit or {}).get("first_contact_hours")
    if hours is None:
        return None
    return as_local(created_local) + timedelta(hours=float(hours))
