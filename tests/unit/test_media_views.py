"""Customers' photos for staff: the signed photo route (/console/media/{token}), the ticket
page's 「现场照片」 and location, the hand-over view's photos, and the JSON API's
`attachments` / `location` — on a test database with real photos in a scratch media store."""

from __future__ import annotations

import io
import re
import time
from typing import Dict, Iterator, List, Tuple

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from PIL import Image
from sqlalchemy import event

from bot.core.db import get_engine, session_scope
from bot.core.handoff.repository import HandoffRepository
from bot.core.media import service as media
from bot.core.media.models import Attachment
from bot.core.media.storage import media_store
from bot.core.settings import get_settings
from bot.core.tickets.models import Ticket
from bot.core.tickets.repository import TicketRepository
from tests.unit.console_helpers import make_client, sign_in

AUTH = {"Authorization": "Bearer test-token"}  # INTAKE_API_TOKEN of isolated_environment
FAULT = {"address": "潮南区峡山街道广兴路12号", "phone": "13812345678", "description": "电线杆倾斜"}
IMG_RE = re.compile(
    r'<a href="(/console/media/[^"]+)" target="_blank" rel="noopener"[^>]*>'
    r'<img src="(/console/media/[^"]+)"'
)


def photo_bytes(color: Tuple[int, int, int], size: Tuple[int, int], fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


@pytest.fixture
def client(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[TestClient]:
    monkeypatch.setenv("INTAKE_MEDIA_DIR", str(tmp_path / "media"))
    media_store.cache_clear()  # the store is built once per process from the settings
    yield from make_client(db_url, monkeypatch)
    media_store.cache_clear()


def file_ticket(url: str, conversation: str, located: bool = False) -> Tuple[int, str]:
    with session_scope(url) as session:
        ticket, _ = TicketRepository(session).create("fault_repair", FAULT, conversation, "rest")
        if located:
            ticket.latitude, ticket.longitude = 23.3051, 116.4203
            ticket.location_text = "潮南区峡山街道广兴路"
        return ticket.id, ticket.ticket_no


def send_photo(url: str, conversation: str, raw: bytes, ticket_id: int | None = None) -> int:
    """A photo received on the channel, attached to `ticket_id` (or held) — as the channels do."""
    attachment_id = media.receive_photo(conversation, "rest", raw)
    if ticket_id is not None:
        with session_scope(url) as session:
            media.attach_held(session, conversation, session.get(Ticket, ticket_id))
    return attachment_id


def stored(attachment_id: int, variant: str) -> bytes:
    with session_scope() as session:
        attachment = session.get(Attachment, attachment_id)
    key = attachment.thumbnail_key if variant == "thumb" else attachment.file_key
    return media_store().get(key)


def page_links(html: str) -> List[Tuple[str, str]]:
    """(full-size link, thumbnail src) of every photo on a page."""
    return IMG_RE.findall(html)


@pytest.fixture
def ticket_with_photos(client: TestClient, db_url: str) -> Dict[str, object]:
    ticket_id, number = file_ticket(db_url, "conv-photos", located=True)
    png = send_photo(db_url, "conv-photos", photo_bytes((200, 30, 30), (800, 600), "PNG"))
    jpeg = send_photo(
        db_url, "conv-photos", photo_bytes((30, 30, 200), (480, 640), "JPEG"), ticket_id
    )
    return {"id": ticket_id, "number": number, "photos": [png, jpeg]}


# ---------------------------------------------------------------- the photo route


def test_signed_in_staff_get_both_variants_with_safe_headers(
    client: TestClient, ticket_with_photos: dict
) -> None:
    png, jpeg = ticket_with_photos["photos"]
    for username in ("agent1", "trainer1"):
        sign_in(client, username)
        full = client.get(f"/console/media/{media.link_token(png, 'full')}")
        assert full.status_code == 200
        assert full.headers["content-type"] == "image/png"
        assert full.content == stored(png, "full")
        assert Image.open(io.BytesIO(full.content)).size == (800, 600)
        assert full.headers["cache-control"] == "private, no-store"
        assert full.headers["x-content-type-options"] == "nosniff"
        assert full.headers["content-disposition"].startswith("inline")
        csp = full.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp

        thumb = client.get(f"/console/media/{media.link_token(jpeg, 'thumb')}")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert thumb.content == stored(jpeg, "thumb") != stored(jpeg, "full")
        assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320
        assert thumb.headers["cache-control"] == "private, no-store"
        client.cookies.clear()


def test_signed_out_staff_are_refused_like_on_every_console_page(
    client: TestClient, ticket_with_photos: dict
) -> None:
    png = ticket_with_photos["photos"][0]
    path = f"/console/media/{media.link_token(png, 'full')}"
    as_image = client.get(path, headers={"Accept": "image/avif,image/webp,*/*"})
    assert as_image.status_code == 401 and not as_image.headers["content-type"].startswith("image/")
    in_a_tab = client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
    assert in_a_tab.status_code == 303
    assert in_a_tab.headers["location"] == f"/login?next={path}"

    token = sign_in(client, "agent1")
    assert client.get(path).status_code == 200
    client.post("/logout", data={"csrf_token": token})
    assert client.get(path).status_code == 401


def test_signing_in_from_a_photo_link_leads_back_to_the_photo(
    client: TestClient, ticket_with_photos: dict
) -> None:
    from tests.unit.console_helpers import PASSWORD, csrf_of

    png = ticket_with_photos["photos"][0]
    path = f"/console/media/{media.link_token(png, 'full')}"
    answer = client.post(
        "/login",
        data={
            "username": "agent2",
            "password": PASSWORD,
            "next": path,
            "csrf_token": csrf_of(client),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == path
    assert client.get(path).content == stored(png, "full")


def _expired_token(attachment_id: int, minutes_ago: float, monkeypatch: pytest.MonkeyPatch) -> str:
    then = int(time.time() - minutes_ago * 60)
    with monkeypatch.context() as patched:
        patched.setattr(TimestampSigner, "get_timestamp", lambda self: then)
        return media.link_token(attachment_id, "full")


def test_bad_tampered_and_expired_links_are_a_bare_404(
    client: TestClient, ticket_with_photos: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = ticket_with_photos["photos"][0]
    sign_in(client, "agent1")
    good = media.link_token(png, "full")
    minutes = get_settings().service.media.link_minutes
    assert (
        client.get(f"/console/media/{_expired_token(png, minutes - 1, monkeypatch)}").status_code
        == 200
    )

    key = get_settings().console_session_key()
    tampered = good[:-2] + ("AA" if good[-2:] != "AA" else "BB")
    bad = {
        "tampered signature": tampered,
        "another photo's id": good.replace(
            good.split(".")[0], media.link_token(png + 1, "full").split(".")[0]
        ),
        "expired": _expired_token(png, minutes + 1, monkeypatch),
        "other key": URLSafeTimedSerializer("not-the-key", salt="intake-media").dumps(
            [png, "full"]
        ),
        "unknown variant": URLSafeTimedSerializer(key, salt="intake-media").dumps([png, "exif"]),
        "text id": URLSafeTimedSerializer(key, salt="intake-media").dumps(["1", "full"]),
        "no such photo": media.link_token(99999, "full"),
        "garbage": "not-a-token",
        "overlong": good + "x" * 600,
    }
    bodies = set()
    for name, token in bad.items():
        response = client.get(f"/console/media/{token}")
        assert response.status_code == 404, name
        assert not response.headers["content-type"].startswith("image/"), name
        assert response.headers["cache-control"] == "private, no-store", name
        bodies.add(response.content)
    assert len(bodies) == 1  # the same answer whatever was wrong
    assert b"expired" not in bodies.pop().lower()


def test_a_photo_whose_file_is_gone_is_a_404(client: TestClient, ticket_with_photos: dict) -> None:
    png, jpeg = ticket_with_photos["photos"]
    with session_scope() as session:
        media_store().delete(session.get(Attachment, png).file_key)
    sign_in(client, "agent1")
    assert client.get(f"/console/media/{media.link_token(png, 'full')}").status_code == 404
    assert client.get(f"/console/media/{media.link_token(png, 'thumb')}").status_code == 200
    assert client.get(f"/console/media/{media.link_token(jpeg, 'full')}").status_code == 200


# ---------------------------------------------------------------- the ticket page


def test_ticket_page_shows_thumbnails_linking_to_the_full_photos(
    client: TestClient, ticket_with_photos: dict
) -> None:
    sign_in(client, "agent1")
    response = client.get(f"/console/tickets/{ticket_with_photos['number']}")
    html = response.text
    assert "现场照片" in html and "暂无照片" not in html
    links = page_links(html)
    assert len(links) == 2
    assert "img-src 'self'" in response.headers["content-security-policy"]  # same-origin links
    for photo_id, (full, thumb) in zip(ticket_with_photos["photos"], links):
        assert client.get(thumb).content == stored(photo_id, "thumb")
        assert client.get(full).content == stored(photo_id, "full")
    # the customer's location: words, coordinates and the configured map link
    assert "客户位置" in html and "潮南区峡山街道广兴路" in html and "23.3051, 116.4203" in html
    assert (
        'href="https://www.openstreetmap.org/?mlat=23.3051&amp;mlon=116.4203#map=17/23.3051/116.4203"'
        in html
    )
    assert "在地图上查看" in html


def test_ticket_without_photos_or_location(client: TestClient, db_url: str) -> None:
    _, number = file_ticket(db_url, "conv-plain")
    send_photo(db_url, "conv-other", photo_bytes((0, 120, 0), (300, 300), "JPEG"))  # held elsewhere
    sign_in(client, "boss")
    html = client.get(f"/console/tickets/{number}").text
    assert "现场照片" in html and "暂无照片" in html
    assert page_links(html) == [] and "/console/media/" not in html
    assert "客户位置" not in html and "在地图上查看" not in html


def test_no_map_link_when_none_is_configured(
    client: TestClient, ticket_with_photos: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    areas = client.app.state.settings.areas.copy(update={"map_link": ""})
    monkeypatch.setattr(
        client.app.state, "settings", client.app.state.settings.copy(update={"areas": areas})
    )
    sign_in(client, "agent1")
    html = client.get(f"/console/tickets/{ticket_with_photos['number']}").text
    assert "23.3051, 116.4203" in html and "在地图上查看" not in html
    api = client.get(f"/api/v1/tickets/{ticket_with_photos['number']}", headers=AUTH).json()
    assert api["location"]["map_link"] is None and api["location"]["lat"] == 23.3051


# ---------------------------------------------------------------- the hand-over view


def test_conversation_view_shows_the_conversations_photos(
    client: TestClient, db_url: str, ticket_with_photos: dict
) -> None:
    held = send_photo(db_url, "conv-photos", photo_bytes((250, 200, 0), (400, 400), "JPEG"))
    send_photo(db_url, "conv-stranger", photo_bytes((9, 9, 9), (400, 400), "JPEG"))
    with session_scope(db_url) as session:
        handoff = HandoffRepository(session).open(
            "conv-photos", "rest", "request_human", "normal", {}
        )
        handoff_id = handoff.id
        stranger = HandoffRepository(session).open(
            "conv-quiet", "rest", "request_human", "normal", {}
        )
        quiet_id = stranger.id
    sign_in(client, "agent1")
    html = client.get(f"/console/handoffs/{handoff_id}").text
    assert "客户发送的照片" in html
    links = page_links(html)
    expected = [*ticket_with_photos["photos"], held]
    assert len(links) == 3
    for photo_id, (full, thumb) in zip(expected, links):
        assert client.get(thumb).content == stored(photo_id, "thumb")
        assert client.get(full).content == stored(photo_id, "full")
    assert html.count(ticket_with_photos["number"]) >= 2 and "待随工单提交" in html

    quiet = client.get(f"/console/handoffs/{quiet_id}").text
    assert page_links(quiet) == [] and "暂无照片" in quiet


# ---------------------------------------------------------------- the JSON API


def test_api_lists_attachments_with_working_links_and_the_location(
    client: TestClient, db_url: str, ticket_with_photos: dict
) -> None:
    _, plain = file_ticket(db_url, "conv-plain")
    listed = {t["ticket_no"]: t for t in client.get("/api/v1/tickets", headers=AUTH).json()}
    photos = listed[ticket_with_photos["number"]]["attachments"]
    assert [p["id"] for p in photos] == ticket_with_photos["photos"]
    assert set(photos[0]) == {
        "id",
        "content_type",
        "width",
        "height",
        "size_bytes",
        "created_at",
        "url",
        "thumbnail_url",
    }
    assert [(p["content_type"], p["width"], p["height"]) for p in photos] == [
        ("image/png", 800, 600),
        ("image/jpeg", 480, 640),
    ]
    assert photos[0]["size_bytes"] == len(stored(photos[0]["id"], "full"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", photos[0]["created_at"])
    assert listed[ticket_with_photos["number"]]["location"] == {
        "lat": 23.3051,
        "lon": 116.4203,
        "text": "潮南区峡山街道广兴路",
        "map_link": "https://www.openstreetmap.org/?mlat=23.3051&mlon=116.4203#map=17/23.3051/116.4203",
    }
    assert listed[plain]["attachments"] == [] and listed[plain]["location"] is None

    one = client.get(f"/api/v1/tickets/{ticket_with_photos['number']}", headers=AUTH).json()
    assert [p["id"] for p in one["attachments"]] == ticket_with_photos["photos"]
    assert one["location"]["text"] == "潮南区峡山街道广兴路" and one["history"]
    patched = client.patch(
        f"/api/v1/tickets/{plain}", headers=AUTH, json={"note": "已派抢修"}
    ).json()
    assert patched["attachments"] == [] and patched["location"] is None

    # absolute links, to the staff route: they work in a signed-in session, never without
    for photo in photos:
        assert photo["url"].startswith("http://testserver/console/media/")
        assert photo["thumbnail_url"].startswith("http://testserver/console/media/")
        assert client.get(photo["url"]).status_code == 401
    sign_in(client, "agent1")
    for photo in photos:
        assert client.get(photo["url"]).content == stored(photo["id"], "full")
        assert client.get(photo["thumbnail_url"]).content == stored(photo["id"], "thumb")


def test_api_reads_the_photos_of_a_ticket_list_in_one_query(
    client: TestClient, db_url: str
) -> None:
    for n in range(4):
        ticket_id, _ = file_ticket(db_url, f"conv-many-{n}")
        send_photo(
            db_url, f"conv-many-{n}", photo_bytes((n * 50, 0, 0), (200, 200), "JPEG"), ticket_id
        )
    statements: List[str] = []
    engine = get_engine(db_url)

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        listed = client.get("/api/v1/tickets", headers=AUTH).json()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(listed) == 4 and all(len(t["attachments"]) == 1 for t in listed)
    assert len([s for s in statements if "FROM attachments" in s]) == 1


def test_the_api_description_still_builds_and_holds_no_photo_route(client: TestClient) -> None:
    schema = client.get("/api/v1/openapi.json", headers=AUTH).json()
    assert schema["openapi"].startswith("3.") and "/api/v1/tickets/{ticket_no}" in schema["paths"]
    assert not [path for path in schema["paths"] if "media" in path]  # staff-only, undescribed


def test_the_transcript_shows_a_photo_and_a_location_as_labels() -> None:
    from bot.console.agent import transcript_from_events

    events = [
        {"event": "user", "text": "/send_photo", "metadata": {"attachment_id": 7}},
        {
            "event": "user",
            "text": "/share_location",
            "metadata": {"location": {"lat": 23.253, "lon": 116.499}},
        },
        {"event": "user", "text": "家里停电了"},
    ]
    assert [row["text"] for row in transcript_from_events(events)] == [
        "[照片]",
        "[位置] 23.253, 116.499",
        "家里停电了",
    ]
