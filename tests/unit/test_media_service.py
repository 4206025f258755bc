"""Receiving, placing, purging and linking customers' photos (bot/core/media/service.py).

On the per-test SQLite database of tests/unit/conftest.py (DATABASE_URL, migrated here as
tests/unit/test_actions.py does) and a LocalMediaStore under tmp_path; config/service.yml's
`media:` section is replaced by a file of the test's own, so the limits are the ones named.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import re
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest
import yaml
from itsdangerous.timed import TimestampSigner
from PIL import Image
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from bot.core.db import dispose_engines, session_scope, upgrade_database
from bot.core.media import service
from bot.core.media.images import ImageRefused
from bot.core.media.models import Attachment
from bot.core.media.service import (
    Placement,
    attach_held,
    link_token,
    open_link_token,
    place_photo,
    purge_held,
    purge_ticket_photos,
    read_file,
    receive_photo,
)
from bot.core.media.storage import LocalMediaStore, MediaNotFound
from bot.core.settings import get_settings
from bot.core.tickets.models import Ticket
from bot.core.tickets.repository import TicketRepository

CONV = "web-customer-1"
OTHER = "web-customer-2"
FAULT = {"address": "潮南区峡山街道东山路12号", "phone": "13812345678", "description": "整栋楼停电"}
MAX_PER_TICKET = 9
LINK_MINUTES = 10
HELD_DAYS = 7
NOW = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.timezone.utc)
KEY_RE = re.compile(r"^\d{4}/\d{2}/\d{2}/[0-9a-f]{32}$")


def write_service_config(path: Path, **media: Any) -> None:
    values = {
        "max_per_ticket": MAX_PER_TICKET,
        "link_minutes": LINK_MINUTES,
        "held_days": HELD_DAYS,
        **media,
    }
    path.write_text(yaml.safe_dump({"media": values}), encoding="utf-8")


@pytest.fixture
def service_yml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "service.yml"
    write_service_config(path)
    monkeypatch.setenv("INTAKE_SERVICE_CONFIG", str(path))
    return path


@pytest.fixture(scope="module")
def migrated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database migrated to head, once for this module (migrating takes
    about half a second; every test copies the result)."""
    path = tmp_path_factory.mktemp("migrated") / "intake.db"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    dispose_engines(url)  # closes the connections: the WAL is folded into the file
    return path


@pytest.fixture
def database(isolated_environment: None, service_yml: Path, migrated_file: Path) -> Iterator[None]:
    """The per-test SQLite DATABASE_URL of conftest.py, migrated and empty."""
    target = Path(str(make_url(get_settings().database_url).database))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_file, target)
    yield
    dispose_engines()


@pytest.fixture
def store(tmp_path: Path, database: None) -> LocalMediaStore:
    return LocalMediaStore(tmp_path / "media")


def photo(seed: int = 0, size: tuple = (64, 48)) -> bytes:
    """A small JPEG with a maker note, different for each seed."""
    image = Image.new("RGB", size, (seed * 37 % 256, seed * 91 % 256, 120))
    exif = Image.Exif()
    exif[0x010F] = "SecretPhoneMaker"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def files(store: LocalMediaStore) -> List[Path]:
    if not store.root.exists():
        return []
    return sorted(path for path in store.root.rglob("*") if path.is_file())


def rows() -> List[Attachment]:
    with session_scope() as session:
        return list(session.scalars(select(Attachment).order_by(Attachment.id)))


def row(attachment_id: int) -> Attachment:
    with session_scope() as session:
        found = session.get(Attachment, attachment_id)
        assert found is not None
        return found


def file_ticket(conversation_id: str = CONV, description: str = "整栋楼停电") -> Ticket:
    with session_scope() as session:
        ticket, created = TicketRepository(session).create(
            "fault_repair", {**FAULT, "description": description}, conversation_id, "webchat"
        )
        assert created
        return ticket


