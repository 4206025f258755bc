"""Metrics and health (bot/core/metrics.py): every process's `/metrics` parses as Prometheus
text, each counter moves after the event it counts, the database figures are read at scrape
time, and `/healthz` names a dependency that is down."""

from __future__ import annotations

import asyncio
import threading
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, AsyncIterator, Dict, Iterator, List

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from rasa.core.channels.channel import UserMessage, register
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa_sdk import Action
from sanic import Sanic
from sqlalchemy import create_engine

from actions.handoff import ActionFallback
from bot.console.app import create_app
from bot.core import metrics
from bot.core.catalog import load_catalog
from bot.core.db import session_scope
from bot.core.handoff.repository import HandoffRepository
from bot.core.notifications.models import Notification
from bot.core.settings import load_settings, reset_settings
from bot.core.tickets.repository import TicketRepository
from bot.plugins.channels.rest import IntakeRestInput
from bot.plugins.metrics import MetricsInput, action_health_url

CLOSED_PORT_DB = "postgresql://intake@127.0.0.1:1/intake"  # nothing listens on port 1
FAULT = {"address": "龙湖区长平路88号", "phone": "13812345678", "description": "跳闸"}


def samples(text: str) -> Dict[tuple, float]:
    """Every sample of a Prometheus text exposition: (name, sorted labels) → value. Parsing
    it with prometheus_client's own parser is the test that it is valid."""
    found: Dict[tuple, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def local() -> str:
    return metrics.exposition()[0].decode()


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)


@asynccontextmanager
async def sanic_client(app: Sanic) -> AsyncIterator[httpx.AsyncClient]:
    await app._startup()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://server"
    ) as client:
        yield client


# --------------------------------------------------------------------------- the core


def test_the_exposition_parses_and_names_every_counter() -> None:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {
        "intake_messages",
        "intake_reply_seconds",
        "intake_turn_errors",
        "intake_busy_replies",
        "intake_fallbacks",
        "intake_action_errors",
        "process_resident_memory_bytes",
    } <= names
    # Series of every channel exist from the start (at 0), so increase() alerts work at once.
    assert ("intake_messages_total", (("channel", "telegram"),)) in samples(body.decode())


def test_measured_turn_counts_the_message_its_time_and_a_failure() -> None:
    before = local()
    with metrics.measured_turn("wechat"):
        pass
    with pytest.raises(RuntimeError), metrics.measured_turn("wechat"):
        raise RuntimeError("a bug")
    after = local()
    for name in ("intake_messages_total", "intake_reply_seconds_count"):
        assert value(after, name, channel="wechat") == value(before, name, channel="wechat") + 2
    assert value(after, "intake_turn_errors_total", channel="wechat") == (
        value(before, "intake_turn_errors_total", channel="wechat") + 1
    )


def test_labels_never_carry_personal_data() -> None:
    assert metrics.channel_label("tg-13812345678") == "other"
    assert metrics.channel_label(None) == "other"
    assert metrics.action_label("action_fallback") == "action_fallback"
    for unsafe in ("13812345678", "张三", "action with spaces", None, "a" * 100):
        assert metrics.action_label(unsafe) == "unknown"


def test_health_required_optional_and_hanging_dependencies() -> None:
    def down() -> None:
        raise ConnectionError("refused")

    hang = threading.Event()
    status, body = metrics.health(
        [metrics.Dependency("database", lambda: None), metrics.Dependency("rasa", down, False)]
    )
    assert (status, body) == (
        200,
        {"status": "degraded", "depends_on": {"database": "up", "rasa": "down"}},
    )
    status, body = metrics.health(
        [metrics.Dependency("database", lambda: hang.wait(5))], timeout_s=0.2
    )
    hang.set()
    assert (status, body) == (503, {"status": "unavailable", "depends_on": {"database": "down"}})
    assert metrics.health([]) == (200, {"status": "ok", "depends_on": {}})


