"""Agent pages and actions: queue, conversation, claim / reply / transfer / hand back / close,
the call-back sweep, tickets and the supervisor page — Rasa replaced by a recorder."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any, Dict, Iterator, List, Optional

import pytest
from fastapi.testclient import TestClient

from bot.core.db import session_scope
from bot.core.handoff import service as handover
from bot.core.handoff.repository import HandoffRepository
from bot.core.rasa_api import RasaClient
from bot.core.settings import load_settings
from bot.core.tickets.repository import TicketRepository
from tests.unit.console_helpers import make_client, sign_in

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class RasaRecorder:
    """Stands in for Rasa's HTTP API: records calls, serves a fixed transcript."""

    def __init__(self) -> None:
        self.calls: List[tuple] = []
        self.events: List[Dict[str, Any]] = [
            {
                "event": "user",
                "text": XSS,
                "timestamp": 1.0,
                "parse_data": {"intent": {"name": "request_human", "confidence": 0.97}},
            },
            {"event": "bot", "text": "正在为您转接人工客服", "timestamp": 2.0},
            {"event": "pause", "timestamp": 2.1},
        ]

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "RasaRecorder":
        monkeypatch.setattr(RasaClient, "events", lambda _self, conv: list(self.events))
        monkeypatch.setattr(
            RasaClient,
            "append",
            lambda _self, conv, events, channel: self.calls.append(
                ("append", conv, events, channel)
            ),
        )
        monkeypatch.setattr(
            RasaClient,
            "execute",
            lambda _self, conv, action, channel: (
                self.calls.append(("execute", conv, action, channel)) or {}
            ),
        )
        return self


@pytest.fixture
def rasa(monkeypatch: pytest.MonkeyPatch) -> RasaRecorder:
    return RasaRecorder().install(monkeypatch)


@pytest.fixture
def client(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, rasa: RasaRecorder
) -> Iterator[TestClient]:
    yield from make_client(sqlite_url, monkeypatch)


def _handoff(
    url: str,
    conversation: str = "web-abc",
    reason: str = "request_human",
    priority: str = "normal",
    details: Optional[Dict[str, Any]] = None,
) -> int:
    with session_scope(url) as session:
        handoff = HandoffRepository(session).open(
            conversation, "webchat", reason, priority, details or {"phone": "13812345678"}
        )
        return handoff.id


def test_queue_lists_emergencies_first(client: TestClient, sqlite_url: str) -> None:
    normal = _handoff(sqlite_url, "web-normal")
    urgent = _handoff(sqlite_url, "web-urgent", "emergency", "urgent")
    sign_in(client, "agent1")
    rows = client.get("/console/api/queue").json()
    assert [row["id"] for row in rows[:2]] == [urgent, normal]
    assert rows[0]["queue_position"] == 1 and rows[0]["reason_name"] == "紧急险情"
    page = client.get("/console/queue").text
    assert page.index("web-urgent") < page.index("web-normal")


def test_conversation_page_escapes_customer_text(client: TestClient, sqlite_url: str) -> None:
    handoff_id = _handoff(sqlite_url)
    sign_in(client, "agent1")
    page = client.get(f"/console/handoffs/{handoff_id}").text
    assert XSS not in page and "&lt;script&gt;" in page
    assert "request_human 0.97" in page and "13812345678" in page  # intent and details shown
    assert "script-src 'self'" in client.get("/console/queue").headers["content-security-policy"]


def test_claim_reply_hand_back(client: TestClient, sqlite_url: str, rasa: RasaRecorder) -> None:
    handoff_id = _handoff(sqlite_url)
    token = sign_in(client, "agent1")
    client.post(f"/console/handoffs/{handoff_id}/claim", data={"csrf_token": token})
    client.post(
        f"/console/handoffs/{handoff_id}/reply",
        data={"csrf_token": token, "text": "您好，我是王芳"},
    )
    ((_, conversation, events, channel),) = [c for c in rasa.calls if c[0] == "append"]
    assert (conversation, channel) == ("web-abc", "webchat")
    assert events[0]["event"] == "bot" and events[0]["text"] == "您好，我是王芳"
    assert events[0]["metadata"] == {"agent": "agent1-名"}
    client.post(f"/console/handoffs/{handoff_id}/handback", data={"csrf_token": token})

    def shape(events: List[Dict[str, Any]]) -> List[tuple]:
        return [(e["event"], e.get("name"), e["metadata"]["part"]) for e in events]

    assert shape(rasa.calls[-3][2]) == [("resume", None, "resume")]
    assert rasa.calls[-2] == ("execute", "web-abc", "rating_form", "webchat")
    assert shape(rasa.calls[-1][2]) == [("action", "action_listen", "rated")]
    with session_scope(sqlite_url) as session:
        handoff = HandoffRepository(session).get(handoff_id)
        assert (handoff.status, handoff.agent) == ("closed", "agent1")


def test_only_the_claiming_agent_replies(
    client: TestClient, sqlite_url: str, rasa: RasaRecorder
) -> None:
    handoff_id = _handoff(sqlite_url)
    with session_scope(sqlite_url) as session:
        HandoffRepository(session).claim(handoff_id, "agent2")
    token = sign_in(client, "agent1")
    response = client.post(
        f"/console/handoffs/{handoff_id}/reply",
        data={"csrf_token": token, "text": "hi"},
        follow_redirects=False,
    )
    assert "error=" in response.headers["location"] and not rasa.calls
    again = client.post(
        f"/console/handoffs/{handoff_id}/claim", data={"csrf_token": token}, follow_redirects=False
    )
    assert "error=" in again.headers["location"]


