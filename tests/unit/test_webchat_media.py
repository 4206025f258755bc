"""Photos and locations from the web chat page (bot/console/webchat.py): POST /chat/api/photos
and /chat/api/location, against a tiny fake Rasa that records what it was sent.

The photos go through the real checks and the real media store (files in a temporary
INTAKE_MEDIA_DIR, rows in the test's SQLite database): what is refused leaves nothing behind.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import yaml
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from sqlalchemy import select

from bot.console.app import create_app
from bot.core.catalog import load_catalog
from bot.core.db import session_scope, upgrade_database
from bot.core.media.models import Attachment
from bot.core.media.storage import media_store
from bot.core.settings import PROJECT_ROOT, load_settings
from tests.fakes.json_server import Request, json_server

TEXTS = load_catalog().system_messages
SENDER = "web-0123456789abcdef0123456789abcdef"
MAX_BYTES = 10 * 1024 * 1024
SHANTOU = {"lat": 23.253, "lon": 116.499}  # 潮南区峡山街道
BEIJING = {"lat": 39.9042, "lon": 116.4074}
CONFIRM = [{"title": "是，就是这里", "payload": "/affirm"}, {"title": "不是", "payload": "/deny"}]


class FakeRasa:
    """The REST channel webhook and the tracker, faked: what it answers and what it received."""

    def __init__(self) -> None:
        self.received: List[Dict[str, Any]] = []
        self.replies: Any = [{"recipient_id": SENDER, "text": "照片已收到。"}]
        self.events: List[Dict[str, Any]] = []
        self.status = 200

    def handle(self, request: Request) -> Tuple[int, Any]:
        if request.method == "POST" and request.path == "/webhooks/rest/webhook":
            self.received.append(json.loads(request.body or b"{}"))
            return (200, self.replies) if self.status == 200 else (self.status, {"error": "boom"})
        if request.method == "GET" and request.path == f"/conversations/{SENDER}/tracker":
            return 200, {"sender_id": SENDER, "events": self.events}
        return 404, {"error": "not found"}


@pytest.fixture
def fake_rasa(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRasa]:
    fake = FakeRasa()
    with json_server(fake.handle) as url:
        monkeypatch.setenv("RASA_URL", url)
        yield fake


@pytest.fixture
def media_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Photos go to a folder of this test (the store is built once per process: rebuilt)."""
    folder = tmp_path / "media"
    monkeypatch.setenv("INTAKE_MEDIA_DIR", str(folder))
    media_store.cache_clear()
    yield folder
    media_store.cache_clear()


def chat_cookie(sender: str = SENDER) -> str:
    from bot.console.webchat import sign_chat_sender

    return sign_chat_sender(load_settings(), sender)


@pytest.fixture
def client(fake_rasa: FakeRasa, media_dir: Path) -> Iterator[TestClient]:
    settings = load_settings()
    upgrade_database(settings.database_url)
    with TestClient(create_app(settings)) as test_client:
        test_client.cookies.set("intake_chat", chat_cookie(), path="/chat")
        yield test_client


# ---------------------------------------------------------------- photos to send


def jpeg(size: Tuple[int, int] = (320, 240), gps: bool = True) -> bytes:
    """A real JPEG, with the phone's make and a GPS position in its EXIF."""
    image = Image.new("RGB", size, (30, 120, 200))
    for x in range(0, size[0], 16):  # some content, so it is a photo of something
        image.paste((240, 200, 20), (x, 0, x + 8, size[1]))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestPhone"
    if gps:
        position = exif.get_ifd(ExifTags.IFD.GPSInfo)
        position[ExifTags.GPS.GPSLatitudeRef] = "N"
        position[ExifTags.GPS.GPSLatitude] = (23.0, 15.0, 10.8)
        position[ExifTags.GPS.GPSLongitudeRef] = "E"
        position[ExifTags.GPS.GPSLongitude] = (116.0, 29.0, 56.4)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (64, 64), colour) for colour in ("red", "blue", "green")]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def upload(
    client: TestClient,
    body: bytes,
    content_type: Optional[str] = "image/jpeg",
    message_id: Optional[str] = "m1",
):
    headers = {"Content-Type": content_type} if content_type else {}
    params = {"id": message_id} if message_id else {}
    return client.post("/chat/api/photos", content=body, headers=headers, params=params)