def set_status(ticket_no: str, status: str) -> None:
    with session_scope() as session:
        TicketRepository(session).update(ticket_no, actor="agent1", status=status)


def count_on(ticket: Ticket) -> int:
    with session_scope() as session:
        return int(
            session.scalar(
                select(func.count(Attachment.id)).where(Attachment.ticket_id == ticket.id)
            )
        )


@contextlib.contextmanager
def naive_datetimes_only() -> Iterator[List[str]]:
    """Fail a write of an aware datetime into the attachments table (stored as naive UTC)."""
    problems: List[str] = []

    def check(_mapper: Any, _connection: Any, target: Attachment) -> None:
        for name in ("created_at", "attached_at"):
            value = getattr(target, name)
            if value is not None and value.tzinfo is not None:
                problems.append(f"{name}={value!r}")

    event.listen(Attachment, "before_insert", check)
    event.listen(Attachment, "before_update", check)
    try:
        yield problems
    finally:
        event.remove(Attachment, "before_insert", check)
        event.remove(Attachment, "before_update", check)


# ---------------------------------------------------------------- receiving


def test_receive_photo_stores_two_files_and_one_row(store: LocalMediaStore) -> None:
    with naive_datetimes_only() as problems:
        attachment_id = receive_photo(CONV, "telegram", photo(), store=store)
    assert problems == []

    [stored] = rows()
    assert stored.id == attachment_id
    assert (stored.kind, stored.conversation_id, stored.channel) == ("photo", CONV, "telegram")
    assert stored.ticket_id is None and stored.attached_at is None
    assert (stored.content_type, stored.width, stored.height) == ("image/jpeg", 64, 48)
    assert stored.created_at.tzinfo is None
    assert abs(
        stored.created_at - dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    ) < dt.timedelta(minutes=1)

    assert len(files(store)) == 2
    data = store.get(stored.file_key)
    thumbnail = store.get(stored.thumbnail_key)
    assert stored.size_bytes == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert b"SecretPhoneMaker" not in data  # the cleaned file, not the one received
    assert Image.open(io.BytesIO(thumbnail)).format == "JPEG"

    assert stored.file_key.endswith(".jpg") and stored.thumbnail_key.endswith("-thumb.jpg")
    stem = stored.file_key[: -len(".jpg")]
    assert KEY_RE.fullmatch(stem)
    assert stored.thumbnail_key == f"{stem}-thumb.jpg"


def test_each_photo_gets_its_own_files(store: LocalMediaStore) -> None:
    first = receive_photo(CONV, "webchat", photo(1), store=store)
    second = receive_photo(CONV, "webchat", photo(1), store=store)  # the same photo twice
    assert first != second
    assert row(first).file_key != row(second).file_key
    assert len(files(store)) == 4


def test_a_png_keeps_its_type_and_extension(store: LocalMediaStore) -> None:
    out = io.BytesIO()
    Image.new("RGBA", (40, 40), (1, 2, 3, 128)).save(out, "PNG")
    stored = row(receive_photo(CONV, "wechat", out.getvalue(), store=store))
    assert stored.content_type == "image/png"
    assert stored.file_key.endswith(".png") and stored.thumbnail_key.endswith("-thumb.jpg")


def test_a_refused_image_stores_nothing(store: LocalMediaStore) -> None:
    with pytest.raises(ImageRefused) as caught:
        receive_photo(CONV, "telegram", b"%PDF-1.4 not a photo", store=store)
    assert caught.value.reason == "not_image"
    with pytest.raises(ImageRefused):
        receive_photo(CONV, "telegram", photo(size=(4, 4)), store=store)
    assert rows() == []
    assert files(store) == []


def test_when_the_row_cannot_be_written_the_files_are_removed(store: LocalMediaStore) -> None:
    @contextlib.contextmanager
    def database_down(*_args: Any, **_kwargs: Any) -> Iterator[None]:
        raise RuntimeError("database down")
        yield  # pragma: no cover

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "session_scope", database_down)
        with pytest.raises(RuntimeError, match="database down"):
            receive_photo(CONV, "telegram", photo(), store=store)

    assert files(store) == []
    assert rows() == []


