"""Engines, sessions and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.core.db import (
    Base,
    downgrade_database,
    get_engine,
    ping,
    resolve_url,
    session_scope,
    upgrade_database,
)
from bot.core.tickets.models import TicketSequence

TABLES = {
    "dead_letters",
    "tickets",
    "ticket_events",
    "ticket_sequences",
    "handoffs",
    "billing_accounts",
    "bills",
    "planned_outages",
    "console_users",
    "trainer_inbox_items",
    "trainer_labels",
    "notifications",
    "privacy_audit",
    "attachments",
    "trainer_retrain_runs",
    "trainer_model_history",
}


def test_migrations_create_every_table(db_url: str) -> None:
    names = set(inspect(get_engine(db_url)).get_table_names())
    assert TABLES | {"alembic_version"} <= names
    assert {table.name for table in Base.metadata.sorted_tables} == TABLES


def test_models_and_migrations_agree(db_url: str) -> None:
    with get_engine(db_url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_downgrade_and_upgrade_again(db_url: str) -> None:
    downgrade_database(db_url)
    assert set(inspect(get_engine(db_url)).get_table_names()) <= {"alembic_version"}
    upgrade_database(db_url)
    upgrade_database(db_url)  # idempotent
    assert TABLES <= set(inspect(get_engine(db_url)).get_table_names())


def test_session_scope_commits_and_rolls_back(db_url: str) -> None:
    with session_scope(db_url) as session:
        session.add(TicketSequence(day="20260101", last_value=1))
    with pytest.raises(RuntimeError):
        with session_scope(db_url) as session:
            session.add(TicketSequence(day="20260102", last_value=1))
            session.flush()
            raise RuntimeError("boom")
    with session_scope(db_url) as session:
        days = session.execute(text("SELECT day FROM ticket_sequences")).scalars().all()
    assert days == ["20260101"]
    ping(db_url)


def test_sqlite_foreign_keys_are_on_after_migrating(sqlite_url: str) -> None:
    with get_engine(sqlite_url).connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_engine_is_cached_per_url(sqlite_url: str, tmp_path: Path) -> None:
    assert get_engine(sqlite_url) is get_engine(sqlite_url)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert get_engine(other) is not get_engine(sqlite_url)


def test_sqlite_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'x.db'}"
    engine = get_engine(url)  # creates the parent directory
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    assert (tmp_path / "nested" / "dir").is_dir()


def test_default_url_comes_from_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    assert resolve_url() == "postgresql://u@h/db"
    monkeypatch.delenv("DATABASE_URL")
    assert resolve_url() == f"sqlite:///{tmp_path / 'var' / 'intake.db'}"