def test_a_closed_database_port_is_down() -> None:
    status, body = metrics.health([metrics.database_dependency(CLOSED_PORT_DB)])
    assert status == 503 and body["depends_on"] == {"database": "down"}


def test_the_database_figures_are_read_at_scrape_time(
    sqlite_url: str, clock_at: Any, now: Any
) -> None:
    def scrape() -> str:
        collector = metrics.DatabaseCollector(sqlite_url, clock=clock_at(now))
        return metrics.exposition([collector])[0].decode()

    empty = scrape()
    assert value(empty, "intake_database_up") == 1
    assert value(empty, "intake_handoffs_total", reason="fallback") == 0
    assert value(empty, "intake_handoffs_open", status="waiting") == 0
    with session_scope(sqlite_url) as session:
        tickets = TicketRepository(session, clock=clock_at(now))
        ticket, _ = tickets.create("fault_repair", FAULT, "conv-1", "rest")
        tickets.create("suggestion", {"description": "希望延长营业时间"}, "conv-2", "wechat")
        handoffs = HandoffRepository(session, clock=clock_at(now - timedelta(minutes=7)))
        handoffs.open("conv-3", "rest", "fallback", "normal", {})
        for state, attempts in (("pending", 0), ("pending", 1), ("sent", 1), ("failed", 3)):
            session.add(
                Notification(
                    ticket_id=ticket.id,
                    conversation_id="conv-1",
                    channel="rest",
                    kind="ticket_status",
                    ticket_status="assigned",
                    text="您的工单已受理",
                    state=state,
                    attempts=attempts,
                    next_attempt_at=now.replace(tzinfo=None) - timedelta(minutes=1),
                    created_at=now.replace(tzinfo=None),
                )
            )
    text = scrape()
    assert value(text, "intake_tickets_total", category="fault_repair") == 1
    assert value(text, "intake_tickets_total", category="suggestion") == 1
    assert value(text, "intake_handoffs_total", reason="fallback") == 1
    assert value(text, "intake_handoffs_open", status="waiting") == 1
    assert value(text, "intake_handoff_oldest_wait_seconds") == 7 * 60
    assert value(text, "intake_notices_total", outcome="sent") == 1
    assert value(text, "intake_notices_total", outcome="failed") == 1
    assert value(text, "intake_notices_due") == 2
    assert value(text, "intake_notices_retrying") == 1
    assert value(text, "intake_notices_pending") == 2
    assert "13812345678" not in text and "conv-" not in text


def test_a_database_that_does_not_answer_gives_database_up_0_not_a_failed_scrape() -> None:
    text = metrics.exposition([metrics.DatabaseCollector(CLOSED_PORT_DB)])[0].decode()
    assert value(text, "intake_database_up") == 0
    assert "intake_tickets_total" not in text


# --------------------------------------------------------------------------- Rasa server


class SilentAssistant:
    """Rasa when the action server is down: the message is taken, nothing is said."""

    async def __call__(self, message: UserMessage) -> None:
        return None


class Assistant:
    async def __call__(self, message: UserMessage) -> None:
        await message.output_channel.send_text_message(message.sender_id, "您好")


