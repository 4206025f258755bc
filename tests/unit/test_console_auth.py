"""Console sign-in: argon2 hashes, sessions, CSRF, roles, and the route walk (every console
route and API endpoint refuses unauthenticated and wrong-role requests)."""

from __future__ import annotations

import re
from typing import Iterator, List, Tuple

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.core.db import session_scope
from bot.core.staff import ROLES, ConsoleUser, add_user, authenticate
from tests.unit.console_helpers import PASSWORD, USERS, csrf_of, make_client, sign_in

PUBLIC = {
    "/healthz",
    "/metrics",  # internal like /healthz (the nginx door does not pass it), no personal data
    "/login",
    "/logout",
    "/chat",
    "/chat/static/{name}",
    "/chat/api/messages",
    "/chat/api/history",
    "/chat/api/photos",  # the customer's own conversation (its signed cookie), like messages
    "/chat/api/location",
}


@pytest.fixture
def client(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    yield from make_client(sqlite_url, monkeypatch)


def test_passwords_are_stored_as_argon2_hashes(sqlite_url: str) -> None:
    with session_scope(sqlite_url) as session:
        add_user(session, "li", "a long password", "agent")
    with session_scope(sqlite_url) as session:
        stored = session.execute(select(ConsoleUser.password_hash)).scalar_one()
        assert stored.startswith("$argon2") and "a long password" not in stored
        assert authenticate(session, "li", "a long password").principal.role == "agent"
        assert authenticate(session, "li", "wrong password").principal is None
        assert authenticate(session, "nobody", "a long password").principal is None


def test_rejects_short_passwords_and_unknown_roles(sqlite_url: str) -> None:
    with session_scope(sqlite_url) as session, pytest.raises(ValueError):
        add_user(session, "li", "short", "agent")
    with session_scope(sqlite_url) as session, pytest.raises(ValueError):
        add_user(session, "li", "long enough pw", "janitor")


def test_sign_in_and_out(client: TestClient) -> None:
    assert (
        client.get("/console/queue", headers={"Accept": "text/html"}, follow_redirects=False)
        .headers["location"]
        .startswith("/login")
    )
    token = sign_in(client, "agent1")
    assert "排队与接待" in client.get("/console/queue").text
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/console/queue", follow_redirects=False).status_code == 401


def test_wrong_password_is_refused(client: TestClient) -> None:
    token = csrf_of(client)
    response = client.post(
        "/login", data={"username": "agent1", "password": "nope-nope", "csrf_token": token}
    )
    assert response.status_code == 401 and "用户名或密码错误" in response.text


def test_login_without_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "agent1", "password": PASSWORD})
    assert response.status_code == 403


def test_posts_need_the_sessions_csrf_token(client: TestClient, sqlite_url: str) -> None:
    from bot.core.tickets.repository import TicketRepository

    with session_scope(sqlite_url) as session:
        ticket, _ = TicketRepository(session).create(
            "suggestion", {"description": "多开营业厅"}, "conv-x", "rest"
        )
        number = ticket.ticket_no
    sign_in(client, "agent1")
    refused = client.post(
        f"/console/tickets/{number}", data={"status": "closed", "csrf_token": "forged"}
    )
    assert refused.status_code == 403
    with session_scope(sqlite_url) as session:
        assert TicketRepository(session).get(number).status == "new"


def _console_routes(app) -> List[Tuple[str, str, Tuple[str, ...]]]:
    """(method, concrete path, roles allowed) of every route that is not public."""
    found = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.path in PUBLIC:
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        roles = ()
        for dependency in route.dependant.dependencies:
            roles = getattr(dependency.call, "roles", roles)
        for method in sorted(route.methods):
            found.append((method, path, roles))
    return found


