"""Ticket notifications: the outbox written with a status change, delivery, retries, records.

Delivery goes through a real HTTP round trip to a small fake of Rasa's tracker-events
endpoint (what the console calls); the channels behind Rasa are covered end to end in
tests/e2e/test_notifications_e2e.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.core.catalog import load_catalog, parse_catalog
from bot.core.clock import utc_now
from bot.core.db import session_scope
from bot.core.handoff import service as handover
from bot.core.handoff.repository import HandoffRepository
from bot.core.notifications.delivery import NoticeDelivery, RetryPolicy, push_problem, rasa_sender
from bot.core.notifications.models import Notification
from bot.core.notifications.outbox import enqueue_notice, list_notices
from bot.core.settings import get_settings, load_settings
from bot.core.tickets.repository import TicketRepository
from tests.fakes.json_server import Request, json_server
from tests.unit.console_helpers import make_client, sign_in

FAULT = {"address": "潮南区峡山街道东山路12号", "phone": "13812345678", "description": "整栋楼停电"}
POLICY = RetryPolicy(retry_after_s=(30, 120))  # three attempts in all


# ------------------------------------------------------------------ a fake of Rasa's HTTP API
class FakeRasa:
    """Rasa's tracker API as the console uses it: GET …/tracker (the events appended so far),
    POST …/tracker/events (recorded), POST …/execute (recorded, adds the action's event).

    Fails while `failures` > 0; while `lost_answers` > 0 it stores the events but answers 500,
    as when the answer (not the call) is lost."""

    def __init__(self) -> None:
        self.appended: List[Dict[str, Any]] = []
        self.executed: List[Dict[str, Any]] = []
        self.trackers: Dict[str, List[Dict[str, Any]]] = {}
        self.failures = 0
        self.lost_answers = 0
        self.url = ""

    def handle(self, request: Request) -> Tuple[int, Any]:
        prefix = "/conversations/"
        if not request.path.startswith(prefix):
            return 404, {"message": "not found"}
        conversation, _, tail = request.path[len(prefix) :].partition("/")
        conversation = unquote(conversation)
        if self.failures > 0:
            self.failures -= 1
            return 500, {
                "status": "failure",
                "reason": "ConversationError",
                "message": "An unexpected error occurred. Error: Bad Gateway",
            }
        tracker = self.trackers.setdefault(conversation, [])
        if request.method == "GET" and tail == "tracker":
            return 200, {"sender_id": conversation, "events": list(tracker)}
        query = {k: v[0] for k, v in request.query.items()}
        if request.method == "POST" and tail == "tracker/events":
            events = json.loads(request.body)
            self.appended.append(
                {"conversation_id": conversation, "query": query, "events": events}
            )
            tracker.extend(events)
        elif request.method == "POST" and tail == "execute":
            name = json.loads(request.body)["name"]
            self.executed.append({"conversation_id": conversation, "query": query, "name": name})
            tracker.append({"event": "action", "name": name})
        else:
            return 404, {"message": "not found"}
        if self.lost_answers > 0:
            self.lost_answers -= 1
            return 500, {"message": "the answer was lost"}
        return 200, {"events": []}


@pytest.fixture
def fake_rasa(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRasa]:
    fake = FakeRasa()
    with json_server(fake.handle) as url:
        fake.url = url
        monkeypatch.setenv("RASA_URL", url)
        monkeypatch.setenv("RASA_TOKEN", "rasa-secret-token")
        for name in (
            "TELEGRAM_BOT_TOKEN",
            "TELEGRAM_WEBHOOK_SECRET",
            "WECHAT_TOKEN",
            "WECHAT_APP_ID",
            "WECHAT_APP_SECRET",
        ):
            monkeypatch.delenv(name, raising=False)
        yield fake


# ------------------------------------------------------------------ helpers
class Clock:
    """A clock the test moves forward."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


def file_ticket(
    url: str, clock: Clock, conversation: Optional[str] = "web-abc123", channel: str = "webchat"
) -> str:
    with session_scope(url) as session:
        ticket, _ = TicketRepository(session, clock=clock).create(
            "fault_repair", FAULT, conversation, channel
        )
        return ticket.ticket_no


def change_status(url: str, clock: Clock, ticket_no: str, status: str, **changes: Any) -> None:
    with session_scope(url) as session:
        TicketRepository(session, clock=clock).update(ticket_no, "staff1", status=status, **changes)


def notices(url: str) -> List[Notification]:
    with session_scope(url) as session:
        return list(reversed(list_notices(session)))


def history(url: str, ticket_no: str) -> List[tuple]:
    with session_scope(url) as session:
        ticket = TicketRepository(session).get(ticket_no)
        return [(event.actor, event.action, event.note) for event in ticket.events]


def delivery(
    url: str, clock: Clock, send: Optional[Callable[[Notification], None]] = None
) -> NoticeDelivery:
    return NoticeDelivery(load_settings(), send=send, clock=clock, policy=POLICY)


# ------------------------------------------------------------------ the outbox
def test_an_announced_status_owes_the_customer_a_notice(
    db_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    ticket_no = file_ticket(db_url, clock)
    change_status(db_url, clock, ticket_no, "resolved")
    [notice] = notices(db_url)
    assert notice.state == "pending" and notice.attempts == 0
    assert (notice.conversation_id, notice.channel, notice.ticket_status) == (
        "web-abc123",
        "webchat",
        "resolved",
    )
    assert notice.text == f"您的故障报修工单{ticket_no}已处理完毕。如还有问题，直接回复这里就行。"


def test_quiet_changes_owe_nothing(db_url: str, clock: Clock) -> None:
    ticket_no = file_ticket(db_url, clock)
    with session_scope(db_url) as session:
        TicketRepository(session, clock=clock).update(
            ticket_no, "staff1", assignee="agent1", note="已联系片区"
        )
    change_status(db_url, clock, ticket_no, "closed")  # closed is not announced
    orphan = file_ticket(db_url, clock, conversation=None)  # filed without a conversation
    change_status(db_url, clock, orphan, "resolved")
    assert notices(db_url) == []


def test_a_rolled_back_change_leaves_no_notice(db_url: str, clock: Clock) -> None:
    ticket_no = file_ticket(db_url, clock)
    with pytest.raises(RuntimeError):
        with session_scope(db_url) as session:
            TicketRepository(session, clock=clock).update(ticket_no, "staff1", status="resolved")
            raise RuntimeError("the request failed after the update")
    assert notices(db_url) == []


def test_a_newer_status_supersedes_an_unsent_notice(db_url: str, clock: Clock) -> None:
    ticket_no = file_ticket(db_url, clock)
    change_status(db_url, clock, ticket_no, "assigned")
    change_status(db_url, clock, ticket_no, "resolved")
    assert [(n.ticket_status, n.state) for n in notices(db_url)] == [
        ("assigned", "superseded"),
        ("resolved", "pending"),
    ]


def test_every_announced_status_and_placeholder_is_checked_when_the_catalog_loads() -> None:
    catalog = load_catalog()
    assert set(catalog.ticket_notifications) <= set(catalog.statuses)
    raw_ok = {"fields": {}, "services": {}, "statuses": {"resolved": "已处理完毕"}}
    with pytest.raises(ValueError, match="unknown status"):
        parse_catalog({**raw_ok, "ticket_notifications": {"done": "工单{ticket_no}好了"}})
    with pytest.raises(ValueError, match="bad placeholder"):
        parse_catalog({**raw_ok, "ticket_notifications": {"resolved": "工单{number}好了"}})


# ------------------------------------------------------------------ delivery
def test_a_due_notice_goes_to_rasa_with_the_customers_channel(
    sqlite_url: str, clock: Clock, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    ticket_no = file_ticket(sqlite_url, clock, conversation="web-abc/123")
    change_status(sqlite_url, clock, ticket_no, "in_progress")

    report = delivery(sqlite_url, clock).deliver_due()

    [notice] = notices(sqlite_url)
    assert report.sent == [notice.id] and notice.state == "sent" and notice.attempts == 1
    [call] = fake_rasa.appended
    assert call["conversation_id"] == "web-abc/123"
    assert call["query"] == {
        "output_channel": "webchat",
        "execute_side_effects": "true",
        "token": "rasa-secret-token",
    }
    [event] = call["events"]
    assert (event["event"], event["text"]) == ("bot", notice.text)
    assert event["metadata"] == {
        "notification": notice.id,
        "part": "message",
        "kind": "ticket_status",
        "ticket_status": "in_progress",
    }
    actor, action, note = history(sqlite_url, ticket_no)[-1]
    assert (actor, action) == ("notifier", "notified") and notice.text in note
    assert not delivery(sqlite_url, clock).deliver_due()  # nothing left to send


def test_a_failed_delivery_is_recorded_and_retried_when_its_time_comes(
    sqlite_url: str, clock: Clock, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    ticket_no = file_ticket(sqlite_url, clock)
    change_status(sqlite_url, clock, ticket_no, "resolved")
    fake_rasa.failures = 1

    assert delivery(sqlite_url, clock).deliver_due().retrying
    [notice] = notices(sqlite_url)
    assert (notice.state, notice.attempts) == ("pending", 1)
    assert notice.last_error == (
        "RasaError: GET " + fake_rasa.url + "/conversations/web-abc123"
        "/tracker: HTTP 500 An unexpected error occurred. "
        "Error: Bad Gateway"
    )
    assert "rasa-secret-token" not in notice.last_error
    assert notice.next_attempt_at == notice.last_attempt_at + timedelta(seconds=30)

    clock.advance(29)
    assert not delivery(sqlite_url, clock).deliver_due()  # not yet
    clock.advance(2)
    assert delivery(sqlite_url, clock).deliver_due().sent
    [notice] = notices(sqlite_url)
    assert (notice.state, notice.attempts) == ("sent", 2)
    assert len(fake_rasa.appended) == 1
    assert "第2次尝试" in history(sqlite_url, ticket_no)[-1][2]


def test_when_the_retries_are_used_up_the_notice_fails_and_the_ticket_says_so(
    db_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    ticket_no = file_ticket(db_url, clock, conversation="tg-5550001", channel="telegram")
    change_status(db_url, clock, ticket_no, "resolved")
    tries: List[int] = []

    def blocked(notice: Notification) -> None:
        tries.append(notice.attempts)
        raise RuntimeError("Forbidden: bot was blocked by the user")

    outcomes = []
    for wait in (0, 30, 120, 7200):
        clock.advance(wait)
        report = delivery(db_url, clock, blocked).deliver_due()
        outcomes.append((report.retrying, report.failed))
    [notice] = notices(db_url)
    assert tries == [1, 2, 3]
    assert [bool(r) for r, _ in outcomes] == [True, True, False, False]
    assert outcomes[2][1] == [notice.id] and outcomes[3] == ([], [])
    assert (notice.state, notice.attempts) == ("failed", 3)
    assert notice.last_error == "RuntimeError: Forbidden: bot was blocked by the user"
    actor, action, note = history(db_url, ticket_no)[-1]
    assert (actor, action) == ("notifier", "notify_failed")
    assert "已尝试3次" in note and "请电话联系客户" in note


def test_a_notice_being_sent_is_not_taken_by_a_second_sender(
    sqlite_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    ticket_no = file_ticket(sqlite_url, clock)
    change_status(sqlite_url, clock, ticket_no, "resolved")
    [notice] = notices(sqlite_url)
    sent: List[str] = []
    second_try: List[Optional[str]] = []
    other = delivery(sqlite_url, clock, lambda n: sent.append("other"))

    def first(n: Notification) -> None:
        second_try.append(other.deliver(n.id))  # the sweep loop wakes up meanwhile
        sent.append("first")

    assert delivery(sqlite_url, clock, first).deliver(notice.id) == "sent"
    assert second_try == [None] and sent == ["first"]


def test_a_channel_without_credentials_is_a_failure_not_a_silent_success(
    sqlite_url: str, clock: Clock, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    settings = get_settings()
    assert push_problem(settings, "telegram") == "Telegram channel off: TELEGRAM_BOT_TOKEN not set"
    assert push_problem(settings, "wechat").startswith("WeChat customer-service API off")
    assert push_problem(settings, "webchat") is None
    ticket_no = file_ticket(sqlite_url, clock, conversation="wx-oAbc123", channel="wechat")
    change_status(sqlite_url, clock, ticket_no, "resolved")

    assert delivery(sqlite_url, clock).deliver_due().retrying
    [notice] = notices(sqlite_url)
    assert notice.last_error.startswith("ChannelOff: WeChat customer-service API off")
    assert fake_rasa.appended == []

    monkeypatch.setenv("WECHAT_TOKEN", "t")
    monkeypatch.setenv("WECHAT_APP_ID", "wx123")
    monkeypatch.setenv("WECHAT_APP_SECRET", "s")
    clock.advance(30)
    assert delivery(sqlite_url, clock).deliver_due().sent
    assert [c["query"]["output_channel"] for c in fake_rasa.appended] == ["wechat"]


def test_an_unclaimed_handover_resumes_the_conversation_even_if_rasa_was_down(
    sqlite_url: str, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call-back notice also resumes the paused conversation: it must not be lost."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    with session_scope(sqlite_url) as session:
        handoff = HandoffRepository(session).open(
            "web-waiting01", "webchat", "request_human", "normal", {"phone": "13812345678"}
        )
        handoff.created_at -= timedelta(minutes=30)
    fake_rasa.failures = 1

    [ticket_no] = handover.sweep_unclaimed(load_settings())

    [notice] = notices(sqlite_url)
    assert (notice.kind, notice.state, notice.attempts) == ("handoff_timeout", "pending", 1)
    assert ticket_no in notice.text and "HTTP 500" in notice.last_error
    assert fake_rasa.appended == []
    later = Clock(utc_now() + timedelta(seconds=31))
    assert delivery(sqlite_url, later).deliver_due().sent
    [call] = fake_rasa.appended
    assert call["conversation_id"] == "web-waiting01"
    assert [e["event"] for e in call["events"]] == ["resume", "bot"]
    assert call["events"][1]["text"] == notice.text
    assert not handover.sweep_unclaimed(load_settings())  # swept once


def test_a_status_change_never_supersedes_a_handover_notice(db_url: str, clock: Clock) -> None:
    ticket_no = file_ticket(db_url, clock)
    with session_scope(db_url) as session:
        ticket = TicketRepository(session).get(ticket_no)
        enqueue_notice(
            session, ticket, "handoff_timeout", "人工客服暂时没空，已为您登记回电。", clock.now
        )
    change_status(db_url, clock, ticket_no, "assigned")
    change_status(db_url, clock, ticket_no, "resolved")
    assert [(n.kind, n.ticket_status, n.state) for n in notices(db_url)] == [
        ("handoff_timeout", "new", "pending"),
        ("ticket_status", "assigned", "superseded"),
        ("ticket_status", "resolved", "pending"),
    ]


def test_retry_waits_come_from_the_service_config(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "service.yml"
    config.write_text(
        "notifications:\n  retry_after_seconds: [5, 60]\n  check_every_seconds: 2\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("INTAKE_SERVICE_CONFIG", str(config))
    policy = RetryPolicy.from_settings(load_settings())
    assert (policy.max_attempts, policy.check_every_s) == (3, 2)
    assert [policy.wait_after(n) for n in (1, 2)] == [5, 60]
    assert rasa_sender(load_settings()) is not None


# ------------------------------------------------------------------ API and console
@pytest.fixture
def client(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, fake_rasa: FakeRasa
) -> Iterator[TestClient]:
    yield from make_client(sqlite_url, monkeypatch)


def test_patch_sends_the_notice_right_after_answering(
    client: TestClient, sqlite_url: str, clock: Clock, fake_rasa: FakeRasa
) -> None:
    ticket_no = file_ticket(sqlite_url, clock)
    headers = {"Authorization": "Bearer test-token"}
    answer = client.patch(
        f"/api/v1/tickets/{ticket_no}", json={"status": "resolved"}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    [owed] = answer.json()["notifications"]
    assert (owed["state"], owed["ticket_no"], owed["channel"]) == ("pending", ticket_no, "webchat")

    # TestClient runs background tasks before it returns
    [call] = fake_rasa.appended
    assert call["events"][0]["text"] == owed["text"]
    [notice] = client.get(f"/api/v1/tickets/{ticket_no}", headers=headers).json()["notifications"]
    assert notice["state"] == "sent" and notice["sent_at"]
    assert (
        client.get("/api/v1/notifications", params={"state": "failed"}, headers=headers).json()
        == []
    )
    assert (
        client.get("/api/v1/notifications", params={"state": "bogus"}, headers=headers).status_code
        == 422
    )


def test_failed_notices_are_listed_for_follow_up(
    client: TestClient, sqlite_url: str, clock: Clock, fake_rasa: FakeRasa
) -> None:
    ticket_no = file_ticket(sqlite_url, clock)
    fake_rasa.failures = 10
    headers = {"Authorization": "Bearer test-token"}
    client.patch(f"/api/v1/tickets/{ticket_no}", json={"status": "cancelled"}, headers=headers)
    [retrying] = client.get(
        "/api/v1/notifications", params={"state": "pending"}, headers=headers
    ).json()
    assert retrying["attempts"] == 1 and "HTTP 500" in retrying["last_error"]
    assert retrying["next_attempt_at"] is not None
    with session_scope(sqlite_url) as session:
        session.execute(select(Notification)).scalar_one().state = "failed"
    [failed] = client.get(
        "/api/v1/notifications", params={"state": "failed"}, headers=headers
    ).json()
    assert failed["ticket_no"] == ticket_no and failed["text"].startswith("您的故障报修工单")


def test_console_status_change_notifies_and_shows_the_notice(
    client: TestClient, sqlite_url: str, clock: Clock, fake_rasa: FakeRasa
) -> None:
    ticket_no = file_ticket(sqlite_url, clock)
    csrf = sign_in(client, "agent1")
    response = client.post(
        f"/console/tickets/{ticket_no}",
        data={"status": "resolved", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert len(fake_rasa.appended) == 1
    page = client.get(f"/console/tickets/{ticket_no}").text
    assert "客户通知" in page and "已送达" in page and "已处理完毕" in page
    assert "notified" in page


# ------------------------------------------------------------------ effectively once, in order
def test_a_notice_whose_answer_was_lost_is_not_sent_twice(
    sqlite_url: str, clock: Clock, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rasa took the message but its answer never came back (a timeout, a lock held past the
    client's 15 s): the retry finds the notice in the tracker and does not send it again."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    ticket_no = file_ticket(sqlite_url, clock)
    change_status(sqlite_url, clock, ticket_no, "resolved")
    fake_rasa.lost_answers = 1

    first = delivery(sqlite_url, clock).deliver_due()
    clock.advance(31)
    second = delivery(sqlite_url, clock).deliver_due()

    [notice] = notices(sqlite_url)
    assert first.retrying == [notice.id] and second.sent == [notice.id]
    assert len(fake_rasa.appended) == 1  # the customer read it once
    bot_messages = [e for e in fake_rasa.trackers["web-abc123"] if e["event"] == "bot"]
    assert [m["metadata"]["notification"] for m in bot_messages] == [notice.id]


def test_a_conversations_notices_go_out_in_the_order_they_were_written(
    sqlite_url: str, clock: Clock, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    first_ticket = file_ticket(sqlite_url, clock)
    change_status(sqlite_url, clock, first_ticket, "in_progress")
    with session_scope(sqlite_url) as session:
        second, _ = TicketRepository(session, clock=clock).create(
            "meter_dispute",
            {"account_no": "0301234567", "phone": "13812345678"},
            "web-abc123",
            "webchat",
        )
        second_ticket = second.ticket_no
    change_status(sqlite_url, clock, second_ticket, "assigned")
    fake_rasa.failures = 1  # the first notice fails once…

    report = delivery(sqlite_url, clock).deliver_due()
    assert report.sent == []  # …and the second waits behind it instead of overtaking it
    clock.advance(31)
    report = delivery(sqlite_url, clock).deliver_due()

    texts = [call["events"][0]["text"] for call in fake_rasa.appended]
    assert len(texts) == 2 and first_ticket in texts[0] and second_ticket in texts[1]
    assert len(report.sent) == 2


def test_a_failed_send_does_not_overwrite_superseded(
    sqlite_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    ticket_no = file_ticket(sqlite_url, clock)
    change_status(sqlite_url, clock, ticket_no, "assigned")

    def supersede_while_sending(notice: Notification) -> None:
        change_status(sqlite_url, clock, ticket_no, "resolved")
        raise RuntimeError("channel down")

    last_try = NoticeDelivery(
        load_settings(), send=supersede_while_sending, clock=clock, policy=RetryPolicy(())
    )
    last_try.deliver_due(max_rounds=1)

    states = {n.ticket_status: n.state for n in notices(sqlite_url)}
    assert states == {"assigned": "superseded", "resolved": "pending"}


def test_a_hand_back_while_rasa_is_down_resumes_the_bot_when_rasa_returns(
    sqlite_url: str, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The close and the bot's return are one transaction: the customer is never left paused,
    and the rating form runs exactly once even when an answer is lost on the way."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    with session_scope(sqlite_url) as session:
        handoffs = HandoffRepository(session)
        handoff = handoffs.open("tg-4242", "telegram", "request_human", "normal", {})
        handoffs.claim(handoff.id, "agent1")
        handoff_id = handoff.id
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret")
    fake_rasa.failures = 1  # Rasa is down when the agent hands back

    view = handover.finish(load_settings(), handoff_id, "agent1", ask_rating=True)

    assert view.status == "closed"
    [notice] = notices(sqlite_url)
    assert (notice.kind, notice.state, notice.handoff_id) == (
        "handback_rating",
        "pending",
        handoff_id,
    )
    assert fake_rasa.appended == [] and fake_rasa.executed == []
    with pytest.raises(handover.HandoverError):  # a second hand-back is refused, nothing lost
        handover.finish(load_settings(), handoff_id, "agent1", ask_rating=True)

    fake_rasa.lost_answers = 2  # the resume and the rating form both reach Rasa, answers lost
    patient = RetryPolicy(retry_after_s=(30, 30, 30, 30))
    at = utc_now()
    for _ in range(4):
        at += timedelta(seconds=31)
        NoticeDelivery(load_settings(), clock=Clock(at), policy=patient).deliver_due()

    [notice] = notices(sqlite_url)
    assert notice.state == "sent"
    events = fake_rasa.trackers["tg-4242"]
    assert [e["event"] for e in events] == ["resume", "action", "action"]
    assert [e.get("name") for e in events[1:]] == ["rating_form", "action_listen"]
    assert len(fake_rasa.executed) == 1  # the rating question was asked once


def test_the_sweep_leaves_a_handover_an_agent_claimed_alone(
    sqlite_url: str, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    with session_scope(sqlite_url) as session:
        handoff = HandoffRepository(session).open(
            "web-late01", "webchat", "request_human", "normal", {}
        )
        handoff.created_at -= timedelta(minutes=30)
        handoff_id = handoff.id
    real_file_callback = handover._file_callback

    def agent_claims_first(settings: Any, view: Any) -> Optional[str]:
        handover.claim(load_settings(), handoff_id, "agent1")  # between the read and the convert
        return real_file_callback(settings, view)

    monkeypatch.setattr(handover, "_file_callback", agent_claims_first)
    assert handover.sweep_unclaimed(load_settings()) == []
    assert handover.get(load_settings(), handoff_id).status == "active"
    assert notices(sqlite_url) == []
    with session_scope(sqlite_url) as session:
        assert TicketRepository(session).list() == []
