"""Photos and locations from the customer web chat page, in a real browser, against the real
stack (Rasa, the action server, the console), as tests/e2e/test_webchat_browser.py.

The photo is a real JPEG with the phone's make and a GPS position in its EXIF, attached
through the page's file input; what the media store keeps must have neither. The position is
the browser's own (Playwright grants the permission and sets the coordinates), so the page
goes through navigator.geolocation exactly as on a customer's phone.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator, List

import pytest
from PIL import Image
from playwright import sync_api

from bot.core.catalog import load_catalog
from bot.tools.runner import Stack
from tests.e2e.stored_media import stored_photos
from tests.e2e.test_webchat_browser import (
    PHONE_QUESTION,
    REPLY_TIMEOUT_MS,
    bot_bubbles,
    chat_url,
    open_chat,
    page_sender,
    say,
    settled,
    showing_the_page,
)
from tests.fakes.photos import phone_photo
from tests.stack import open_page

expect = sync_api.expect

TEXTS = load_catalog().system_messages
SHANTOU = {"latitude": 23.253, "longitude": 116.499}  # 潮南区峡山街道
LOCATION_DENIED = "没有获得位置权限，您可以直接输入详细地址。"  # the page's own line
PHOTO_TOO_LARGE = TEXTS["photo_too_large"].format(max_mb=10)
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


@pytest.fixture
def page(browser: "sync_api.Browser") -> Iterator["sync_api.Page"]:
    """A phone-sized page with its own storage (a new customer); no permissions granted."""
    expect.set_options(timeout=REPLY_TIMEOUT_MS)
    with open_page(browser, REPLY_TIMEOUT_MS, **PHONE) as opened:
        yield opened


def photo_with_gps(folder: Path) -> Path:
    """A phone photo with EXIF (make, model, GPS) as a file to attach."""
    path = folder / "meter.jpg"
    path.write_bytes(phone_photo())
    return path


def record_disabled(page: "sync_api.Page", selector: str) -> None:
    """Remember every disabled state the element goes through (window.__states)."""
    page.evaluate(
        """selector => {
            const node = document.querySelector(selector);
            window.__states = [node.disabled];
            new MutationObserver(() => window.__states.push(node.disabled))
                .observe(node, { attributes: true, attributeFilter: ["disabled"] });
        }""",
        selector,
    )


def customer_bubbles(page: "sync_api.Page"):
    return page.locator(".row.customer .bubble")


# ---------------------------------------------------------------- photos


def test_customer_sends_a_photo_and_no_exif_is_kept(
    stack: Stack, page: "sync_api.Page", tmp_path: Path
) -> None:
    photo = photo_with_gps(tmp_path)
    open_chat(page, stack)
    record_disabled(page, "#photo-button")
    with showing_the_page(page):
        page.locator("#photo-file").set_input_files(str(photo))
        expect(customer_bubbles(page)).to_have_text(["[照片]"])
        expect(bot_bubbles(page).filter(has_text="照片已收到")).to_have_count(1)
        settled(page)
        # the tracker's copy replaced the page's: shown once, also after another poll
        expect(page.locator("#history .row.customer .bubble")).to_have_text(["[照片]"])
        page.wait_for_timeout(3500)
        expect(customer_bubbles(page)).to_have_count(1)
        expect(page.locator("#photo-button")).to_be_enabled()
        expect(page.locator("#location-button")).to_be_enabled()
    states = page.evaluate("window.__states")
    assert states[0] is False and True in states and states[-1] is False, states

    sender = page_sender(page, stack)
    [stored] = stored_photos(stack, sender)
    assert stored["channel"] == "webchat" and stored["content_type"] == "image/jpeg"
    for data in (stored["data"], stored["thumbnail"]):
        kept = Image.open(io.BytesIO(data))
        assert len(kept.getexif()) == 0 and "exif" not in kept.info
        assert b"TestPhone" not in data and b"TP-2026" not in data
    assert Image.open(io.BytesIO(stored["data"])).size == (800, 600)

    # after a reload the history still shows the photo once, as the page did
    page.reload()
    page.wait_for_selector("html[data-ready]")
    expect(customer_bubbles(page)).to_have_text(["[照片]"])
    assert "照片已收到" in "\n".join(bot_bubbles(page).all_inner_texts())


def test_a_file_that_is_no_photo_is_refused_politely(
    stack: Stack, page: "sync_api.Page", tmp_path: Path
) -> None:
    pdf = tmp_path / "bill.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    open_chat(page, stack)
    with showing_the_page(page):
        page.locator("#photo-file").set_input_files(str(pdf))
        expect(page.get_by_text(TEXTS["photo_not_image"])).to_be_visible()
        failed = page.locator("#local .row.customer", has_text="[照片]")
        expect(failed.locator(".meta")).to_contain_text("未发送")
        expect(page.locator("#photo-button")).to_be_enabled()
    assert stored_photos(stack, page_sender(page, stack)) == []


def test_a_photo_over_10_mb_is_refused_before_uploading(
    stack: Stack, page: "sync_api.Page", tmp_path: Path
) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * (10 * 1024 * 1024))
    uploads: List[str] = []
    page.on("request", lambda r: uploads.append(r.url) if "/chat/api/photos" in r.url else None)
    open_chat(page, stack)
    with showing_the_page(page):
        page.locator("#photo-file").set_input_files(str(big))
        expect(page.get_by_text(PHOTO_TOO_LARGE)).to_be_visible()
        expect(customer_bubbles(page)).to_have_count(0)
        expect(page.locator("#photo-button")).to_be_enabled()
    assert uploads == []


# ---------------------------------------------------------------- locations


def test_customer_shares_the_location_and_confirms_it(stack: Stack, page: "sync_api.Page") -> None:
    """A fault report asks for the address; the customer shares the phone's position instead,
    is asked 「是这个位置吗：潮南区…？」 and says yes: the place is the address's start, and
    once the road is told the form goes on to the phone number."""
    context = page.context
    context.grant_permissions(["geolocation"], origin=chat_url(stack).rsplit("/chat", 1)[0])
    context.set_geolocation(SHANTOU)
    open_chat(page, stack)
    with showing_the_page(page):
        say(page, "家里停电了")
        expect(page.locator("#history .row.customer .bubble")).to_have_text(["家里停电了"])
        settled(page)
        page.get_by_role("button", name="发送位置").click()
        expect(customer_bubbles(page)).to_have_text(["家里停电了", "[位置]"])
        question = bot_bubbles(page).filter(has_text="是这个位置吗")
        expect(question).to_have_count(1)
        expect(question).to_contain_text("潮南区")
        yes = page.locator(".row.bot .chip:enabled", has_text="是，就是这里")
        expect(yes).to_have_count(1)
        expect(page.locator(".row.bot .chip:enabled", has_text="不是")).to_have_count(1)
        yes.click()
        expect(customer_bubbles(page)).to_have_text(["家里停电了", "[位置]", "是，就是这里"])
        settled(page)
        # the place is taken as the address: a repair visit needs only the road and number now
        last_reply = page.locator("#history .row.bot").last.locator(".bubble")
        expect(last_reply).to_contain_text("潮南区峡山街道")
        expect(last_reply).not_to_contain_text("是这个位置吗")
        say(page, "东山路12号")
        expect(bot_bubbles(page).filter(has_text=PHONE_QUESTION)).to_have_count(1)
        settled(page)
        expect(question).to_have_count(1)  # never asked again
        expect(page.locator(".row.bot .chip:enabled", has_text="是，就是这里")).to_have_count(0)
        expect(page.locator("#location-button")).to_be_enabled()
    # the history shows the location as the page did, once
    page.reload()
    page.wait_for_selector("html[data-ready]")
    expect(customer_bubbles(page)).to_have_text(
        ["家里停电了", "[位置]", "是，就是这里", "东山路12号"]
    )


def test_denied_location_shows_a_polite_line_and_the_chat_goes_on(
    stack: Stack, page: "sync_api.Page"
) -> None:
    sent: List[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/chat/api/location" in r.url else None)
    page.context.clear_permissions()  # the customer says no (headless: nobody to ask)
    open_chat(page, stack)
    with showing_the_page(page):
        page.get_by_role("button", name="发送位置").click()
        expect(page.get_by_text(LOCATION_DENIED)).to_be_visible()
        expect(page.locator("#location-button")).to_be_enabled()
        expect(customer_bubbles(page)).to_have_count(0)
        say(page, "查电费")
        expect(page.locator("#history .row.customer .bubble")).to_have_text(["查电费"])
        settled(page)
        expect(page.locator("#history .row.bot .bubble")).not_to_have_count(0)
    assert sent == []