def rows() -> List[Attachment]:
    with session_scope(load_settings().database_url) as session:
        found = list(session.scalars(select(Attachment).order_by(Attachment.id)))
        session.expunge_all()
        return found


def stored_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---------------------------------------------------------------- photos


def test_a_photo_is_stored_without_exif_and_forwarded(
    client: TestClient, fake_rasa: FakeRasa, media_dir: Path
) -> None:
    original = jpeg()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    fake_rasa.replies = [{"recipient_id": SENDER, "text": "照片已收到，会随工单一起提交。"}]

    response = upload(client, original, message_id="m0123abcd")

    assert response.status_code == 200, response.text
    assert response.json() == [{"text": "照片已收到，会随工单一起提交。", "buttons": []}]
    assert response.headers["cache-control"] == "no-store"
    [row] = rows()
    assert row.conversation_id == SENDER and row.channel == "webchat"
    assert row.ticket_id is None  # held for the conversation until a ticket is filed
    assert row.content_type == "image/jpeg" and (row.width, row.height) == (320, 240)
    assert fake_rasa.received == [
        {
            "sender": SENDER,
            "message": "/send_photo",
            "metadata": {"attachment_id": row.id, "webchat_id": "m0123abcd"},
        }
    ]
    # both files are in the media store; the photo kept has no EXIF (no GPS, no phone model)
    assert stored_files(media_dir) == sorted(
        [media_dir / row.file_key, media_dir / row.thumbnail_key]
    )
    kept = Image.open(media_dir / row.file_key)
    assert kept.format == "JPEG"
    assert len(kept.getexif()) == 0 and "exif" not in kept.info
    assert b"TestPhone" not in (media_dir / row.file_key).read_bytes()