def rasa_app(agent: Any = None) -> Sanic:
    """A Sanic app with the channels registered as `rasa run` does (route /webhooks/)."""
    app = Sanic(f"rasa_metrics_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = agent
    register([MetricsInput(), IntakeRestInput()], app, route="/webhooks/")
    return app


@pytest.mark.asyncio
async def test_rest_messages_replies_and_apologies_are_counted() -> None:
    app = rasa_app()
    async with sanic_client(app) as client:
        before = (await client.get("/metrics")).text
        # The app's handler is Rasa's agent: replace it by a fake assistant per message.
        handlers: List[Any] = [Assistant(), SilentAssistant()]

        async def handle(message: UserMessage) -> None:
            await handlers.pop(0)(message)

        app.ctx.agent = SimpleNamespace(handle_message=handle)
        for text in ("你好", "13812345678"):
            answer = await client.post(
                "/webhooks/rest/webhook", json={"sender": "metrics-1", "message": text}
            )
            assert answer.status_code == 200 and answer.json()
        assert load_catalog().system_messages["busy"] == answer.json()[0]["text"]
        after = (await client.get("/metrics")).text
    assert value(after, "intake_messages_total", channel="rest") == (
        value(before, "intake_messages_total", channel="rest") + 2
    )
    assert value(after, "intake_reply_seconds_count", channel="rest") == (
        value(before, "intake_reply_seconds_count", channel="rest") + 2
    )
    assert value(after, "intake_busy_replies_total", channel="rest") == (
        value(before, "intake_busy_replies_total", channel="rest") + 1
    )
    assert "13812345678" not in after and "metrics-1" not in after


def ready_agent(tracker_store: Any) -> Any:
    return SimpleNamespace(
        is_ready=lambda: True,
        tracker_store=tracker_store,
        lock_store=InMemoryLockStore(),
        action_endpoint=None,
    )


@pytest.mark.asyncio
async def test_rasa_healthz_is_ok_with_its_stores_up() -> None:
    agent = ready_agent(FailSafeTrackerStore(InMemoryTrackerStore(Domain.empty())))
    async with sanic_client(rasa_app(agent)) as client:
        answer = await client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "depends_on": {"model": "up", "tracker_store": "up", "lock_store": "up", "database": "up"},
    }


@pytest.mark.asyncio
async def test_rasa_healthz_reports_a_tracker_store_that_is_down() -> None:
    # Rasa's SQL tracker store on a closed port, inside Rasa's fail-safe wrapper.
    sql = SimpleNamespace(
        engine=create_engine(CLOSED_PORT_DB), domain=Domain.empty(), event_broker=None
    )
    store = FailSafeTrackerStore(sql)
    agent = ready_agent(store)
    agent.action_endpoint = SimpleNamespace(url="http://127.0.0.1:1/webhook?token=secret")
    async with sanic_client(rasa_app(agent)) as client:
        answer = await client.get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unavailable"
    assert body["depends_on"]["tracker_store"] == "down"
    assert body["depends_on"]["action_server"] == "down"
    assert "secret" not in answer.text


@pytest.mark.asyncio
async def test_rasa_healthz_without_a_model_is_unavailable() -> None:
    async with sanic_client(rasa_app(None)) as client:
        answer = await client.get("/healthz")
    assert answer.status_code == 503 and answer.json()["depends_on"]["model"] == "down"


def test_the_action_health_url_drops_the_token() -> None:
    endpoint = SimpleNamespace(url="http://10.0.0.5:5055/webhook?token=secret")
    assert action_health_url(endpoint) == "http://10.0.0.5:5055/health"
    assert action_health_url(None) is None


# --------------------------------------------------------------------------- action server


class ActionMetricsTestBoom(Action):
    """An action with a bug (registered by rasa-sdk like every Action subclass)."""

    def name(self) -> str:
        return "action_metrics_test_boom"

    def run(self, dispatcher: Any, tracker: Any, domain: Any) -> List[Dict[str, Any]]:
        raise KeyError("a bug in an action")


@pytest.fixture
def action_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sanic]:
    from actions.server import create_action_app

    monkeypatch.setenv("ACTION_SERVER_TOKEN", "action-test-token")
    reset_settings()
    yield create_action_app()
    reset_settings()


def action_call(name: str) -> Dict[str, Any]:
    return {
        "next_action": name,
        "sender_id": "conv-1",
        "tracker": {"sender_id": "conv-1", "slots": {}, "latest_message": {}, "events": []},
        "domain": {},
        "version": "3.6.2",
    }


