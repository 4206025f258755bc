"""The ticket list in a real headless Chromium, signed in as an agent: 60 tickets make two
pages (click 下一页), a filter narrows the list and the paging keeps it, priorities read in
Chinese — with a screenshot under reports/screenshots/. The console runs in this process on a
free port (no Rasa needed), as in test_trainer_browser.py."""

from __future__ import annotations

import datetime as dt
import re
from typing import Iterator

import pytest
from playwright import sync_api

from bot.core.catalog import load_catalog
from bot.core.db import session_scope, upgrade_database
from bot.core.settings import load_settings
from bot.core.staff import add_user
from bot.core.tickets.repository import TicketRepository
from tests.e2e.console_thread import console_in_thread, environment
from tests.stack import SCREENSHOTS, open_page

expect = sync_api.expect
PASSWORD = "ticket-list-pass"
COUNT = 60
CODES = ("transfer", "fault_repair", "emergency")  # normal, high, urgent in turn


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("ticket-list-console")
    env = {
        "INTAKE_VAR_DIR": str(root / "var"),
        "DATABASE_URL": f"sqlite:///{root / 'console.db'}",
        "CONSOLE_SWEEP_SECONDS": "0",
        "CONSOLE_HTTPS_ONLY": "0",
    }
    with environment(env):
        settings = load_settings()
        upgrade_database(settings.database_url)
        start = dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.timezone.utc)
        numbers = []
        with session_scope(settings.database_url) as session:
            add_user(session, "zhangli", PASSWORD, "agent", "张丽")
            for i in range(COUNT):
                at = start + dt.timedelta(minutes=i)
                ticket, _ = TicketRepository(session, clock=lambda at=at: at).create(
                    CODES[i % 3],
                    {"phone": f"139{i:08d}", "description": f"browser ticket {i}"},
                    f"browser-list-{i}",
                    "rest",
                )
                numbers.append(ticket.ticket_no)
        with console_in_thread(settings) as url:
            yield {"url": url, "numbers": numbers}


@pytest.fixture
def page(browser: "sync_api.Browser", console: dict) -> Iterator["sync_api.Page"]:
    with open_page(browser, 20_000, viewport={"width": 1366, "height": 900}) as opened:
        yield opened


def test_ticket_list_pages_and_filters(page: "sync_api.Page", console: dict) -> None:
    names = load_catalog().labels["priorities"]
    page.goto(f"{console['url']}/console/tickets")
    page.fill("input[name=username]", "zhangli")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text("张丽")
    page.goto(f"{console['url']}/console/tickets")
    rows = page.locator("#ticket-list tbody tr")
    newest = list(reversed(console["numbers"]))

    expect(page.locator("#pager-info")).to_have_text("第 1 / 2 页，共 60 张")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text(newest[0])
    expect(rows.first).to_contain_text(names["urgent"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-ticket-list.png"), full_page=True)

    page.click("#pager >> text=下一页")
    expect(page.locator("#pager-info")).to_have_text("第 2 / 2 页，共 60 张")
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text(newest[50])
    expect(page.locator("#pager a[rel=next]")).to_have_count(0)
    page.click("#pager >> text=上一页")
    expect(page.locator("#pager-info")).to_have_text("第 1 / 2 页，共 60 张")

    # a filter narrows the list; the sort chosen with it is kept
    page.select_option("select[name=priority]", "urgent")
    page.select_option("select[name=sort]", "due")
    page.click("#ticket-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"priority=urgent"))
    expect(page.locator("#pager-info")).to_have_text("第 1 / 1 页，共 20 张")
    expect(rows).to_have_count(20)
    for badge in page.locator("#ticket-list tbody .badge.prio-urgent").all():
        expect(badge).to_have_text(names["urgent"])
    expect(page.locator("#ticket-list tbody .badge.prio-high")).to_have_count(0)
    expect(page.locator("select[name=sort]")).to_have_value("due")
    page.screenshot(path=str(SCREENSHOTS / "console-ticket-list-filtered.png"), full_page=True)

    # a ticket number search finds the one ticket
    page.fill("input[name=q]", newest[7].lower())
    page.select_option("select[name=priority]", "")
    page.click("#ticket-filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(newest[7])