def test_when_the_insert_fails_the_files_are_removed(
    store: LocalMediaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: Any) -> None:
        raise RuntimeError("disk I/O error")

    event.listen(Attachment, "before_insert", refuse)
    try:
        with pytest.raises(RuntimeError, match="disk I/O error"):
            receive_photo(CONV, "telegram", photo(), store=store)
    finally:
        event.remove(Attachment, "before_insert", refuse)
    assert files(store) == []
    assert rows() == []


class FailingStore(LocalMediaStore):
    """A local store whose put fails from the `fail_at`-th call on."""

    def __init__(self, root: Path, fail_at: int) -> None:
        super().__init__(root)
        self.puts = 0
        self.fail_at = fail_at

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.puts += 1
        if self.puts >= self.fail_at:
            raise OSError("object store unavailable")
        super().put(key, data, content_type)


@pytest.mark.parametrize("fail_at", [1, 2])
def test_when_a_file_cannot_be_written_nothing_is_left(
    tmp_path: Path, database: None, fail_at: int
) -> None:
    failing = FailingStore(tmp_path / "media", fail_at)
    with pytest.raises(OSError):
        receive_photo(CONV, "telegram", photo(), store=failing)
    assert files(failing) == []
    assert rows() == []


# ---------------------------------------------------------------- placing


@pytest.mark.parametrize(
    "given", ["abc", "", None, "1.5", 1.5, "12abc", "-1", 0, "99999999999999999999", 2**63]
)
def test_an_id_that_is_no_attachment_is_missing(store: LocalMediaStore, given: object) -> None:
    receive_photo(CONV, "webchat", photo(), store=store)
    assert place_photo(given, CONV, to_open_ticket=True, store=store) == Placement("missing")


def test_a_numeric_string_id_is_accepted(store: LocalMediaStore) -> None:
    attachment_id = receive_photo(CONV, "webchat", photo(), store=store)
    assert place_photo(str(attachment_id), CONV, False, store=store).outcome == "held"


def test_another_conversation_s_photo_is_missing(store: LocalMediaStore) -> None:
    theirs = receive_photo(OTHER, "webchat", photo(), store=store)
    file_ticket(CONV)

    assert place_photo(theirs, CONV, to_open_ticket=True, store=store) == Placement("missing")

    assert row(theirs).ticket_id is None  # not moved onto my ticket
    assert len(files(store)) == 2  # and not deleted either


def test_an_unknown_id_is_missing(store: LocalMediaStore) -> None:
    attachment_id = receive_photo(CONV, "webchat", photo(), store=store)
    assert place_photo(attachment_id + 1, CONV, True, store=store).outcome == "missing"


def test_a_photo_is_held_while_a_request_is_collected(store: LocalMediaStore) -> None:
    ticket = file_ticket()
    attachment_id = receive_photo(CONV, "webchat", photo(), store=store)

    assert place_photo(attachment_id, CONV, to_open_ticket=False, store=store) == Placement("held")

    assert row(attachment_id).ticket_id is None
    assert count_on(ticket) == 0


def test_a_photo_is_held_when_there_is_no_open_ticket(store: LocalMediaStore) -> None:
    file_ticket(OTHER)  # someone else's open ticket is no target
    attachment_id = receive_photo(CONV, "webchat", photo(), store=store)
    assert place_photo(attachment_id, CONV, to_open_ticket=True, store=store) == Placement("held")
    assert row(attachment_id).ticket_id is None


def test_a_photo_goes_on_the_newest_open_ticket(store: LocalMediaStore) -> None:
    older = file_ticket(description="门口电线冒火花")
    newer = file_ticket(description="整栋楼停电")
    attachment_id = receive_photo(CONV, "webchat", photo(), store=store)

    with naive_datetimes_only() as problems:
        placed = place_photo(attachment_id, CONV, to_open_ticket=True, store=store)

    assert placed == Placement("attached", newer.ticket_no)
    stored = row(attachment_id)
    assert stored.ticket_id == newer.id
    assert stored.attached_at is not None and stored.attached_at.tzinfo is None
    assert problems == []
    assert count_on(older) == 0


