"""The customer web chat page in a real browser, against the real stack.

Playwright drives Debian's Chromium (/usr/bin/chromium, `make browser` installs it with a CJK
font); Playwright's own browser download is never used. The page talks to the console, the
console to Rasa's REST channel and tracker — the same path a customer's phone takes.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Iterator

import pytest
import requests
from playwright import sync_api

from bot.core.catalog import load_catalog
from bot.tools.runner import Stack
from tests.stack import SCREENSHOTS, Api, open_page

expect = sync_api.expect

REPLY_TIMEOUT_MS = 60_000  # the first messages after start-up can be slow on two cores
TICKET_NO = re.compile(r"GD\d{14}")
PHONE_QUESTION = load_catalog().fields["phone"].ask


def page_sender(page: Any, stack: Stack) -> str:
    """The conversation of the page's browser, from its signed HttpOnly cookie (no script can
    read it; the test reads the browser's cookie jar and checks the signature)."""
    from bot.console.webchat import CHAT_COOKIE, read_chat_sender

    [cookie] = [c for c in page.context.cookies() if c["name"] == CHAT_COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    sender = read_chat_sender(stack.settings, cookie["value"])
    assert sender is not None
    return sender


@pytest.fixture
def page(browser: "sync_api.Browser") -> Iterator["sync_api.Page"]:
    """A phone-sized page with its own storage (a new customer)."""
    expect.set_options(timeout=REPLY_TIMEOUT_MS)
    with open_page(
        browser,
        REPLY_TIMEOUT_MS,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    ) as opened:
        yield opened


def chat_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.settings.console_port}/chat"


def open_chat(page: "sync_api.Page", stack: Stack) -> None:
    page.goto(chat_url(stack))
    page.wait_for_selector("html[data-ready]")


def say(page: "sync_api.Page", text: str) -> None:
    """Type a message and press Enter."""
    page.locator("#input").fill(text)
    page.locator("#input").press("Enter")


def settled(page: "sync_api.Page") -> None:
    """Nothing on its way: no typing dots, and every message is the tracker's copy."""
    expect(page.locator("#typing")).to_be_hidden()
    expect(page.locator("#local .row")).to_have_count(0)


def bot_bubbles(page: "sync_api.Page"):
    return page.locator(".row.bot:not(.typing) .bubble")


@contextmanager
def showing_the_page(page: "sync_api.Page") -> Iterator[None]:
    """On a failed expectation, say what the customer was looking at."""
    try:
        yield
    except AssertionError as error:
        shot = SCREENSHOTS / "webchat-failure.png"
        try:
            seen = page.locator("#log").inner_text(timeout=2000)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot))
        except Exception as inner:  # the page itself is gone
            seen = f"(page unavailable: {inner})"
        raise AssertionError(f"{error}\n--- the page showed ({shot}) ---\n{seen}") from None


def test_customer_reports_a_fault_and_gets_a_ticket(stack: Stack, api: Api, page) -> None:
    open_chat(page, stack)
    # a first visit: the welcome and its quick chips
    expect(page.locator(".welcome .chip")).to_have_text(["停电报修", "查电费", "办理新装"])

    with showing_the_page(page):
        say(page, "家里停电了，龙湖区长平路88号3栋502")
        expect(page.locator(".row.customer .bubble").first).to_have_text(
            "家里停电了，龙湖区长平路88号3栋502"
        )
        expect(bot_bubbles(page).filter(has_text=PHONE_QUESTION)).to_have_count(1)

        say(page, "13812345678")
        confirm = page.locator(".row.bot .chip:enabled", has_text="确认提交")
        expect(confirm).to_have_count(1)
        confirm.click()

        # the customer sees the button's title, Rasa got its payload
        expect(page.locator(".row.customer .bubble").last).to_have_text("确认提交")
        done = bot_bubbles(page).filter(has_text=TICKET_NO)
        expect(done).to_have_count(1)
        ticket_no = TICKET_NO.search(done.inner_text()).group(0)
        settled(page)
        expect(page.locator(".row.bot .chip:enabled", has_text="确认提交")).to_have_count(0)

    sender = page_sender(page, stack)
    assert re.fullmatch(r"web-[A-Za-z0-9_-]{16,64}", sender)
    tickets = api.tickets(sender)
    assert [t["ticket_no"] for t in tickets] == [ticket_no]
    ticket = tickets[0]
    assert ticket["category"] == "fault_repair"
    assert ticket["channel"] == "webchat"
    assert ticket["details"]["phone"] == "13812345678"
    assert ticket["details"]["address"] == "龙湖区长平路88号3栋502"

    # the conversation survives a reload: same sender, history from the tracker
    before = page.locator("#history .bubble").all_inner_texts()
    page.reload()
    page.wait_for_selector("html[data-ready]")
    assert page_sender(page, stack) == sender
    expect(bot_bubbles(page).filter(has_text=ticket_no)).to_have_count(1)
    expect(page.locator(".welcome")).to_have_count(0)
    expect(page.locator("#history .bubble")).to_have_count(len(before))
    assert page.locator("#history .bubble").all_inner_texts() == before
    customer_texts = page.locator(".row.customer .bubble").all_inner_texts()
    assert customer_texts == ["家里停电了，龙湖区长平路88号3栋502", "13812345678", "确认提交"]
    assert PHONE_QUESTION in "\n".join(bot_bubbles(page).all_inner_texts())

    # staff resolve the ticket: the open page shows the notice (it polls the transcript)
    api.patch_ticket(ticket_no, status="resolved")
    with showing_the_page(page):
        expect(bot_bubbles(page).filter(has_text=f"{ticket_no}已处理完毕")).to_have_count(1)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "webchat.png"))