def test_a_photo_without_a_page_id_is_forwarded_with_its_attachment_only(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    response = upload(client, jpeg(), content_type="application/octet-stream", message_id=None)
    assert response.status_code == 200
    [row] = rows()
    assert fake_rasa.received[0]["metadata"] == {"attachment_id": row.id}


def test_the_bots_buttons_come_back_as_for_a_message(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    fake_rasa.replies = [
        {"recipient_id": SENDER, "text": "照片已收到。请问遇到了什么问题？", "buttons": CONFIRM}
    ]
    response = upload(client, jpeg(gps=False), content_type="image/png")  # the content decides
    assert response.status_code == 200
    assert response.json() == [{"text": "照片已收到。请问遇到了什么问题？", "buttons": CONFIRM}]


@pytest.mark.parametrize(
    "name, body, status, key",
    [
        ("pdf", PDF, 422, "photo_not_image"),
        ("empty", b"", 422, "photo_not_image"),
        ("truncated", jpeg((640, 480))[:1500], 422, "photo_broken"),
        ("animated", animated_webp(), 422, "photo_animated"),
        ("tiny", jpeg((8, 8), gps=False), 422, "photo_too_small"),
        ("just over", jpeg()[:2] + b"\0" * (MAX_BYTES - 1), 413, "photo_too_large"),
        ("far over", b"\xff\xd8" + b"\0" * (MAX_BYTES + 200_000), 413, "photo_too_large"),
    ],
)
def test_what_is_not_a_photo_we_keep_is_refused_politely_and_nothing_is_stored(
    client: TestClient,
    fake_rasa: FakeRasa,
    media_dir: Path,
    name: str,
    body: bytes,
    status: int,
    key: str,
) -> None:
    response = upload(client, body)
    assert response.status_code == status, response.text
    expected = TEXTS[key].format(max_mb=10)
    assert response.json() == {"error": expected}
    assert "{" not in expected
    assert rows() == []
    assert stored_files(media_dir) == []
    assert fake_rasa.received == []


def test_the_size_refusal_names_the_limit(client: TestClient) -> None:
    error = upload(client, b"\0" * (MAX_BYTES + 1)).json()["error"]
    assert "10MB" in error


@pytest.mark.parametrize("content_type", [None, "text/plain", "multipart/form-data; boundary=x"])
def test_a_body_not_declared_as_a_photo_is_refused(
    client: TestClient, fake_rasa: FakeRasa, content_type: Optional[str]
) -> None:
    response = upload(client, jpeg(), content_type=content_type)
    assert response.status_code == 415
    assert response.json() == {"error": TEXTS["photo_not_image"]}
    assert rows() == [] and fake_rasa.received == []


def test_an_invalid_page_id_is_refused(client: TestClient, fake_rasa: FakeRasa) -> None:
    response = upload(client, jpeg(), message_id="<x>")
    assert response.status_code == 400
    assert rows() == [] and fake_rasa.received == []


@pytest.mark.parametrize("cookie", [None, SENDER, "forged.value"])
def test_photo_and_location_need_the_chat_cookie(
    fake_rasa: FakeRasa, media_dir: Path, cookie: Optional[str]
) -> None:
    settings = load_settings()
    upgrade_database(settings.database_url)
    with TestClient(create_app(settings)) as anonymous:
        if cookie:
            anonymous.cookies.set("intake_chat", cookie, path="/chat")
        photo = upload(anonymous, jpeg())
        location = anonymous.post("/chat/api/location", json=SHANTOU)
    for response in (photo, location):
        assert response.status_code == 422
        assert response.json() == {"error": TEXTS["webchat_bad_sender"]}
    assert rows() == [] and stored_files(media_dir) == []
    assert fake_rasa.received == []


def test_a_store_failure_is_a_polite_503_and_logs_nothing_personal(
    client: TestClient,
    fake_rasa: FakeRasa,
    media_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.core.media.storage import LocalMediaStore

    def full_disk(self: Any, key: str, data: bytes, content_type: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LocalMediaStore, "put", full_disk)
    with caplog.at_level(logging.INFO):
        response = upload(client, jpeg())
    assert response.status_code == 503
    assert response.json() == {"error": TEXTS["photo_failed"]}
    assert rows() == [] and fake_rasa.received == []
    assert any("could not be stored" in r.getMessage() for r in caplog.records)
    assert not any(SENDER in r.getMessage() for r in caplog.records)


def test_a_database_failure_is_a_polite_503_and_leaves_no_file(
    client: TestClient, fake_rasa: FakeRasa, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    import bot.core.media.service as service

    def database_down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(service, "session_scope", database_down)
    response = upload(client, jpeg())
    assert response.status_code == 503
    assert response.json() == {"error": TEXTS["photo_failed"]}
    assert stored_files(media_dir) == [] and fake_rasa.received == []


def test_rasa_down_after_storing_then_the_retry_reuses_the_photo(
    client: TestClient, fake_rasa: FakeRasa, media_dir: Path
) -> None:
    fake_rasa.status = 500
    first = upload(client, jpeg(), message_id="m7")
    assert first.status_code == 503
    assert first.json() == {"error": TEXTS["webchat_busy"]}
    fake_rasa.status = 200
    again = upload(client, jpeg(), message_id="m7")  # the page retries with the same id
    assert again.status_code == 200
    [row] = rows()  # one photo, not two
    assert [r["metadata"] for r in fake_rasa.received] == [
        {"attachment_id": row.id, "webchat_id": "m7"}
    ] * 2
    assert len(stored_files(media_dir)) == 2
    # a new message (a new id) is a new photo
    assert upload(client, jpeg(), message_id="m8").status_code == 200
    assert len(rows()) == 2


def test_uploads_are_rate_limited_before_anything_is_stored(
    fake_rasa: FakeRasa, media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = yaml.safe_load((PROJECT_ROOT / "config" / "service.yml").read_text(encoding="utf-8"))
    config["limits"]["messages_per_sender_per_minute"] = 2
    path = tmp_path / "service.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("INTAKE_SERVICE_CONFIG", str(path))
    settings = load_settings()
    upgrade_database(settings.database_url)
    with TestClient(create_app(settings)) as client:
        client.cookies.set("intake_chat", chat_cookie(), path="/chat")
        answers = [upload(client, jpeg(), message_id=f"m{i}") for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json() == {"error": TEXTS["rate_limited"]}
    assert len(rows()) == 2 and len(fake_rasa.received) == 2


# ---------------------------------------------------------------- locations


def test_a_location_in_the_service_area_is_forwarded(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    fake_rasa.replies = [
        {"recipient_id": SENDER, "text": "是这个位置吗：潮南区峡山街道？", "buttons": CONFIRM}
    ]
    response = client.post("/chat/api/location", json={**SHANTOU, "id": "m2"})
    assert response.status_code == 200, response.text
    assert response.json() == [{"text": "是这个位置吗：潮南区峡山街道？", "buttons": CONFIRM}]
    assert fake_rasa.received == [
        {
            "sender": SENDER,
            "message": "/share_location",
            "metadata": {"location": {"lat": 23.253, "lon": 116.499}, "webchat_id": "m2"},
        }
    ]
    assert rows() == []  # a location is no attachment


@pytest.mark.parametrize(
    "body",
    [
        {"lat": 0, "lon": 0},
        {"lat": 91, "lon": 0},
        {"lat": 23.25, "lon": 181},
        {"lat": "潮南区峡山街道", "lon": "116.499"},
        {"lat": "23.253", "lon": "116.499"},  # numbers, not text
        {"lat": True, "lon": 116.499},
        {"lat": 23.253},
        {},
    ],
)
def test_a_location_that_is_no_position_is_refused(
    client: TestClient, fake_rasa: FakeRasa, body: Dict[str, Any]
) -> None:
    response = client.post("/chat/api/location", json=body)
    assert response.status_code == 422
    assert response.json() == {"error": TEXTS["location_invalid"]}
    assert fake_rasa.received == []


def test_a_location_outside_the_service_area_is_refused(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    response = client.post("/chat/api/location", json={**BEIJING, "id": "m3"})
    assert response.status_code == 422
    assert response.json() == {"error": TEXTS["location_outside"]}
    assert fake_rasa.received == []


@pytest.mark.parametrize("body", [b"not json", b"[23.253, 116.499]"])
def test_a_malformed_location_request_is_refused(
    client: TestClient, fake_rasa: FakeRasa, body: bytes
) -> None:
    response = client.post(
        "/chat/api/location", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert fake_rasa.received == []


def test_a_location_with_an_invalid_page_id_is_refused(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    assert client.post("/chat/api/location", json={**SHANTOU, "id": "<x>"}).status_code == 400
    assert fake_rasa.received == []


def test_a_location_when_rasa_is_down_is_a_polite_503(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    fake_rasa.status = 502
    response = client.post("/chat/api/location", json=SHANTOU)
    assert response.status_code == 503
    assert response.json() == {"error": TEXTS["webchat_busy"]}


# ---------------------------------------------------------------- history and page


def test_history_shows_photo_and_location_as_the_page_did(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    fake_rasa.events = [
        {
            "event": "user",
            "timestamp": 10.0,
            "text": "/send_photo",
            "metadata": {"webchat_id": "m1", "attachment_id": 7},
        },
        {"event": "bot", "timestamp": 11.0, "text": "照片已收到。", "data": {}},
        {
            "event": "user",
            "timestamp": 20.0,
            "text": "/share_location",
            "metadata": {"webchat_id": "m2", "location": SHANTOU},
        },
        {
            "event": "bot",
            "timestamp": 21.0,
            "text": "是这个位置吗：潮南区峡山街道？",
            "data": {"buttons": CONFIRM},
        },
        {"event": "user", "timestamp": 30.0, "text": "/affirm", "metadata": {"webchat_id": "m3"}},
    ]
    response = client.get("/chat/api/history")
    assert response.status_code == 200
    assert response.json() == [
        {"from": "customer", "text": "[照片]", "buttons": [], "timestamp": 10.0, "id": "m1"},
        {"from": "bot", "text": "照片已收到。", "buttons": [], "timestamp": 11.0},
        {"from": "customer", "text": "[位置]", "buttons": [], "timestamp": 20.0, "id": "m2"},
        {
            "from": "bot",
            "text": "是这个位置吗：潮南区峡山街道？",
            "buttons": CONFIRM,
            "timestamp": 21.0,
        },
        {"from": "customer", "text": "是，就是这里", "buttons": [], "timestamp": 30.0, "id": "m3"},
    ]
    assert TEXTS["webchat_photo_shown"] == "[照片]"
    assert TEXTS["webchat_location_shown"] == "[位置]"


def test_the_page_offers_photo_and_location_under_the_same_policy(client: TestClient) -> None:
    page = client.get("/chat")
    assert 'type="file" id="photo-file" accept="image/jpeg,image/png,image/webp"' in page.text
    assert 'id="photo-button"' in page.text and "发送位置" in page.text
    csp = page.headers["content-security-policy"]
    assert "blob:" not in csp and "img-src 'self' data:;" in csp
    script = client.get("/chat/static/chat.js").text
    assert "/chat/api" in script and '"/photos?id="' in script and '"/location"' in script
    assert "getCurrentPosition" in script
    assert "createObjectURL" not in script  # no blob: previews (the CSP forbids them)