@pytest.mark.parametrize("status", ["resolved", "closed", "cancelled"])
def test_finished_tickets_are_not_targets(store: LocalMediaStore, status: str) -> None:
    older = file_ticket(description="门口电线冒火花")
    newer = file_ticket(description="整栋楼停电")
    set_status(newer.ticket_no, status)
    first = receive_photo(CONV, "webchat", photo(1), store=store)

    assert place_photo(first, CONV, True, store=store) == Placement("attached", older.ticket_no)

    set_status(older.ticket_no, "cancelled")
    second = receive_photo(CONV, "webchat", photo(2), store=store)
    assert place_photo(second, CONV, True, store=store) == Placement("held")


def test_placing_an_attached_photo_again_says_where_it_is(store: LocalMediaStore) -> None:
    ticket = file_ticket()
    attachment_id = receive_photo(CONV, "webchat", photo(), store=store)
    place_photo(attachment_id, CONV, True, store=store)
    set_status(ticket.ticket_no, "closed")

    again = place_photo(attachment_id, CONV, True, store=store)

    assert again == Placement("attached", ticket.ticket_no)
    assert row(attachment_id).ticket_id == ticket.id
    assert count_on(ticket) == 1


def test_the_tenth_photo_for_a_ticket_is_refused_and_deleted(store: LocalMediaStore) -> None:
    ticket = file_ticket()
    for number in range(MAX_PER_TICKET):
        attachment_id = receive_photo(CONV, "telegram", photo(number), store=store)
        placed = place_photo(attachment_id, CONV, True, store=store)
        assert placed == Placement("attached", ticket.ticket_no)
    tenth = receive_photo(CONV, "telegram", photo(99), store=store)
    tenth_keys = (row(tenth).file_key, row(tenth).thumbnail_key)

    assert place_photo(tenth, CONV, True, store=store) == Placement("limit", ticket.ticket_no)

    assert count_on(ticket) == MAX_PER_TICKET
    assert tenth not in [stored.id for stored in rows()]
    assert len(files(store)) == 2 * MAX_PER_TICKET
    for key in tenth_keys:
        with pytest.raises(MediaNotFound):
            store.get(key)


