"""Outage look-up: matching by district and street, and the time window."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.core.db import session_scope
from bot.core.queries.outage_models import PlannedOutage
from bot.core.queries.outages import OutageService
from bot.core.seed import seed_demo_data

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc)


def _add(
    url: str, ref: str, district: str, area: str, start: timedelta, hours: float, kind="planned"
):
    with session_scope(url) as session:
        start_at = (NOW + start).replace(tzinfo=None)
        session.add(
            PlannedOutage(
                ref=ref,
                district=district,
                area=area,
                start_at=start_at,
                end_at=start_at + timedelta(hours=hours),
                reason="检修",
                kind=kind,
            )
        )


@pytest.fixture
def outages(db_url: str) -> OutageService:
    _add(db_url, "xs", "潮南区", "峡山街道东山路、西山路", timedelta(days=1), 8)
    _add(db_url, "cd", "潮南区", "陈店镇文光村", timedelta(days=2), 8)
    _add(db_url, "cp", "龙湖区", "长平路、黄山路", timedelta(hours=-1), 4, "ongoing")
    _add(
        db_url, "late", "龙湖区", "长平路", timedelta(days=15), 4
    )  # beyond the two weeks looked at
    _add(db_url, "past", "龙湖区", "长平路", timedelta(days=-1), 4)  # over
    return OutageService(db_url)


def _refs(notices) -> list:
    return [(n.area.split("、")[0], n.matched_on) for n in notices]


def test_street_match_first_then_same_district(outages: OutageService) -> None:
    found = outages.find("潮南区峡山街道东山路12号", NOW)
    assert _refs(found) == [("峡山街道东山路", "street"), ("陈店镇文光村", "district")]
    assert found[0].start_at.isoformat() == "2026-11-28T17:30:00+08:00"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("长平路88号", [("长平路", "street")]),  # street named inside the address
        ("龙湖区", [("长平路", "district")]),  # district only
        ("龙湖", [("长平路", "district")]),  # part of a district name
        ("峡山", [("峡山街道东山路", "street")]),  # part of a street name
        ("潮南", [("峡山街道东山路", "district"), ("陈店镇文光村", "district")]),
        ("金平区长平路", []),  # another district's street of the same name
        ("金平区", []),
        ("区", []),  # too short to mean anything
        ("", []),
    ],
)
def test_matching(outages: OutageService, text: str, expected: list) -> None:
    assert _refs(outages.find(text, NOW)) == expected


def test_ongoing_outage_has_restoration_time(outages: OutageService) -> None:
    (notice,) = outages.find("长平路", NOW)
    assert notice.ongoing and notice.end_at.isoformat() == "2026-11-27T20:30:00+08:00"


def test_window_moves_with_now(outages: OutageService) -> None:
    assert _refs(outages.find("长平路", NOW + timedelta(days=3))) == [("长平路", "street")]


def test_seeded_outages_always_include_something_upcoming(db_url: str) -> None:
    later = NOW + timedelta(days=40)
    with session_scope(db_url) as session:
        assert seed_demo_data(session, NOW)["outages"] == 6
    with session_scope(db_url) as session:
        # weeks later the demo outages have ended: seeding moves them forward
        assert seed_demo_data(session, later)["outages"] == 6
        assert seed_demo_data(session, later)["outages"] == 0
    service = OutageService(db_url)
    assert [n.kind for n in service.find("金平区金砂路", later)] == ["ongoing"]
    found = service.find("潮南区峡山街道东山路12号", later)
    assert found and found[0].start_at > later
    # demo-6 starts in 10 days: within the two weeks a customer is told about
    assert [n.reason for n in service.find("潮阳区棉北街道", later)] == ["业扩接入施工"]