@pytest.mark.asyncio
async def test_an_action_that_raises_is_counted_by_name(action_app: Sanic) -> None:
    async with sanic_client(action_app) as client:
        before = (await client.get("/metrics")).text  # open, like /health
        answer = await client.post(
            "/webhook?token=action-test-token", json=action_call("action_metrics_test_boom")
        )
        assert answer.status_code == 500 and answer.json() == {"error": "action failed"}
        after = (await client.get("/metrics")).text
        unknown_path = await client.get("/nowhere?token=action-test-token")
    assert value(after, "intake_action_errors_total", action="action_metrics_test_boom") == (
        value(before, "intake_action_errors_total", action="action_metrics_test_boom") + 1
    )
    assert unknown_path.status_code == 404  # not an action error
    assert value(local(), "intake_action_errors_total", action="unknown") == value(
        after, "intake_action_errors_total", action="unknown"
    )


@pytest.mark.asyncio
async def test_the_action_servers_healthz_names_its_database(
    action_app: Sanic, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sanic_client(action_app) as client:
        healthy = await client.get("/healthz")
        monkeypatch.setenv("DATABASE_URL", CLOSED_PORT_DB)
        reset_settings()
        down = await client.get("/healthz")
    assert healthy.status_code == 200
    assert healthy.json() == {"status": "ok", "depends_on": {"database": "up"}}
    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "depends_on": {"database": "down"}}


def test_a_fallback_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    tracker = Tracker(
        "conv-1",
        {"stall": None},
        {"text": "啊啊啊", "intent": {"name": "nlu_fallback"}, "entities": []},
        [{"event": "user", "text": "啊啊啊", "parse_data": {"intent": {"name": "nlu_fallback"}}}],
        False,
        None,
        {},
        "action_listen",
    )
    before = value(local(), "intake_fallbacks_total")
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionFallback().run(dispatcher, tracker, {}))
    assert dispatcher.messages[0]["response"] == "utter_default"
    assert value(local(), "intake_fallbacks_total") == before + 1


# --------------------------------------------------------------------------- console


@pytest.fixture
def console(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CONSOLE_SWEEP_SECONDS", "0")
    with TestClient(create_app(load_settings())) as client:
        yield client


def test_the_consoles_metrics_count_tickets_from_the_database(
    console: TestClient, sqlite_url: str
) -> None:
    before = console.get("/metrics")
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
    with session_scope(sqlite_url) as session:
        TicketRepository(session).create("fault_repair", FAULT, "conv-9", "telegram")
    after = console.get("/metrics").text
    assert value(after, "intake_database_up") == 1
    assert value(after, "intake_tickets_total", category="fault_repair") == (
        value(before.text, "intake_tickets_total", category="fault_repair") + 1
    )


def test_the_consoles_healthz_reports_a_database_on_a_closed_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", CLOSED_PORT_DB)
    monkeypatch.setenv("CONSOLE_SWEEP_SECONDS", "0")
    with TestClient(create_app(load_settings())) as client:
        answer = client.get("/healthz")
        scrape = client.get("/metrics")
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "unavailable",
        "depends_on": {"database": "down", "rasa": "down"},
    }
    assert scrape.status_code == 200 and value(scrape.text, "intake_database_up") == 0


def test_the_consoles_healthz_sees_rasa_up(console: TestClient) -> None:
    server = _hello_server()
    try:
        console.app.state.settings = load_settings(rasa_url_override=server.url)
        answer = console.get("/healthz")
    finally:
        server.stop()
    assert answer.json() == {"status": "ok", "depends_on": {"database": "up", "rasa": "up"}}


class _Hello:
    def __init__(self, url: str, stop: Any) -> None:
        self.url, self.stop = url, stop


def _hello_server() -> _Hello:
    """Rasa's `GET /` ("Hello from Rasa"), on a free port."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"Hello from Rasa: 3.6.21")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()

    return _Hello(f"http://127.0.0.1:{httpd.server_address[1]}", stop)