def test_the_limit_follows_the_configuration(
    store: LocalMediaStore, service_yml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_service_config(service_yml, max_per_ticket=2)
    monkeypatch.setenv("INTAKE_SERVICE_CONFIG", str(service_yml))  # read afresh
    ticket = file_ticket()
    outcomes = [
        place_photo(receive_photo(CONV, "webchat", photo(n), store=store), CONV, True, store=store)
        for n in range(3)
    ]
    assert [placed.outcome for placed in outcomes] == ["attached", "attached", "limit"]
    assert count_on(ticket) == 2


def test_more_held_photos_than_a_ticket_takes_are_refused(store: LocalMediaStore) -> None:
    outcomes = []
    for number in range(MAX_PER_TICKET + 1):
        attachment_id = receive_photo(CONV, "webchat", photo(number), store=store)
        outcomes.append(place_photo(attachment_id, CONV, False, store=store).outcome)

    assert outcomes == ["held"] * MAX_PER_TICKET + ["limit"]
    assert len(rows()) == MAX_PER_TICKET
    assert len(files(store)) == 2 * MAX_PER_TICKET


def test_another_conversation_s_held_photos_do_not_count(store: LocalMediaStore) -> None:
    for number in range(MAX_PER_TICKET):
        receive_photo(OTHER, "webchat", photo(number), store=store)
    mine = receive_photo(CONV, "webchat", photo(50), store=store)
    assert place_photo(mine, CONV, False, store=store).outcome == "held"


# ---------------------------------------------------------------- attaching held photos


def test_attach_held_moves_the_held_photos_to_a_new_ticket(store: LocalMediaStore) -> None:
    held = [receive_photo(CONV, "webchat", photo(n), store=store) for n in range(3)]
    theirs = receive_photo(OTHER, "webchat", photo(9), store=store)

    with naive_datetimes_only() as problems, session_scope() as session:
        ticket, _ = TicketRepository(session).create("fault_repair", FAULT, CONV, "webchat")
        assert attach_held(session, CONV, ticket) == 3
        ticket_id = ticket.id

    assert problems == []
    assert [row(n).ticket_id for n in held] == [ticket_id] * 3
    assert all(row(n).attached_at is not None for n in held)
    assert row(theirs).ticket_id is None


def test_attach_held_stops_at_the_limit_oldest_first(store: LocalMediaStore) -> None:
    held = [receive_photo(CONV, "webchat", photo(n), store=store) for n in range(11)]
    with session_scope() as session:
        ticket, _ = TicketRepository(session).create("fault_repair", FAULT, CONV, "webchat")
        assert attach_held(session, CONV, ticket) == MAX_PER_TICKET
        ticket_id = ticket.id
    assert [row(n).ticket_id for n in held[:MAX_PER_TICKET]] == [ticket_id] * MAX_PER_TICKET
    assert [row(n).ticket_id for n in held[MAX_PER_TICKET:]] == [None, None]


def test_attach_held_counts_what_the_ticket_has_already(store: LocalMediaStore) -> None:
    ticket = file_ticket()
    for number in range(MAX_PER_TICKET - 1):
        place_photo(
            receive_photo(CONV, "webchat", photo(number), store=store), CONV, True, store=store
        )
    held = [receive_photo(CONV, "webchat", photo(20 + n), store=store) for n in range(3)]

    with session_scope() as session:
        target = session.get(Ticket, ticket.id)
        assert attach_held(session, CONV, target) == 1
        assert attach_held(session, CONV, target) == 0  # full now

    assert count_on(ticket) == MAX_PER_TICKET
    assert [row(n).ticket_id for n in held] == [ticket.id, None, None]


def test_attach_held_without_a_conversation_attaches_nothing(store: LocalMediaStore) -> None:
    receive_photo(CONV, "webchat", photo(), store=store)
    ticket = file_ticket()
    with session_scope() as session:
        assert attach_held(session, None, session.get(Ticket, ticket.id)) == 0
        assert attach_held(session, "", session.get(Ticket, ticket.id)) == 0
    assert count_on(ticket) == 0


# ---------------------------------------------------------------- purging


def received_at(
    when: dt.datetime, store: LocalMediaStore, conversation_id: str = CONV, seed: int = 0
) -> int:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "utc_now", lambda: when)
        return receive_photo(conversation_id, "webchat", photo(seed), store=store)


def test_purge_held_deletes_old_held_photos_only(store: LocalMediaStore) -> None:
    old_held = received_at(NOW - dt.timedelta(days=HELD_DAYS, minutes=1), store, seed=1)
    young_held = received_at(NOW - dt.timedelta(days=HELD_DAYS - 1), store, seed=2)
    old_attached = received_at(NOW - dt.timedelta(days=30), store, seed=3)
    ticket = file_ticket()
    assert place_photo(old_attached, CONV, True, store=store).outcome == "attached"
    old_keys = (row(old_held).file_key, row(old_held).thumbnail_key)

    assert purge_held(now=NOW, store=store) == 1

    assert sorted(stored.id for stored in rows()) == sorted([young_held, old_attached])
    assert count_on(ticket) == 1
    assert len(files(store)) == 4
    for key in old_keys:
        with pytest.raises(MediaNotFound):
            store.get(key)
    assert purge_held(now=NOW, store=store) == 0


def test_purge_held_by_default_uses_the_clock(store: LocalMediaStore) -> None:
    received_at(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=HELD_DAYS + 1), store)
    fresh = receive_photo(CONV, "webchat", photo(5), store=store)
    assert purge_held(store=store) == 1
    assert [stored.id for stored in rows()] == [fresh]