def test_transfer_to_a_colleague(client: TestClient, sqlite_url: str) -> None:
    handoff_id = _handoff(sqlite_url)
    token = sign_in(client, "agent1")
    client.post(f"/console/handoffs/{handoff_id}/claim", data={"csrf_token": token})
    client.post(
        f"/console/handoffs/{handoff_id}/transfer", data={"csrf_token": token, "to_agent": "agent2"}
    )
    with session_scope(sqlite_url) as session:
        handoff = HandoffRepository(session).get(handoff_id)
        assert handoff.agent == "agent2"
        assert [(m["by"], m["from"], m["to"], m["why"]) for m in handoff.moves] == [
            ("agent1", "agent1", "agent2", "坐席转接")
        ]


def test_api_agent_actions_need_the_token(
    client: TestClient, sqlite_url: str, rasa: RasaRecorder
) -> None:
    handoff_id = _handoff(sqlite_url)
    assert (
        client.post(f"/api/v1/handoffs/{handoff_id}/claim", json={"agent": "a"}).status_code == 401
    )
    auth = {"Authorization": "Bearer test-token"}
    assert (
        client.post(
            f"/api/v1/handoffs/{handoff_id}/claim", json={"agent": "api-agent"}, headers=auth
        ).json()["status"]
        == "active"
    )
    assert (
        client.post(
            f"/api/v1/handoffs/{handoff_id}/claim", json={"agent": "x"}, headers=auth
        ).status_code
        == 409
    )
    sent = client.post(
        f"/api/v1/handoffs/{handoff_id}/messages",
        json={"agent": "api-agent", "text": "马上处理"},
        headers=auth,
    )
    assert sent.status_code == 200 and rasa.calls[-1][2][0]["text"] == "马上处理"
    closed = client.post(
        f"/api/v1/handoffs/{handoff_id}/close", json={"agent": "api-agent"}, headers=auth
    )
    assert closed.json()["status"] == "closed" and [e["event"] for e in rasa.calls[-1][2]] == [
        "resume"
    ]


def test_sweep_turns_unclaimed_handoffs_into_callbacks(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, rasa: RasaRecorder, caplog
) -> None:
    caplog.set_level("DEBUG")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    old, fresh = _handoff(sqlite_url, "web-old"), _handoff(sqlite_url, "web-fresh")
    with session_scope(sqlite_url) as session:
        HandoffRepository(session).get(old).created_at -= timedelta(minutes=11)
    filed = handover.sweep_unclaimed(load_settings())
    assert len(filed) == 1
    with session_scope(sqlite_url) as session:
        repository = HandoffRepository(session)
        swept, kept = repository.get(old), repository.get(fresh)
        assert (swept.status, swept.reason, swept.ticket_no) == ("closed", "callback", filed[0])
        assert kept.status == "waiting"
        assert TicketRepository(session).get(filed[0]).category == "callback"
    ((_, conversation, events, _channel),) = rasa.calls
    assert conversation == "web-old" and events[0]["event"] == "resume"
    assert filed[0] in events[1]["text"]
    assert filed[0] in caplog.text and "13812345678" not in caplog.text  # phones masked in logs


def test_ticket_status_change_lands_in_history(client: TestClient, sqlite_url: str) -> None:
    with session_scope(sqlite_url) as session:
        ticket, _ = TicketRepository(session).create(
            "fault_repair",
            {"address": "东山路12号", "phone": "13812345678", "description": XSS},
            "web-abc",
            "webchat",
        )
        number = ticket.ticket_no
        ticket.due_at -= timedelta(days=10)  # overdue
    token = sign_in(client, "agent1")
    listing = client.get("/console/tickets?overdue=1").text
    assert number in listing and 'class="overdue"' in listing
    client.post(
        f"/console/tickets/{number}",
        data={
            "csrf_token": token,
            "status": "in_progress",
            "assignee": "agent2",
            "note": "已派抢修班",
        },
    )
    page = client.get(f"/console/tickets/{number}").text
    assert XSS not in page and "已派抢修班" in page
    with session_scope(sqlite_url) as session:
        history = TicketRepository(session).get(number).events
        assert [(e.actor, e.action) for e in history[-4:]] == [
            ("agent1", "status"),
            ("agent1", "assigned"),
            ("agent1", "note"),
            ("notifier", "notified"),
        ]  # the customer was told (tests/unit/test_notifications.py)


def test_supervisor_stats_charts_and_csv(client: TestClient, sqlite_url: str) -> None:
    handoff_id = _handoff(sqlite_url)
    with session_scope(sqlite_url) as session:
        repository = HandoffRepository(session)
        repository.claim(handoff_id, "agent1")
        repository.close(handoff_id)
        repository.record_rating("web-abc", 4)
    sign_in(client, "agent1")
    assert client.get("/console/supervisor").status_code == 403
    sign_in(client, "boss")
    assert "agent1" in client.get("/console/supervisor").text
    for name in ("department_tickets", "agent_times", "agent_ratings"):
        chart = client.get(f"/console/supervisor/charts/{name}.svg")
        assert chart.headers["content-type"].startswith("image/svg+xml") and "<svg" in chart.text
    rows = list(
        csv.DictReader(
            io.StringIO(client.get("/console/supervisor/export.csv").text.lstrip("\ufeff"))
        )
    )
    agent = next(row for row in rows if row["scope"] == "agent")
    assert (agent["name"], agent["handoffs"], agent["average_rating"]) == ("agent1", "1", "4.0")


def test_supervisor_charts_without_data_say_so_instead_of_empty_axes(client: TestClient) -> None:
    sign_in(client, "boss")
    html = client.get("/console/supervisor").text
    assert "/console/supervisor/charts/" not in html
    assert html.count('class="muted empty chart-empty"') == 3
