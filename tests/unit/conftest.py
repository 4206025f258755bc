"""Fixtures of the unit tests: an isolated environment, and databases on SQLite and PostgreSQL.

PostgreSQL is used for real: one fresh database per test session on TEST_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/postgres, trust auth), dropped afterwards.
If the server cannot be reached, the PostgreSQL tests fail with a clear message.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bot.core.db import Base, dispose_engines, import_models, session_scope, upgrade_database

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

import_models()


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the developer's var/, token or external services."""
    monkeypatch.setenv("INTAKE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'default.db'}")
    monkeypatch.setenv("INTAKE_API_TOKEN", "test-token")
    monkeypatch.setenv("CONSOLE_HTTPS_ONLY", "0")  # the test client speaks plain HTTP
    # Rasa is nowhere unless a test starts a fake of it: not even the end-to-end tests' stack,
    # which is still running (and in os.environ) when the whole suite runs in one session.
    monkeypatch.setenv("RASA_URL", "http://127.0.0.1:9")
    for name in (
        "INTAKE_TIMEZONE",
        "BILLING_API_URL",
        "BILLING_API_TOKEN",
        "RASA_TOKEN",
        "INTAKE_SERVICE_CONFIG",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_WEBHOOK_SECRET",
        "TELEGRAM_API_BASE_URL",
        "WECHAT_TOKEN",
        "WECHAT_APP_ID",
        "WECHAT_APP_SECRET",
        "WECHAT_ENCODING_AES_KEY",
        "WECHAT_API_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (dropped at the end)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    name = f"intake_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is required by these tests but unreachable at {PG_ADMIN_URL} "
            f"(set TEST_POSTGRES_URL): {error}",
            pytrace=False,
        )
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_database(url)
        yield url
    finally:
        dispose_engines(url)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_tables(url: str) -> None:
    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with session_scope(url) as session:
        session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'intake.db'}"
        upgrade_database(url)
        yield url
        dispose_engines(url)
    else:
        url = request.getfixturevalue("postgres_url")
        upgrade_database(url)  # a test may have downgraded it
        _empty_tables(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite database only (for tests about SQLite itself)."""
    url = f"sqlite:///{tmp_path / 'db' / 'intake.db'}"
    upgrade_database(url)
    yield url
    dispose_engines(url)


# 2026-11-27 17:30 in Shantou (UTC+8): a Friday.
NOW = datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def now() -> datetime:
    """The tests' fixed "now" (aware UTC)."""
    return NOW


@pytest.fixture
def clock_at() -> Callable[[datetime], Callable[[], datetime]]:
    """Make a clock that always says the given aware datetime."""

    def make(value: datetime) -> Callable[[], datetime]:
        assert value.tzinfo is not None
        return lambda: value

    return make
