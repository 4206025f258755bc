"""The console: /healthz and the JSON API v1 (auth on every route, filters, PATCH, 404)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from bot.console.app import create_app
from bot.core.db import session_scope
from bot.core.handoff.repository import HandoffRepository
from bot.core.settings import load_settings
from bot.core.tickets.repository import TicketRepository

TOKEN = "test-token"  # INTAKE_API_TOKEN, set by the isolated_environment fixture
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAULT = {"address": "龙湖区长平路88号", "phone": "13812345678", "description": "跳闸"}


@pytest.fixture
def client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("DATABASE_URL", db_url)
    with TestClient(create_app(load_settings())) as test_client:
        yield test_client


@pytest.fixture
def filed(db_url: str, clock_at, now) -> list:
    """Three tickets in two conversations, and two handoffs."""
    with session_scope(db_url) as session:
        numbers = []
        for minute, (code, details, conversation) in enumerate(
            [
                ("fault_repair", FAULT, "conv-1"),
                ("complaint", {"phone": "13900001111", "description": "多收电费"}, "conv-1"),
                ("suggestion", {"description": "希望延长营业时间"}, "conv-2"),
            ]
        ):
            clock = clock_at(now + timedelta(minutes=minute))
            ticket, _ = TicketRepository(session, clock=clock).create(
                code, details, conversation, "rest"
            )
            numbers.append(ticket.ticket_no)
        HandoffRepository(session, clock=clock_at(now)).open(
            "conv-1", "rest", "complaint", "high", {}
        )
        HandoffRepository(session, clock=clock_at(now + timedelta(minutes=1))).open(
            "conv-3", "wechat", "emergency", "urgent", {}
        )
    return numbers


def _api_requests(app) -> list:
    """(method, concrete path) of every /api/v1 route of the app."""
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api/"):
            path = re.sub(r"\{[^}]+\}", "GD20261127000001", route.path)
            found.extend((method, path) for method in sorted(route.methods))
    return found


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": "Basic dGVzdA=="},
    ],
    ids=["none", "wrong", "no-scheme", "basic"],
)
def test_every_api_route_requires_the_token(client: TestClient, filed: list, headers: dict) -> None:
    requests = _api_requests(client.app)
    assert {path for _, path in requests} >= {"/api/v1/tickets", "/api/v1/handoffs"}
    for method, path in requests:
        response = client.request(method, path, headers=headers, json={"note": "x"})
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Unauthorized" in response.json()["detail"]


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    # Rasa is nowhere in the unit tests (RASA_URL on a closed port): degraded, still 200.
    assert response.status_code == 200 and response.json() == {
        "status": "degraded",
        "depends_on": {"database": "up", "rasa": "down"},
    }


def test_healthz_unavailable(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{blocker}/sub/x.db")  # parent is a file
    with TestClient(create_app(load_settings())) as test_client:
        assert test_client.get("/healthz").status_code == 503


def test_list_and_filters(client: TestClient, filed: list) -> None:
    everything = client.get("/api/v1/tickets", headers=AUTH).json()
    assert [t["ticket_no"] for t in everything] == list(reversed(filed))
    assert set(everything[0]) == {
        "attachments",
        "location",
        "ticket_no",
        "category",
        "status",
        "priority",
        "department",
        "details",
        "conversation_id",
        "channel",
        "created_at",
        "due_at",
        "first_contact_due_at",
        "first_contacted_at",
    }

    def numbers(**params) -> list:
        response = client.get("/api/v1/tickets", headers=AUTH, params=params)
        assert response.status_code == 200
        return [t["ticket_no"] for t in response.json()]

    assert numbers(conversation_id="conv-1") == [filed[1], filed[0]]
    assert numbers(category="complaint") == [filed[1]]
    assert numbers(phone="13812345678") == [filed[0]]
    assert numbers(status="new", conversation_id="conv-2") == [filed[2]]
    assert numbers(status="closed") == []
    assert numbers(limit=1) == [filed[2]]
    assert client.get("/api/v1/tickets?status=done", headers=AUTH).status_code == 422


def test_get_one_with_history_and_404(client: TestClient, filed: list) -> None:
    response = client.get(f"/api/v1/tickets/{filed[0].lower()}", headers=AUTH)
    assert response.status_code == 200
    data = response.json()
    assert data["ticket_no"] == filed[0] and data["details"] == FAULT
    assert data["created_at"] == "2026-11-27T17:30:00+08:00"
    assert data["due_at"] == "2026-11-27T18:15:00+08:00"  # 龙湖区: urban, 45 minutes
    assert [h["action"] for h in data["history"]] == ["created"]
    missing = client.get("/api/v1/tickets/GD20990101000009", headers=AUTH)
    assert missing.status_code == 404
    assert "工单不存在" in missing.json()["detail"] and "not found" in missing.json()["detail"]


def test_patch_changes_status_and_keeps_history(client: TestClient, filed: list) -> None:
    url = f"/api/v1/tickets/{filed[0]}"
    response = client.patch(url, headers=AUTH, json={"status": "assigned", "assignee": "抢修一班"})
    assert response.status_code == 200 and response.json()["status"] == "assigned"
    response = client.patch(url, headers=AUTH, json={"status": "resolved", "note": "已更换保险丝"})
    data = response.json()
    assert data["status"] == "resolved" and data["assignee"] == "抢修一班"
    assert [(h["actor"], h["action"]) for h in data["history"]] == [
        ("bot", "created"),
        ("api", "status"),
        ("api", "assigned"),
        ("api", "status"),
        ("api", "note"),
    ]
    assert data["history"][-1]["note"] == "已更换保险丝"
    # the change is committed: another request sees it
    assert (
        client.get("/api/v1/tickets?status=resolved", headers=AUTH).json()[0]["ticket_no"]
        == filed[0]
    )


@pytest.mark.parametrize(
    "body", [{"status": "done"}, {}, {"priority": "urgent"}, {"status": 3}], ids=str
)
def test_patch_rejects_bad_bodies(client: TestClient, filed: list, body: dict) -> None:
    response = client.patch(f"/api/v1/tickets/{filed[0]}", headers=AUTH, json=body)
    assert response.status_code == 422
    history = client.get(f"/api/v1/tickets/{filed[0]}", headers=AUTH).json()["history"]
    assert len(history) == 1


def test_a_closed_ticket_cannot_be_reopened_through_the_api(
    client: TestClient, filed: list
) -> None:
    url = f"/api/v1/tickets/{filed[0]}"
    assert client.patch(url, headers=AUTH, json={"status": "closed"}).status_code == 200
    response = client.patch(url, headers=AUTH, json={"status": "new"})
    assert response.status_code == 409 and "不能改为" in response.json()["detail"]
    ticket = client.get(url, headers=AUTH).json()
    assert ticket["status"] == "closed" and len(ticket["history"]) == 2


def test_patch_unknown_ticket(client: TestClient) -> None:
    response = client.patch(
        "/api/v1/tickets/GD20990101000009", headers=AUTH, json={"status": "closed"}
    )
    assert response.status_code == 404


def test_handoffs(client: TestClient, filed: list) -> None:
    waiting = client.get("/api/v1/handoffs", headers=AUTH, params={"status": "waiting"}).json()
    assert [(h["conversation_id"], h["queue_position"]) for h in waiting] == [
        ("conv-3", 1),
        ("conv-1", 2),
    ]
    assert set(waiting[0]) >= {
        "conversation_id",
        "channel",
        "reason",
        "status",
        "priority",
        "queue_position",
        "agent",
        "created_at",
    }
    assert waiting[0]["reason"] == "emergency" and waiting[0]["channel"] == "wechat"
    one = client.get("/api/v1/handoffs", headers=AUTH, params={"conversation_id": "conv-1"}).json()
    assert [h["reason"] for h in one] == ["complaint"]
    assert client.get("/api/v1/handoffs?status=closed", headers=AUTH).json() == []
    assert client.get("/api/v1/handoffs?status=gone", headers=AUTH).status_code == 422


def test_dead_letters_need_the_token_and_list_the_records_with_their_payload(
    client: TestClient, db_url: str
) -> None:
    from bot.core import dead_letters

    update = {"update_id": 810001, "message": {"text": "我家停电了", "chat": {"id": 555001}}}
    dead_letters.record(
        "telegram_poll", 810001, attempts=5, error="HTTP 500", payload=update, url=db_url
    )
    dead_letters.record("other", "x-1", attempts=2, error="timeout", payload={}, url=db_url)
    assert client.get("/api/v1/dead-letters").status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert client.get("/api/v1/dead-letters", headers=wrong).status_code == 401
    everything = client.get("/api/v1/dead-letters", headers=AUTH).json()
    assert [(d["source"], d["key"]) for d in everything] == [
        ("other", "x-1"),
        ("telegram_poll", "810001"),
    ]
    [letter] = client.get(
        "/api/v1/dead-letters", headers=AUTH, params={"source": "telegram_poll"}
    ).json()
    assert set(letter) == {"id", "created_at", "source", "key", "attempts", "last_error", "payload"}
    assert (letter["attempts"], letter["last_error"], letter["payload"]) == (5, "HTTP 500", update)
    assert letter["created_at"].endswith("+08:00")  # local time, like every API time
    assert len(client.get("/api/v1/dead-letters?limit=1", headers=AUTH).json()) == 1
    assert client.get("/api/v1/dead-letters?limit=0", headers=AUTH).status_code == 422
