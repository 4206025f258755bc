"""Customers' photos as staff see them, in a real headless Chromium: a fault ticket with two
photos and the customer's location, opened by a signed-in agent — the thumbnails load under
the console's Content-Security-Policy, a click opens the full photo in a new tab, and a
browser that is not signed in gets no photo. The hand-over view shows the same photos.

The console runs in this process on a free port (no Rasa needed), with its own database and
media store (INTAKE_MEDIA_DIR); the photos go through the real intake path
(bot.core.media.service.receive_photo, then attached when the ticket is filed). Screenshots
are saved under reports/screenshots/."""

from __future__ import annotations

import io
import re
from typing import Iterator

import pytest
from PIL import Image, ImageDraw
from playwright import sync_api

from bot.core.db import session_scope, upgrade_database
from bot.core.handoff.repository import HandoffRepository
from bot.core.media import service as media
from bot.core.settings import load_settings, reset_settings
from bot.core.staff import add_user
from bot.core.tickets.repository import TicketRepository
from tests.e2e.console_thread import console_in_thread, environment
from tests.stack import SCREENSHOTS, open_page

expect = sync_api.expect
PASSWORD = "media-browser-pass"
TIMEOUT_MS = 20_000
CONVERSATION = "web-media-browser"
PHOTOS = [((1024, 768), (178, 34, 34), "JPEG"), ((600, 800), (30, 90, 160), "PNG")]


def a_photo(size: tuple, color: tuple, fmt: str) -> bytes:
    """A picture with something in it (a pole and a sagging line), as a phone would send."""
    image = Image.new("RGB", size, (225, 232, 240))
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.rectangle([width * 0.45, height * 0.15, width * 0.52, height * 0.95], fill=color)
    draw.line(
        [(0, height * 0.2), (width * 0.48, height * 0.25), (width, height * 0.6)],
        fill=color,
        width=8,
    )
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("media-console")
    env = {
        "INTAKE_VAR_DIR": str(root / "var"),
        "DATABASE_URL": f"sqlite:///{root / 'console.db'}",
        "INTAKE_MEDIA_DIR": str(root / "media"),
        "INTAKE_MEDIA_BACKEND": "local",
        "CONSOLE_SWEEP_SECONDS": "0",
        "CONSOLE_HTTPS_ONLY": "0",
        "RASA_URL": "http://127.0.0.1:9",  # no Rasa: the transcript says so, photos still show
    }
    with environment(env):
        reset_settings()  # receive_photo below reads this console's settings (INTAKE_MEDIA_DIR)
        settings = load_settings()
        upgrade_database(settings.database_url)
        with session_scope(settings.database_url) as session:
            add_user(session, "wangfang", PASSWORD, "agent", "王芳")
        photo_ids = [media.receive_photo(CONVERSATION, "webchat", a_photo(*p)) for p in PHOTOS]
        with session_scope(settings.database_url) as session:
            ticket, _ = TicketRepository(session).create(
                "fault_repair",
                {
                    "address": "潮南区峡山街道广兴路12号",
                    "phone": "13812345678",
                    "description": "电线杆倾斜",
                },
                CONVERSATION,
                "webchat",
            )
            ticket.latitude, ticket.longitude = 23.3051, 116.4203
            ticket.location_text = "潮南区峡山街道广兴路"
            assert media.attach_held(session, CONVERSATION, ticket) == 2
            number = ticket.ticket_no
            handoff_id = (
                HandoffRepository(session)
                .open(CONVERSATION, "webchat", "request_human", "high", {})
                .id
            )
        with console_in_thread(settings) as url:
            yield {
                "url": url,
                "ticket_no": number,
                "handoff_id": handoff_id,
                "photos": photo_ids,
            }
    reset_settings()


@pytest.fixture
def page(browser: "sync_api.Browser", console: dict) -> Iterator["sync_api.Page"]:
    expect.set_options(timeout=TIMEOUT_MS)
    with open_page(browser, TIMEOUT_MS, viewport={"width": 1366, "height": 900}) as opened:
        yield opened


def sign_in_at(page: "sync_api.Page", url: str) -> None:
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=username]", "wangfang")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text("王芳")


def assert_thumbnails_loaded(page: "sync_api.Page", count: int) -> None:
    images = page.locator("#photos img")
    expect(images).to_have_count(count)
    for image in images.all():
        expect(image).to_have_js_property("complete", True)
        assert image.evaluate("img => img.naturalWidth") > 0, image.get_attribute("src")
        assert image.evaluate("img => img.naturalWidth <= 320 && img.naturalHeight <= 320")


def test_agent_sees_the_photos_and_location_on_the_ticket_page(
    page: "sync_api.Page", console: dict, browser: "sync_api.Browser"
) -> None:
    blocked: list = []
    page.on(
        "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
    )
    sign_in_at(page, f"{console['url']}/console/tickets/{console['ticket_no']}")
    expect(page.locator("h1")).to_contain_text(console["ticket_no"])
    expect(page.locator("main")).to_contain_text("现场照片")
    assert_thumbnails_loaded(page, 2)
    location = page.locator("#ticket-location")
    expect(location).to_contain_text("潮南区峡山街道广兴路")
    expect(location).to_contain_text("23.3051, 116.4203")
    expect(page.locator("#map-link")).to_have_attribute(
        "href", "https://www.openstreetmap.org/?mlat=23.3051&mlon=116.4203#map=17/23.3051/116.4203"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-ticket-photos.png"), full_page=True)

    link = page.locator("#photos a").nth(1)
    assert link.get_attribute("target") == "_blank" and link.get_attribute("rel") == "noopener"
    with page.context.expect_page() as opened:
        link.click()
    full = opened.value
    full.wait_for_load_state()
    assert "/console/media/" in full.url
    shown = full.evaluate(
        "() => [document.contentType, document.images[0].naturalWidth, document.images[0].naturalHeight]"
    )
    assert shown == ["image/png", 600, 800]  # the full photo, not the thumbnail
    full.screenshot(path=str(SCREENSHOTS / "console-photo-full.png"))
    photo_url = full.url
    full.close()
    assert not blocked, blocked

    # the same link in a browser that is not signed in: the sign-in form, no photo
    with open_page(browser, TIMEOUT_MS) as stranger:
        answer = stranger.goto(photo_url)
        assert answer is not None and not answer.headers.get("content-type", "").startswith(
            "image/"
        )
        expect(stranger).to_have_url(re.compile(r"/login\?next=/console/media/"))


def test_agent_sees_the_customers_photos_in_the_handover_view(
    page: "sync_api.Page", console: dict
) -> None:
    sign_in_at(page, f"{console['url']}/console/handoffs/{console['handoff_id']}")
    expect(page.locator("main")).to_contain_text("客户发送的照片")
    assert_thumbnails_loaded(page, 2)
    expect(page.locator("#photos")).to_contain_text(console["ticket_no"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-handover-photos.png"), full_page=True)
    with page.context.expect_page() as opened:
        page.locator("#photos a:has(img)").first.click()
    full = opened.value
    full.wait_for_load_state()
    assert full.evaluate("() => document.images[0].naturalWidth") == 1024
    full.close()
