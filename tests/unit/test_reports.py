"""Branch comparison and the monthly report (bot/core/reports): figures of a seeded month
checked against values computed by hand, the Excel workbook read back, the CLI, the console.

The seeded month (local times, Shantou UTC+8; minutes after filing):

  ticket  branch     dept        filed        agent   contact resolved due   rating
  A1      潮南供电所 抢修        11-02 10:00  agent1  10      60       90    5 (by ticket_no, agent1)
  A2      潮南供电所 抢修        11-05 10:00  agent1  20      120      90    1 (by ticket_no, agent2)
  A3      潮南供电所 抢修        11-10 10:00  agent2  30      200      90    4 (by ticket_no, agent2)
  A4      潮南供电所 抢修        11-20 10:00  agent2  40      —        90    (open: overdue now)
  B1      金平供电所 客服投诉组  11-03 09:00  agent1  30      600      1000  2 (by conversation, agent1)
  B2      金平供电所 客服投诉组  11-03 15:00  agent1  90      300      1000
  C1      未分配     客服中心    11-01 07:00  —       —       —        none  (10-31 23:00 UTC: in)
  E1      潮南供电所 抢修        12-01 07:00  —       —       —        90    (11-30 23:00 UTC: out)
  plus a rating 1 by agent1 on 10-20 (outside the month, linked to no ticket).
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, Iterator, Optional

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from bot.core.branches import branch_of, find_branch
from bot.core.db import session_scope
from bot.core.handoff.models import Handoff
from bot.core.reports import daily_trend, figures, month_range, overdue, percentile
from bot.core.reports.workbook import monthly_report, save_workbook
from bot.core.settings import get_settings, reset_settings
from bot.core.tickets.models import Ticket
from bot.core.tickets.repository import TicketRepository
from tests.unit.console_helpers import make_client, sign_in

LOCAL = timezone(timedelta(hours=8))
NOW = datetime(2026, 12, 1, 4, 0)  # naive UTC: 12-01 12:00 local
CHAONAN = "汕头市潮南区峡山街道东山路12号"
JINPING = "汕头市金平区金砂街道长平路3号"
ELSEWHERE = "广州市天河区体育西路1号"


def _local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=LOCAL)


def _file(
    url: str,
    name: str,
    category: str,
    address: str,
    filed: datetime,
    agent: Optional[str] = None,
    contact: Optional[int] = None,
    resolved: Optional[int] = None,
    due: Optional[int] = None,
) -> str:
    """File a ticket at `filed`; staff act `contact` and `resolved` minutes later."""
    with session_scope(url) as session:
        ticket, _ = TicketRepository(session, clock=lambda: filed).create(
            category, {"address": address, "description": name}, f"conv-{name}", "rest"
        )
        number = ticket.ticket_no
        if due is not None:
            ticket.due_at = (
                (filed + timedelta(minutes=due)).astimezone(timezone.utc).replace(tzinfo=None)
            )
    if contact is not None:
        with session_scope(url) as session:
            at = filed + timedelta(minutes=contact)
            TicketRepository(session, clock=lambda: at).update(
                number, agent or "agent1", status="in_progress", assignee=agent
            )
    if resolved is not None:
        with session_scope(url) as session:
            at = filed + timedelta(minutes=resolved)
            TicketRepository(session, clock=lambda: at).update(
                number, agent or "agent1", status="resolved"
            )
    return number


def _rating(
    url: str,
    agent: str,
    rating: int,
    created: datetime,
    ticket_no: Optional[str] = None,
    conversation: str = "conv-other",
) -> None:
    with session_scope(url) as session:
        session.add(
            Handoff(
                conversation_id=conversation,
                channel="rest",
                reason="request_human",
                status="closed",
                priority="normal",
                agent=agent,
                details={},
                ticket_no=ticket_no,
                created_at=created.astimezone(timezone.utc).replace(tzinfo=None),
                rating=rating,
            )
        )


@pytest.fixture
def month(db_url: str) -> Dict[str, str]:
    """The seeded November 2026; the ticket numbers by name."""
    n: Dict[str, str] = {}
    n["A1"] = _file(db_url, "A1", "fault_repair", CHAONAN, _local(11, 2, 10), "agent1", 10, 60, 90)
    n["A2"] = _file(db_url, "A2", "fault_repair", CHAONAN, _local(11, 5, 10), "agent1", 20, 120, 90)
    n["A3"] = _file(
        db_url, "A3", "fault_repair", CHAONAN, _local(11, 10, 10), "agent2", 30, 200, 90
    )
    n["A4"] = _file(
        db_url, "A4", "fault_repair", CHAONAN, _local(11, 20, 10), "agent2", 40, None, 90
    )
    n["B1"] = _file(db_url, "B1", "complaint", JINPING, _local(11, 3, 9), "agent1", 30, 600, 1000)
    n["B2"] = _file(db_url, "B2", "complaint", JINPING, _local(11, 3, 15), "agent1", 90, 300, 1000)
    n["C1"] = _file(db_url, "C1", "praise", ELSEWHERE, _local(11, 1, 7))
    n["E1"] = _file(db_url, "E1", "fault_repair", CHAONAN, _local(12, 1, 7), due=90)
    _rating(db_url, "agent1", 5, _local(11, 2, 10), ticket_no=n["A1"])
    _rating(db_url, "agent2", 1, _local(11, 5, 10), ticket_no=n["A2"])
    _rating(db_url, "agent2", 4, _local(11, 10, 10), ticket_no=n["A3"])
    _rating(db_url, "agent1", 2, _local(11, 3, 9), conversation="conv-B1")
    _rating(db_url, "agent1", 1, _local(10, 20, 9), conversation="conv-old")
    return n


def _by_name(rows):
    return {row["name"]: row for row in rows}


# -- branches --------------------------------------------------------------------------------


def test_every_district_belongs_to_exactly_one_branch() -> None:
    areas = get_settings().areas
    owners: Dict[str, int] = {}
    for branch in areas.branches:
        for district in branch.districts:
            owners[district] = owners.get(district, 0) + 1
    assert owners == {district: 1 for district in areas.districts}


def test_a_town_wins_over_its_district_and_unknown_addresses_are_unassigned() -> None:
    assert branch_of(CHAONAN) == "潮南供电所"
    assert branch_of("汕头市龙湖区外砂街道蓬中村") == "外砂供电所"  # a town inside 龙湖区
    assert branch_of("汕头市龙湖区长平路88号") == "龙湖供电所"
    assert branch_of("南澳县后宅镇") == "南澳供电所"
    assert branch_of(ELSEWHERE) == "未分配" and find_branch(ELSEWHERE) is None
    assert branch_of(None) == "未分配" and branch_of("") == "未分配"


def test_a_filed_ticket_carries_its_branch(db_url: str) -> None:
    filed = _local(11, 2, 10)
    _file(db_url, "X", "fault_repair", JINPING, filed)
    _file(db_url, "Y", "praise", ELSEWHERE, filed)
    with session_scope(db_url) as session:
        branches = {t.details["description"]: t.branch for t in session.query(Ticket)}
    assert branches == {"X": "金平供电所", "Y": None}


# -- figures ---------------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.9) is None
    assert percentile([7], 0.9) == 7
    assert percentile([60, 120, 200], 0.9) == 200
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile(list(range(1, 12)), 0.9) == 10


def test_month_range_is_local(db_url: str) -> None:
    assert month_range("2026-11") == (datetime(2026, 10, 31, 16, 0), datetime(2026, 11, 30, 16, 0))
    assert month_range("2026-12")[1] == datetime(2026, 12, 31, 16, 0)
    with pytest.raises(ValueError):
        month_range("November")


def test_branch_figures_equal_the_hand_computed_ones(db_url: str, month) -> None:
    start, end = month_range("2026-11")
    with session_scope(db_url) as session:
        rows = figures(session, start, end, "branch", now=NOW)
    assert [row["name"] for row in rows] == ["金平供电所", "潮南供电所", "未分配"]  # slowest first
    chaonan = _by_name(rows)["潮南供电所"]
    assert chaonan == {
        "name": "潮南供电所",
        "tickets": 4,  # E1 was filed on 12-01 local time
        "resolved": 3,
        "resolved_within_limit_pct": 25.0,  # only A1 within its 90 minutes
        "median_first_contact_min": 25.0,  # 10 20 30 40
        "p90_first_contact_min": 40.0,
        "median_resolution_min": 120.0,  # 60 120 200
        "p90_resolution_min": 200.0,
        "overdue_now": 1,  # A4
        "ratings": 3,  # 5 1 4
        "rating_avg": 3.33,
        "low_rating_share": 33.3,
    }
    jinping = _by_name(rows)["金平供电所"]
    assert (
        jinping["tickets"],
        jinping["resolved_within_limit_pct"],
        jinping["median_first_contact_min"],
        jinping["p90_first_contact_min"],
        jinping["median_resolution_min"],
        jinping["p90_resolution_min"],
        jinping["overdue_now"],
        jinping["rating_avg"],
        jinping["low_rating_share"],
    ) == (2, 100.0, 60.0, 90.0, 450.0, 600.0, 0, 2.0, 100.0)  # rating linked by conversation
    unassigned = _by_name(rows)["未分配"]
    assert unassigned["tickets"] == 1  # C1: 11-01 07:00 local is 10-31 in UTC, still November
    assert unassigned["resolved_within_limit_pct"] is None  # praise has no time limit
    assert unassigned["p90_resolution_min"] is None and unassigned["rating_avg"] is None


def test_department_and_agent_figures(db_url: str, month) -> None:
    start, end = month_range("2026-11")
    with session_scope(db_url) as session:
        departments = figures(session, start, end, "department", now=NOW)
        agents = figures(session, start, end, "agent", now=NOW)
    assert [row["name"] for row in departments] == ["客服投诉组", "抢修", "客服中心"]
    assert _by_name(departments)["抢修"]["p90_resolution_min"] == 200.0
    assert [row["name"] for row in agents] == ["agent1", "agent2", "未指派"]
    agent1, agent2 = _by_name(agents)["agent1"], _by_name(agents)["agent2"]
    # agent1: A1 A2 B1 B2 — resolution 60 120 300 600, contact 10 20 30 90, A2 late.
    assert (
        agent1["tickets"],
        agent1["median_resolution_min"],
        agent1["p90_resolution_min"],
        agent1["median_first_contact_min"],
        agent1["p90_first_contact_min"],
        agent1["resolved_within_limit_pct"],
    ) == (4, 210.0, 600.0, 25.0, 90.0, 75.0)
    # Ratings of the hand-overs each agent handled in the month (the 10-20 one is outside).
    assert (agent1["ratings"], agent1["rating_avg"], agent1["low_rating_share"]) == (2, 3.5, 50.0)
    assert (agent2["ratings"], agent2["rating_avg"], agent2["low_rating_share"]) == (2, 2.5, 50.0)
    assert (agent2["tickets"], agent2["resolved_within_limit_pct"], agent2["overdue_now"]) == (
        2,
        0.0,
        1,
    )


def test_daily_trend_and_overdue(db_url: str, month) -> None:
    start, end = month_range("2026-11")
    with session_scope(db_url) as session:
        trend = daily_trend(session, start, end)
        late = overdue(session, NOW)
    assert len(trend) == 30 and trend[0]["day"].isoformat() == "2026-11-01"
    busy = {row["day"].day: (row["tickets"], row["resolved"]) for row in trend if row["tickets"]}
    assert busy == {1: (1, 0), 2: (1, 1), 3: (2, 2), 5: (1, 1), 10: (1, 1), 20: (1, 0)}
    assert [row["ticket_no"] for row in late] == [month["A4"], month["E1"]]  # most overdue first
    assert late[0]["overdue_hours"] == 264.5  # 11-20 11:30 → 12-01 12:00
    assert late[0]["branch"] == "潮南供电所"


def test_an_empty_range_has_no_rows(db_url: str, month) -> None:
    start, end = month_range("2026-09")
    with session_scope(db_url) as session:
        assert figures(session, start, end, "branch", now=NOW) == []
        assert figures(session, start, end, "agent", now=NOW) == []
        assert daily_trend(session, start, end) == []
    with pytest.raises(ValueError):
        with session_scope(db_url) as session:
            figures(session, start, end, "colour")


# -- the workbook and the command line -------------------------------------------------------

SHEETS = ["分支机构", "部门", "坐席", "每日趋势", "超时工单"]


def test_the_workbook_reads_back(db_url: str, month, tmp_path: Path) -> None:
    with session_scope(db_url) as session:
        book, name = monthly_report(session, "2026-11", now=NOW)
    path = save_workbook(book, tmp_path / name)
    assert path.name == "report-2026-11.xlsx"
    read = load_workbook(path)
    assert read.sheetnames == SHEETS
    branches = read["分支机构"]
    header = [cell.value for cell in branches[1]]
    assert header[:3] == ["分支机构", "工单数", "办结数"] and "办结时长P90(分钟)" in header
    assert branches.freeze_panes == "A2"
    assert branches["A2"].value == "金平供电所"
    assert branches.cell(row=3, column=header.index("办结时长P90(分钟)") + 1).value == 200
    assert branches.cell(row=3, column=header.index("时限内办结率(%)") + 1).value == 25
    assert branches.column_dimensions["A"].width >= 10
    assert read["坐席"]["A2"].value == "agent1"
    assert read["每日趋势"].max_row == 31  # a header and 30 days
    late = read["超时工单"]
    assert [late["A2"].value, late["A3"].value] == [month["A4"], month["E1"]]
    assert late["G2"].value == datetime(2026, 11, 20, 10, 0)  # filed, local time


def test_an_empty_month_still_has_every_sheet_and_header(db_url: str, tmp_path: Path) -> None:
    with session_scope(db_url) as session:
        book, _ = monthly_report(session, "2026-09", now=NOW)
    read = load_workbook(save_workbook(book, tmp_path / "empty.xlsx"))
    assert read.sheetnames == SHEETS
    assert read["部门"].max_row == 1 and read["部门"]["A1"].value == "部门"


def test_the_report_command_writes_the_file(
    db_url: str, month, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import _report

    monkeypatch.setenv("DATABASE_URL", db_url)
    reset_settings()
    out = tmp_path / "out" / "nov.xlsx"
    try:
        assert _report(argparse.Namespace(month="2026-11", out=str(out))) == 0
        assert _report(argparse.Namespace(month="11/2026", out=str(out))) == 2
    finally:
        reset_settings()
    assert load_workbook(out).sheetnames == SHEETS
    assert load_workbook(out)["分支机构"]["A2"].value == "金平供电所"


# -- the console -----------------------------------------------------------------------------


@pytest.fixture
def client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    yield from make_client(db_url, monkeypatch)


def test_the_supervisor_page_and_the_report_download(client: TestClient, month) -> None:
    sign_in(client, "agent1")
    assert client.get("/console/supervisor/report.xlsx?month=2026-11").status_code == 403
    sign_in(client, "boss")

    def comparison(query: str) -> str:
        """The page without the all-time charts (they say 暂无数据 of their own)."""
        page = client.get(f"/console/supervisor?{query}").text
        return re.sub(r'<p class="muted empty chart-empty"[^>]*>[^<]*</p>', "", page)

    page = comparison("range=custom&start=2026-11-01&end=2026-11-30")
    assert 'id="trend-chart"' in page and "潮南供电所" in page and "暂无数据" not in page
    assert page.index("金平供电所") < page.index("潮南供电所")  # slowest first
    empty = comparison("range=custom&start=2026-09-01&end=2026-09-30")
    assert 'id="trend-chart"' not in empty and empty.count("暂无数据") == 4
    response = client.get("/console/supervisor/report.xlsx?month=2026-11")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="report-2026-11.xlsx"'
    assert response.content[:2] == b"PK"  # a zip: the xlsx container
    assert client.get("/console/supervisor/report.xlsx?month=nope").status_code == 400