def test_purge_held_accepts_a_naive_utc_now(store: LocalMediaStore) -> None:
    received_at(NOW - dt.timedelta(days=HELD_DAYS + 1), store)
    assert purge_held(now=NOW.replace(tzinfo=None), store=store) == 1


def test_purge_held_keeps_everything_when_held_days_is_0(
    store: LocalMediaStore, service_yml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_service_config(service_yml, held_days=0)
    monkeypatch.setenv("INTAKE_SERVICE_CONFIG", str(service_yml))
    received_at(NOW - dt.timedelta(days=400), store)
    assert purge_held(now=NOW, store=store) == 0
    assert len(rows()) == 1 and len(files(store)) == 2


def test_purge_held_in_the_caller_s_transaction(store: LocalMediaStore) -> None:
    received_at(NOW - dt.timedelta(days=HELD_DAYS + 1), store, seed=1)
    young = received_at(NOW - dt.timedelta(days=1), store, seed=2)
    with session_scope() as session:
        assert purge_held(NOW, store, session=session) == 1
    assert [stored.id for stored in rows()] == [young]
    assert len(files(store)) == 2


def test_purge_conversation_photos_deletes_held_and_attached(store: LocalMediaStore) -> None:
    file_ticket()
    attached = receive_photo(CONV, "webchat", photo(1), store=store)
    assert place_photo(attached, CONV, True, store=store).outcome == "attached"
    receive_photo(CONV, "webchat", photo(2), store=store)  # held
    theirs = receive_photo(OTHER, "webchat", photo(3), store=store)

    with session_scope() as session:
        assert service.purge_conversation_photos(session, CONV, store=store) == 2

    assert [stored.id for stored in rows()] == [theirs]
    assert len(files(store)) == 2


def test_purge_ticket_photos_deletes_that_ticket_s_photos(store: LocalMediaStore) -> None:
    mine = file_ticket()
    theirs = file_ticket(OTHER)
    for number in range(2):
        place_photo(
            receive_photo(CONV, "webchat", photo(number), store=store), CONV, True, store=store
        )
    kept = receive_photo(OTHER, "webchat", photo(7), store=store)
    place_photo(kept, OTHER, True, store=store)
    held = receive_photo(CONV, "webchat", photo(8), store=store)

    with session_scope() as session:
        assert purge_ticket_photos(session, mine.id, store=store) == 2

    assert count_on(mine) == 0 and count_on(theirs) == 1
    assert sorted(stored.id for stored in rows()) == sorted([kept, held])
    assert len(files(store)) == 4


# ---------------------------------------------------------------- staff links and files


def test_link_token_round_trip(store: LocalMediaStore) -> None:
    assert open_link_token(link_token(42)) == (42, "full")
    assert open_link_token(link_token(42, "thumb")) == (42, "thumb")
    assert link_token(42) != link_token(43)


def test_a_tampered_token_is_refused(database: None) -> None:
    token = link_token(42, "full")
    payload, timestamp, signature = token.split(".")
    other = link_token(43, "full").split(".")[0]
    assert open_link_token(f"{other}.{timestamp}.{signature}") is None  # another photo's id
    changed = signature[:5] + ("z" if signature[5] != "z" else "A") + signature[6:]
    assert open_link_token(f"{payload}.{timestamp}.{changed}") is None
    later = ("z" if timestamp[0] != "z" else "A") + timestamp[1:]
    assert open_link_token(f"{payload}.{later}.{signature}") is None  # a longer life
    for garbage in ("", "not-a-token", "x" * 500, f"{payload}.{timestamp}", token + "."):
        assert open_link_token(garbage) is None


def test_a_token_of_another_console_key_is_refused(
    database: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSOLE_SECRET_KEY", "one-console-key-" + "a" * 40)
    token = link_token(42)
    assert open_link_token(token) == (42, "full")
    monkeypatch.setenv("CONSOLE_SECRET_KEY", "another-console-key-" + "b" * 40)
    assert open_link_token(token) is None


def at(seconds_later: float, made: int) -> Callable[[Any], int]:
    return lambda _self: int(made + seconds_later)


def test_a_token_expires_after_link_minutes(
    database: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = int(time.time())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", at(0, made))
    token = link_token(7, "thumb")

    monkeypatch.setattr(TimestampSigner, "get_timestamp", at(LINK_MINUTES * 60 - 1, made))
    assert open_link_token(token) == (7, "thumb")
    monkeypatch.setattr(TimestampSigner, "get_timestamp", at(LINK_MINUTES * 60 + 1, made))
    assert open_link_token(token) is None


def test_link_minutes_follows_the_configuration(
    database: None, service_yml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_service_config(service_yml, link_minutes=1)
    monkeypatch.setenv("INTAKE_SERVICE_CONFIG", str(service_yml))
    made = int(time.time())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", at(0, made))
    token = link_token(7)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", at(59, made))
    assert open_link_token(token) == (7, "full")
    monkeypatch.setattr(TimestampSigner, "get_timestamp", at(61, made))
    assert open_link_token(token) is None


@pytest.mark.parametrize("variant", ["original", "", "FULL", "../thumb"])
def test_a_bad_variant_is_refused(database: None, variant: str) -> None:
    with pytest.raises(ValueError):
        link_token(1, variant)


def test_a_signed_token_with_a_bad_payload_is_refused(database: None) -> None:
    signer = service._serializer()
    for payload in ([1, "original"], ["1", "full"], [1], {"id": 1}, [1, "full", "x"], 1.5):
        assert open_link_token(str(signer.dumps(payload))) is None


def test_read_file_gives_the_photo_or_its_thumbnail(store: LocalMediaStore) -> None:
    stored = row(receive_photo(CONV, "webchat", photo(size=(800, 600)), store=store))

    data, content_type = read_file(stored, "full", store=store)
    assert (data, content_type) == (store.get(stored.file_key), "image/jpeg")
    thumbnail, thumb_type = read_file(stored, "thumb", store=store)
    assert thumb_type == "image/jpeg"
    assert thumbnail == store.get(stored.thumbnail_key) != data
    assert Image.open(io.BytesIO(thumbnail)).size == (320, 240)


def test_read_file_of_a_removed_photo_is_media_not_found(store: LocalMediaStore) -> None:
    stored = row(receive_photo(CONV, "webchat", photo(), store=store))
    store.delete(stored.file_key)
    with pytest.raises(MediaNotFound):
        read_file(stored, "full", store=store)


def test_the_default_store_is_the_configured_media_dir(
    database: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.media.storage import media_store

    monkeypatch.setenv("INTAKE_MEDIA_BACKEND", "local")
    monkeypatch.setenv("INTAKE_MEDIA_DIR", str(tmp_path / "default-media"))
    media_store.cache_clear()
    try:
        stored = row(receive_photo(CONV, "webchat", photo()))
        assert (tmp_path / "default-media" / stored.file_key).is_file()
        assert (
            read_file(stored, "thumb")[0]
            == (tmp_path / "default-media" / stored.thumbnail_key).read_bytes()
        )
    finally:
        media_store.cache_clear()


def test_a_deletion_that_is_rolled_back_keeps_the_files(store: LocalMediaStore) -> None:
    attachment_id = receive_photo(CONV, "rest", photo(), store=store)
    before = files(store)
    with pytest.raises(RuntimeError), session_scope() as session:
        service.delete_attachment(session, session.get(Attachment, attachment_id), store)
        raise RuntimeError("the transaction fails after the delete")
    assert files(store) == before and [r.id for r in rows()] == [attachment_id]
    with session_scope() as session:
        service.delete_attachment(session, session.get(Attachment, attachment_id), store)
    assert files(store) == [] and rows() == []
