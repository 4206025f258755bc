"""Retention purge and a customer's PIPL requests (bot/core/privacy.py), on SQLite and
PostgreSQL, with a real SQLite tracker store in Rasa's `events` table shape."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from bot.core import dead_letters
from bot.core.db import session_scope
from bot.core.privacy import PrivacyAudit, erase_customer, export_customer, purge
from bot.core.settings import load_settings
from bot.core.tickets.repository import TicketRepository

FAULT = {"address": "潮南区峡山街道东山路12号", "phone": "13812345678", "description": "整栋楼停电"}


@pytest.fixture
def tracker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "tracker.db"
    engine = create_engine(f"sqlite:///{path}", future=True)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, timestamp REAL, data TEXT)"
            )
        )
    engine.dispose()
    monkeypatch.setenv("RASA_TRACKER_DB", str(path))
    return f"sqlite:///{path}"


def add_event(tracker_url: str, sender: str, at: dt.datetime) -> None:
    engine = create_engine(tracker_url, future=True)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO events (sender_id, timestamp, data) VALUES (:s, :t, '{}')"),
            {"s": sender, "t": at.timestamp()},
        )
    engine.dispose()


def count_events(tracker_url: str, sender: str) -> int:
    engine = create_engine(tracker_url, future=True)
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT COUNT(*) FROM events WHERE sender_id = :s"), {"s": sender}
        ).scalar_one()
    engine.dispose()
    return int(found)


def test_purge_removes_only_what_is_past_retention(
    db_url: str, tracker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    settings = load_settings()
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)
    long_ago = now - dt.timedelta(days=400)
    with session_scope(db_url) as session:
        tickets = TicketRepository(session, clock=lambda: long_ago)
        old, _ = tickets.create("fault_repair", FAULT, "web-old", "webchat")
        tickets.update(old.ticket_no, "staff1", status="resolved")
        still_open, _ = tickets.create(
            "fault_repair", {**FAULT, "description": "跳闸"}, "web-open", "webchat"
        )
        old_no, open_no = old.ticket_no, still_open.ticket_no
    add_event(tracker, "web-old", long_ago)
    add_event(tracker, "web-recent", now - dt.timedelta(days=1))
    dead_letters.record(
        "telegram_poll", 1, attempts=5, error="HTTP 500", payload={"t": "x"}, url=db_url
    )
    with session_scope(db_url) as session:  # make the dead letter old
        letter = session.execute(select(dead_letters.DeadLetter)).scalar_one()
        letter.created_at = long_ago.replace(tzinfo=None)

    report = purge(settings, now=now)

    assert report.tickets == 1 and report.tracker_events == 1 and report.dead_letters == 1
    with session_scope(db_url) as session:
        repository = TicketRepository(session)
        assert repository.get(old_no).details["phone"] == "（已删除）"
        assert repository.get(open_no).details["phone"] == "13812345678"  # open: kept
        assert session.execute(select(PrivacyAudit)).scalar_one().action == "purge"
    assert count_events(tracker, "web-old") == 0 and count_events(tracker, "web-recent") == 1
    assert purge(settings, now=now).as_dict() == {k: 0 for k in report.as_dict()}  # idempotent


def test_export_and_erase_a_customers_data(
    db_url: str, tracker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    with session_scope(db_url) as session:
        mine, _ = TicketRepository(session).create("fault_repair", FAULT, "web-me", "webchat")
        TicketRepository(session).create(
            "fault_repair", {**FAULT, "phone": "13900001111"}, "web-other", "webchat"
        )
        my_ticket = mine.ticket_no
    add_event(tracker, "web-me", dt.datetime.now(dt.timezone.utc))
    add_event(tracker, "web-other", dt.datetime.now(dt.timezone.utc))

    exported = export_customer("138 1234 5678", actor="clerk1")
    assert [t["ticket_no"] for t in exported.tickets] == [my_ticket]
    assert list(exported.conversations) == ["web-me"]

    counts = erase_customer("13812345678", actor="clerk1")
    assert counts["tickets"] == 1 and counts["tracker_events"] == 1
    assert count_events(tracker, "web-me") == 0 and count_events(tracker, "web-other") == 1
    assert export_customer("13812345678", actor="clerk1").tickets == []
    with session_scope(db_url) as session:
        audit = session.execute(select(PrivacyAudit).order_by(PrivacyAudit.id)).scalars().all()
        assert [a.action for a in audit] == ["export", "erase", "export"]
        assert all("13812345678" not in a.subject for a in audit)  # masked in the audit too