def test_route_walk_every_route_refuses_anonymous_and_wrong_roles(client: TestClient) -> None:
    routes = _console_routes(client.app)
    assert len(routes) >= 20
    for method, path, _ in routes:
        response = client.request(method, path, follow_redirects=False)
        assert response.status_code in (401, 303), (method, path, response.status_code)
        if response.status_code == 303:
            assert response.headers["location"].startswith("/login")
    checked = 0
    for username, role in USERS.items():
        token = sign_in(client, username)
        for method, path, roles in routes:
            if path.startswith("/api/"):  # bearer token only: a session is not enough
                response = client.request(method, path, headers={"X-CSRF-Token": token})
                assert response.status_code == 401, (username, method, path)
            elif roles and role != "admin" and role not in roles:
                response = client.request(
                    method, path, headers={"X-CSRF-Token": token}, follow_redirects=False
                )
                assert response.status_code == 403, (username, method, path, response.status_code)
                checked += 1
        client.post("/logout", data={"csrf_token": token})
    assert checked > 10
    assert set(ROLES) == set(USERS.values())


def test_every_console_route_declares_its_roles(client: TestClient) -> None:
    for method, path, roles in _console_routes(client.app):
        if not path.startswith("/api/"):
            assert roles, f"{method} {path} has no require_role dependency"


def _login(client: TestClient, username: str, password: str):
    token = csrf_of(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def test_five_wrong_passwords_lock_the_account_until_a_supervisor_unlocks_it(
    client: TestClient,
) -> None:
    statuses = [_login(client, "agent1", "wrong-pass-1").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 423]
    assert _login(client, "agent1", PASSWORD).status_code == 423  # the right one too, for now
    token = sign_in(client, "boss")
    assert (
        client.post("/console/users/agent1/unlock", headers={"X-CSRF-Token": token}).status_code
        == 200
    )
    assert _login(client, "agent1", PASSWORD).status_code == 303


def test_sign_in_is_throttled_per_address(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.settings import get_settings

    limit = get_settings().service.console.attempts_per_ip_per_15_minutes
    for index in range(limit):
        _login(client, f"nobody{index}", "wrong-pass-1")
    assert _login(client, "agent2", PASSWORD).status_code == 429


def test_logout_ends_every_session_of_the_account(
    client: TestClient, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = TestClient(client.app)
    sign_in(other, "agent1")
    token = sign_in(client, "agent1")
    client.post("/logout", data={"csrf_token": token})
    assert other.get("/console/queue", follow_redirects=False).status_code == 401


@pytest.mark.parametrize("change", ["disable", "password"])
def test_disabling_or_a_new_password_ends_every_session(
    client: TestClient, sqlite_url: str, change: str
) -> None:
    from bot.core.staff import disable, set_password

    sign_in(client, "agent1")
    assert client.get("/console/queue").status_code == 200
    with session_scope(sqlite_url) as session:
        disable(session, "agent1") if change == "disable" else set_password(
            session, "agent1", "new secret 99x"
        )
    assert client.get("/console/queue", follow_redirects=False).status_code == 401


def test_a_session_ends_after_its_hours_whatever_the_activity(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time as clock

    import bot.console.auth as auth

    sign_in(client, "agent1")
    later = clock.time() + 13 * 3600
    monkeypatch.setattr(auth.time, "time", lambda: later)
    assert client.get("/console/queue", follow_redirects=False).status_code == 401


@pytest.mark.parametrize("password", ["short1", "onlyletterslong", "password123", "agent1-secret9"])
def test_the_password_rule(sqlite_url: str, password: str) -> None:
    with session_scope(sqlite_url) as session, pytest.raises(ValueError):
        add_user(session, "agent1", password, "agent")


def test_api_docs_are_not_public(client: TestClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404
    assert client.get("/api/v1/openapi.json").status_code == 401
    document = client.get(
        "/api/v1/openapi.json", headers={"Authorization": "Bearer test-token"}
    ).json()
    assert "/api/v1/tickets" in document["paths"]


def test_session_cookies_are_secure_unless_local_http_is_said(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    from bot.console.app import create_app
    from bot.core.settings import load_settings

    monkeypatch.delenv("CONSOLE_HTTPS_ONLY")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CONSOLE_SWEEP_SECONDS", "0")
    with TestClient(create_app(load_settings()), base_url="https://testserver") as secure:
        assert "secure" in secure.get("/login").headers["set-cookie"].lower()