def test_markup_from_the_customer_shows_as_text(stack: Stack, page) -> None:
    open_chat(page, stack)
    messages = ["<script>window.__x=1</script>", '<img src=x onerror="window.__x=2">']
    for text in messages:
        say(page, text)
        bubble = page.locator("#history .row.customer .bubble", has_text=text)
        expect(bubble).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
        expect(bubble).to_have_text(text)
        assert bubble.evaluate("node => node.childElementCount") == 0
    settled(page)
    assert page.evaluate("typeof window.__x") == "undefined"
    assert page.locator("#log script, #log img:not(.avatar)").count() == 0
    # and still text after a reload (from the tracker)
    page.reload()
    page.wait_for_selector("html[data-ready]")
    expect(page.locator(".row.customer .bubble")).to_have_text(messages)
    assert page.evaluate("typeof window.__x") == "undefined"


def test_multi_line_message_keeps_its_line_breaks(stack: Stack, page) -> None:
    open_chat(page, stack)
    page.locator("#input").fill("第一行")
    page.locator("#input").press("Shift+Enter")  # a new line, not a send
    page.locator("#input").press_sequentially("第二行")
    expect(page.locator("#input")).to_have_value("第一行\n第二行")
    page.locator("#send").click()
    bubble = page.locator("#history .row.customer .bubble").first
    expect(bubble).to_have_text("第一行\n第二行")
    assert bubble.evaluate("node => getComputedStyle(node).whiteSpace") == "pre-wrap"


def test_failed_send_is_retried_then_offered_again(stack: Stack, page) -> None:
    """The console answers 503 (Rasa busy): retries, then 「重发」, and nothing typed is lost."""
    open_chat(page, stack)
    failures = {"left": 2}

    def flaky(route) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            route.fulfill(
                status=503,
                content_type="application/json",
                body='{"error": "助手暂时忙不过来，请稍后再试，或拨打95598。"}',
            )
        else:
            route.continue_()

    with showing_the_page(page):
        # two failures, then it goes through on a retry
        page.route("**/chat/api/messages", flaky)
        say(page, "查电费")
        expect(page.get_by_text("网络不稳定，正在重试…")).to_be_visible()
        expect(page.locator("#history .row.customer .bubble")).to_have_text(["查电费"])
        settled(page)
        expect(page.get_by_text("网络不稳定，正在重试…")).to_have_count(0)
        assert failures["left"] == 0

        # every try fails: a polite system line, 「重发」, and the text back in the input
        failures["left"] = 100
        say(page, "0301234567890")
        expect(page.get_by_text("助手暂时忙不过来，请稍后再试，或拨打95598。")).to_be_visible(
            timeout=30_000
        )
        expect(page.locator("#input")).to_have_value("0301234567890")
        retry = page.locator(".row.customer .chip.retry", has_text="重发")
        expect(retry).to_have_count(1)

        page.unroute("**/chat/api/messages")
        retry.click()
        expect(page.locator("#input")).to_have_value("")
        expect(page.locator("#history .row.customer .bubble")).to_have_text(
            ["查电费", "0301234567890"]
        )
        settled(page)
        expect(page.get_by_text("助手暂时忙不过来")).to_have_count(0)


def test_messages_written_into_the_tracker_later_appear(stack: Stack, page) -> None:
    """A human agent's reply goes into the tracker; the open page picks it up by polling."""
    open_chat(page, stack)
    with showing_the_page(page):
        say(page, "你好")
        settled(page)
        sender = page_sender(page, stack)
        rasa = f"http://127.0.0.1:{stack.settings.rasa_port}"
        response = requests.post(
            f"{rasa}/conversations/{sender}/tracker/events",
            params={"token": stack.settings.rasa_token},
            json={
                "event": "bot",
                "text": "您好，我是人工客服小林，\n请问还有什么可以帮您？",
                "metadata": {"agent": "小林"},
            },
            timeout=30,
        )
        response.raise_for_status()
        reply = page.locator("#history .row.bot", has_text="我是人工客服小林")
        expect(reply).to_have_count(1, timeout=15_000)
        expect(reply.locator(".agent")).to_have_text("人工客服 · 小林")
        expect(reply.locator(".bubble")).to_have_text(
            "您好，我是人工客服小林，\n请问还有什么可以帮您？"
        )
        page.wait_for_timeout(3500)  # one more poll: appended once, not again
        expect(reply).to_have_count(1)
