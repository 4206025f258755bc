"""The supervisor's branch comparison in a real headless Chromium: a seeded November shows the
three tables (slowest branch first) and the daily trend as inline SVG; an empty range shows
「暂无数据」 and no chart; the monthly report downloads as .xlsx. The console runs in this
process on a free port (no Rasa needed). Screenshots go to reports/screenshots/."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterator, Optional

import pytest
from openpyxl import load_workbook
from playwright import sync_api

from bot.core.db import session_scope, upgrade_database
from bot.core.settings import load_settings
from bot.core.staff import add_user
from bot.core.tickets.repository import TicketRepository
from tests.e2e.console_thread import console_in_thread, environment
from tests.stack import SCREENSHOTS, open_page

expect = sync_api.expect
PASSWORD = "supervisor-browser-pass"
LOCAL = timezone(timedelta(hours=8))
NOVEMBER = "/console/supervisor?range=custom&start=2026-11-01&end=2026-11-30"
SEPTEMBER = "/console/supervisor?range=custom&start=2026-09-01&end=2026-09-30"


def _file(url: str, category: str, address: str, filed: datetime, resolved: Optional[int]) -> None:
    with session_scope(url) as session:
        ticket, _ = TicketRepository(session, clock=lambda: filed).create(
            category, {"address": address}, f"conv-{filed.isoformat()}", "rest"
        )
        number = ticket.ticket_no
    if resolved is not None:
        at = filed + timedelta(minutes=resolved)
        with session_scope(url) as session:
            TicketRepository(session, clock=lambda: at).update(
                number, "agent1", status="resolved", assignee="agent1"
            )


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("supervisor-console")
    env = {
        "INTAKE_VAR_DIR": str(root / "var"),
        "DATABASE_URL": f"sqlite:///{root / 'console.db'}",
        "CONSOLE_SWEEP_SECONDS": "0",
        "CONSOLE_HTTPS_ONLY": "0",
    }
    with environment(env):
        settings = load_settings()
        upgrade_database(settings.database_url)
        with session_scope(settings.database_url) as session:
            add_user(session, "banzhang", PASSWORD, "supervisor", "刘班长")
        for day in range(2, 29, 3):  # 潮南: slow repairs; 金平: quick ones; one unresolved each
            filed = datetime(2026, 11, day, 10, tzinfo=LOCAL)
            _file(
                settings.database_url,
                "fault_repair",
                "潮南区峡山街道东山路12号",
                filed,
                60 + day * 10,
            )
            _file(settings.database_url, "fault_repair", "金平区金砂街道长平路3号", filed, 20)
        _file(
            settings.database_url,
            "complaint",
            "澄海区澄华街道",
            datetime(2026, 11, 9, 9, tzinfo=LOCAL),
            None,
        )
        with console_in_thread(settings) as url:
            yield url


@pytest.fixture
def page(browser: "sync_api.Browser", console: str) -> Iterator["sync_api.Page"]:
    with open_page(browser, 20_000, viewport={"width": 1366, "height": 900}) as opened:
        opened.goto(f"{console}/console/supervisor")
        opened.fill("input[name=username]", "banzhang")
        opened.fill("input[name=password]", PASSWORD)
        opened.click("button[type=submit]")
        expect(opened.locator("header .who")).to_contain_text("刘班长")
        yield opened


def test_a_seeded_month_shows_tables_and_the_trend(
    page: "sync_api.Page", console: str, tmp_path
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{console}{NOVEMBER}")
    expect(page.locator("#range-shown")).to_have_text("2026-11-01 – 2026-11-30")
    names = page.locator("#figures-branch tbody tr td:first-child").all_inner_texts()
    assert names == ["潮南供电所", "金平供电所", "澄海供电所"]  # slowest first; 澄海 unresolved
    expect(page.locator("#figures-department")).to_contain_text("抢修")
    expect(page.locator("#figures-agent")).to_contain_text("agent1")
    chart = page.locator("#trend svg#trend-chart")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > 300
    assert page.locator("#trend-chart rect.tickets").count() == 10  # ten days with tickets
    assert page.locator("#trend-chart rect.resolved").count() == 9
    expect(page.locator("#comparison")).not_to_contain_text("暂无数据")
    expect(page.locator("#departments")).to_contain_text("抢修")  # today's tables still there
    page.screenshot(path=str(SCREENSHOTS / "console-supervisor-branches.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#export-report")
    assert download.value.suggested_filename == "report-2026-11.xlsx"
    saved = tmp_path / "report.xlsx"
    download.value.save_as(saved)
    book = load_workbook(saved)
    assert book.sheetnames == ["分支机构", "部门", "坐席", "每日趋势", "超时工单"]
    assert book["分支机构"]["A2"].value == "潮南供电所"


def test_the_range_selector_and_an_empty_range(page: "sync_api.Page", console: str) -> None:
    page.goto(f"{console}{NOVEMBER}")
    page.fill("input[name=start]", "2026-09-01")
    page.fill("input[name=end]", "2026-09-30")
    page.click("#range-form button[type=submit]")
    expect(page).to_have_url(f"{console}{SEPTEMBER}")
    expect(page.locator("#trend")).to_have_text("暂无数据")
    assert page.locator("#trend svg").count() == 0
    for group in ("branch", "department", "agent"):
        expect(page.locator(f"#figures-{group} tbody")).to_have_text("暂无数据")
    page.screenshot(path=str(SCREENSHOTS / "console-supervisor-empty.png"), full_page=True)
    page.check("input[name=range][value=today]")
    page.click("#range-form button[type=submit]")
    expect(page.locator("input[name=range][value=today]")).to_be_checked()
