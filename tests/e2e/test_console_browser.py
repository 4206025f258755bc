"""The staff console in a real headless Chromium (Playwright + Debian's /usr/bin/chromium):
sign-in, a conversation appearing in the queue, claiming, replying, handing back, a ticket
status change and the supervisor page — with a screenshot of each main page saved under
reports/screenshots/."""

from __future__ import annotations

import re
from typing import Iterator

import pytest
from playwright import sync_api

from bot.core.db import session_scope
from bot.core.staff import add_user
from bot.core.tickets.repository import TicketRepository
from bot.tools.runner import Stack
from tests.e2e.test_handover import WebCustomer, wait_for
from tests.stack import SCREENSHOTS, Api, open_page

expect = sync_api.expect
PASSWORD = "browser-test-pass"
TIMEOUT_MS = 30_000
NAMES = {"zhangli": "张丽", "banzhang": "刘班长"}


@pytest.fixture(scope="module")
def users(stack: Stack) -> None:
    with session_scope(stack.settings.database_url) as session:
        for (username, display), role in zip(NAMES.items(), ("agent", "supervisor")):
            add_user(session, username, PASSWORD, role, display)


@pytest.fixture
def page(browser: "sync_api.Browser", users: None) -> Iterator["sync_api.Page"]:
    """A laptop-sized page (1366×768) with its own cookies."""
    expect.set_options(timeout=TIMEOUT_MS)
    with open_page(browser, TIMEOUT_MS, viewport={"width": 1366, "height": 768}) as opened:
        yield opened


def console(stack: Stack, path: str) -> str:
    return f"http://127.0.0.1:{stack.settings.console_port}{path}"


def sign_in(page: "sync_api.Page", stack: Stack, username: str, shot: str = "") -> None:
    page.goto(console(stack, "/console/queue"))
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    if shot:
        page.screenshot(path=str(SCREENSHOTS / shot), full_page=True)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text(NAMES[username])


def test_agent_claims_replies_and_hands_back(page: "sync_api.Page", stack: Stack, api: Api) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(console(stack, "/console/queue"))
    sign_in(page, stack, "zhangli", "console-login.png")
    customer = WebCustomer(stack)
    customer.say("我要过户")
    customer.say("转人工")
    row = page.locator(f"#queue tr:has-text('{customer.sender}')")
    expect(row).to_be_visible()  # the page refreshes itself
    page.screenshot(path=str(SCREENSHOTS / "console-queue.png"), full_page=True)
    row.locator("a").click()
    page.click("#claim")
    expect(page.locator("#status")).to_have_text("接待中")
    page.fill("#reply-text", "您好，我是张丽，过户需要带房产证和身份证。")
    page.click("#send")
    expect(page.locator("#transcript")).to_contain_text("人工客服 · 张丽")
    wait_for(
        lambda: [m for m in customer.history() if m.get("agent") == "张丽"],
        what="the reply in the customer's chat",
    )
    customer.say("好的，<b>谢谢</b>")  # shown live, as text
    expect(page.locator("#transcript")).to_contain_text("<b>谢谢</b>")
    page.screenshot(path=str(SCREENSHOTS / "console-conversation.png"), full_page=True)
    page.click("#handback")
    expect(page.locator("#status")).to_have_text("已结束")
    wait_for(lambda: [m for m in customer.history() if "1～5" in m["text"]], what="rating question")


def test_ticket_status_change(page: "sync_api.Page", stack: Stack) -> None:
    with session_scope(stack.settings.database_url) as session:
        ticket, _ = TicketRepository(session).create(
            "fault_repair",
            {"address": "龙湖区长平路88号", "phone": "13812345678", "description": "整栋楼停电"},
            "browser-ticket",
            "rest",
        )
        number = ticket.ticket_no
    sign_in(page, stack, "zhangli")
    page.goto(console(stack, "/console/tickets"))
    expect(page.locator(f"a:has-text('{number}')")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "console-tickets.png"), full_page=True)
    page.click(f"a:has-text('{number}')")
    page.select_option("#status-select", "in_progress")
    page.fill("textarea[name=note]", "抢修班已出发")
    page.click("#save-ticket")
    expect(page.locator("#ticket-status")).to_have_text("处理中")
    expect(page.locator("#history")).to_contain_text("抢修班已出发")
    expect(page.locator("#history")).to_contain_text("zhangli")
    page.screenshot(path=str(SCREENSHOTS / "console-ticket.png"), full_page=True)


def test_supervisor_page(page: "sync_api.Page", stack: Stack) -> None:
    sign_in(page, stack, "banzhang")
    page.goto(console(stack, "/console/supervisor"))
    expect(page.locator("#departments")).to_contain_text("抢修")
    for image in page.locator(".charts img").all():
        expect(image).to_have_js_property("complete", True)
        assert image.evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=str(SCREENSHOTS / "console-supervisor.png"), full_page=True)
    with page.expect_download() as download:
        page.click("text=导出 CSV")
    assert download.value.suggested_filename == "supervisor-stats.csv"
