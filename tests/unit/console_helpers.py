"""Shared helpers of the console unit tests: an app on a test database, users, sign-in."""

from __future__ import annotations

import re
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from bot.console.app import create_app
from bot.core.db import session_scope
from bot.core.settings import load_settings
from bot.core.staff import add_user

PASSWORD = "correct horse 42"
USERS = {
    "agent1": "agent",
    "agent2": "agent",
    "boss": "supervisor",
    "trainer1": "trainer",
    "root": "admin",
}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CONSOLE_SWEEP_SECONDS", "0")
    with session_scope(db_url) as session:
        for name, role in USERS.items():
            add_user(session, name, PASSWORD, role, display_name=f"{name}-名")
    with TestClient(create_app(load_settings())) as client:
        yield client


def csrf_of(client: TestClient, path: str = "/login") -> str:
    match = CSRF_RE.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the form; the session's CSRF token."""
    token = csrf_of(client)
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client)
