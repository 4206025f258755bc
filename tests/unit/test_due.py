"""Due times: working days with the official calendar (2026 data of chinese-calendar, the
holiday file for 2027, weekends for unknown years) and on-site minutes by district."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.core.catalog import Service, load_catalog
from bot.core.tickets import due
from bot.core.tickets.due import add_working_days, area_type, compute_due_at, is_working_day

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def end_of(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 23, 59, 59, tzinfo=SHANGHAI)


def service(code: str) -> Service:
    return load_catalog().services[code]


@pytest.mark.parametrize(
    "day, working",
    [
        (date(2026, 11, 27), True),  # Friday
        (date(2026, 11, 28), False),  # Saturday
        (date(2026, 10, 1), False),  # 国庆
        (date(2026, 10, 7), False),  # 国庆 (Wednesday)
        (date(2026, 10, 10), True),  # 调休: Saturday worked after Golden Week
        (date(2026, 9, 20), True),  # 调休: Sunday worked before Golden Week
        (date(2026, 2, 14), True),  # 调休: Saturday before Spring Festival
        (date(2026, 2, 16), False),  # 春节
        (date(2026, 2, 23), False),  # 春节 (last day, Monday)
        (date(2026, 2, 28), True),  # 调休: Saturday after Spring Festival
        (date(2027, 1, 1), False),  # 元旦 2027 from config/holidays.yml
        (date(2027, 2, 5), False),  # 除夕 2027 from config/holidays.yml
        (date(2027, 1, 4), True),  # an ordinary Monday of 2027
        (date(2027, 1, 2), False),  # Saturday of 2027
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    assert is_working_day(day) is working


@pytest.mark.parametrize(
    "filed, days, expected",
    [
        # Friday afternoon: the weekend does not count.
        (date(2026, 11, 27), 5, date(2026, 12, 4)),
        # Golden Week: 10-01..07 off, 10-10 (Saturday) worked.
        (date(2026, 9, 30), 5, date(2026, 10, 13)),
        (date(2026, 10, 9), 5, date(2026, 10, 15)),
        # 调休 Sunday 09-20 is the first working day after Friday 09-18.
        (date(2026, 9, 18), 1, date(2026, 9, 20)),
        # Spring Festival: 02-14 (Saturday) worked, 02-15..23 off, 02-28 (Saturday) worked.
        (date(2026, 2, 13), 5, date(2026, 2, 27)),
        (date(2026, 2, 13), 6, date(2026, 2, 28)),
        (date(2026, 2, 12), 1, date(2026, 2, 13)),
        # Late December lands in 2027 through config/holidays.yml (元旦 2027-01-01 off).
        (date(2026, 12, 28), 5, date(2027, 1, 5)),
        (date(2026, 12, 31), 1, date(2027, 1, 4)),
        (date(2026, 12, 30), 9, date(2027, 1, 13)),
        # Zero days: the end of the filing day.
        (date(2026, 11, 27), 0, date(2026, 11, 27)),
    ],
)
def test_add_working_days(filed: date, days: int, expected: date) -> None:
    assert add_working_days(filed, days) == expected


def test_new_connection_days_depend_on_customer_type() -> None:
    filed = local(2026, 2, 13, 16, 45)
    residential = compute_due_at(service("new_connection"), filed, {"customer_type": "居民"})
    business = compute_due_at(service("new_connection"), filed, {"customer_type": "非居民"})
    assert residential == end_of(2026, 2, 27)
    assert business == end_of(2026, 2, 28)  # the 调休 Saturday is the 6th working day


def test_due_time_is_end_of_day_in_local_time() -> None:
    filed_utc = datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc)  # 17:30 in Shantou
    result = compute_due_at(service("transfer"), filed_utc, {})
    assert result == end_of(2026, 12, 4)
    assert result.isoformat() == "2026-12-04T23:59:59+08:00"


def test_naive_filing_time_is_local() -> None:
    result = compute_due_at(service("meter_dispute"), datetime(2026, 12, 28, 9, 0), {})
    assert result == end_of(2027, 1, 5)


def test_complaint_and_violation_limits() -> None:
    filed = local(2026, 9, 30)
    assert compute_due_at(service("complaint"), filed, {}) == end_of(2026, 10, 12)
    assert compute_due_at(service("violation_report"), filed, {}) == end_of(2026, 10, 19)


def test_praise_has_no_due_time() -> None:
    assert compute_due_at(service("praise"), local(2026, 11, 27), {}) is None


@pytest.mark.parametrize(
    "address, minutes",
    [
        ("龙湖区长平路88号", 45),
        ("金平区金砂路21号", 45),
        ("潮南区峡山街道东山路12号", 90),
        ("澄海区莲下镇程洋岗村", 90),
        ("南澳县后宅镇海滨路3号", 120),
        ("南澳岛青澳湾", 120),
        ("某某路1号", 45),  # unknown district: urban
        (None, 45),
    ],
)
def test_on_site_minutes_by_district(address: str, minutes: int) -> None:
    filed = local(2026, 10, 1, 23, 40)  # holidays and night do not matter on site
    details = {"address": address} if address else {}
    for code in ("fault_repair", "emergency"):
        assert compute_due_at(service(code), filed, details) == filed + timedelta(minutes=minutes)


def test_area_type_default() -> None:
    assert area_type("") == "urban"
    assert area_type("潮阳区棉北街道") == "rural"


def test_hours_limit() -> None:
    callback = Service(
        code="x",
        intent="x",
        name="x",
        department="x",
        priority="normal",
        required=(),
        time_limit={"kind": "hours", "hours": 24},
    )
    filed = local(2026, 12, 31, 20)
    assert compute_due_at(callback, filed, {}) == local(2027, 1, 1, 20)


def test_unknown_year_counts_weekends_and_warns_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(due, "_warned_years", set())
    with caplog.at_level(logging.WARNING, logger="bot.core.tickets.due"):
        # 2031-01-01 is a Wednesday; without a calendar it counts as a working day.
        assert add_working_days(date(2030, 12, 27), 3) == date(2031, 1, 1)
        assert add_working_days(date(2031, 1, 3), 5) == date(2031, 1, 10)
        assert compute_due_at(service("transfer"), local(2031, 1, 3), {}) == end_of(2031, 1, 10)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    years = sorted(str(r.args[0]) for r in warnings)
    assert years == ["2030", "2031"]  # one warning per year, however many days were checked


def test_year_before_the_library_does_not_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(due, "_warned_years", set())
    assert add_working_days(date(2003, 1, 3), 1) == date(2003, 1, 6)
