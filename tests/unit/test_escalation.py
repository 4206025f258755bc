"""Escalation of late tickets (bot/core/tickets/escalation.py) with a controllable clock, on
SQLite and PostgreSQL: the first limit, twice the limit, restarts in between, two processes
at once; the owner of a ticket; the console's 「超时督办」 list, badges and header count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator, List

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from bot.console.sweeper import escalate_tickets
from bot.core.catalog import load_catalog
from bot.core.db import dispose_engines, session_scope
from bot.core.settings import PROJECT_ROOT, EscalationConfig, get_settings, load_settings
from bot.core.tickets.escalation import (
    ACTOR,
    Escalation,
    escalate_due,
    escalated_tickets,
    owner_label,
)
from bot.core.tickets.models import Ticket, TicketEvent
from bot.core.tickets.repository import TicketRepository
from tests.unit.console_helpers import make_client, sign_in

URBAN_FAULT = {"address": "金平区金砂路1号", "phone": "13800000001", "description": "整栋停电"}
COMPLAINT = {"phone": "13800000002", "description": "抢修太慢"}
CONFIG = get_settings().service.escalation  # config/service.yml: 1× supervisor, 2× next level


def file_ticket(db_url: str, clock_at, at: datetime, code: str, details: dict) -> str:
    with session_scope(db_url) as session:
        ticket, created = TicketRepository(session, clock=clock_at(at)).create(
            code, details, f"conv-{code}-{at.timestamp()}", "rest"
        )
        assert created
        return str(ticket.ticket_no)


def escalate(db_url: str, at: datetime) -> List[Escalation]:
    with session_scope(db_url) as session:
        return escalate_due(session, at, CONFIG)


def state(db_url: str, ticket_no: str) -> tuple:
    """(level, escalation history entries) of the ticket, read afresh."""
    with session_scope(db_url) as session:
        ticket = session.execute(select(Ticket).where(Ticket.ticket_no == ticket_no)).scalar_one()
        events = session.execute(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == "escalated")
            .order_by(TicketEvent.id)
        ).scalars()
        return ticket.escalation_level, [(e.actor, e.changes, e.note) for e in events]


def test_fault_escalates_at_its_limit_then_at_twice_it(db_url: str, clock_at, now) -> None:
    ticket_no = file_ticket(db_url, clock_at, now, "fault_repair", URBAN_FAULT)
    assert escalate(db_url, now + timedelta(minutes=44, seconds=59)) == []
    assert state(db_url, ticket_no) == (0, [])

    first = escalate(db_url, now + timedelta(minutes=45))
    assert first == [Escalation(ticket_no, 1, "抢修主管")]
    level, events = state(db_url, ticket_no)
    assert level == 1 and len(events) == 1
    actor, changes, note = events[0]
    assert actor == ACTOR and changes == {"level": [0, 1], "to": "抢修主管"}
    assert "一级督办" in note and "抢修主管" in note

    assert escalate(db_url, now + timedelta(minutes=89)) == []  # level 1 only once
    second = escalate(db_url, now + timedelta(minutes=90))
    assert [(e.level, e.to) for e in second] == [(2, CONFIG.levels[1].to)]
    level, events = state(db_url, ticket_no)
    assert level == 2 and [e[1]["level"] for e in events] == [[0, 1], [1, 2]]
    assert "二级督办" in events[1][2]
    assert escalate(db_url, now + timedelta(hours=10)) == []  # no level beyond the last
    assert len(state(db_url, ticket_no)[1]) == 2


def test_rural_fault_waits_for_its_90_minutes(db_url: str, clock_at, now) -> None:
    rural = {**URBAN_FAULT, "address": "潮阳区某村3号"}
    ticket_no = file_ticket(db_url, clock_at, now, "fault_repair", rural)
    assert escalate(db_url, now + timedelta(minutes=60)) == []
    assert [e.level for e in escalate(db_url, now + timedelta(minutes=90))] == [1]
    assert state(db_url, ticket_no)[0] == 1


def test_a_late_run_records_every_level_missed(db_url: str, clock_at, now) -> None:
    """The console was down from before the limit until past twice it: both levels, each
    with its own history entry, in order."""
    ticket_no = file_ticket(db_url, clock_at, now, "emergency", URBAN_FAULT)
    done = escalate(db_url, now + timedelta(hours=5))
    assert [e.level for e in done] == [1, 2]
    level, events = state(db_url, ticket_no)
    assert level == 2 and [e[1]["level"] for e in events] == [[0, 1], [1, 2]]


def test_complaint_escalates_on_its_first_contact(db_url: str, clock_at, now) -> None:
    late = file_ticket(db_url, clock_at, now, "complaint", COMPLAINT)
    contacted = file_ticket(
        db_url, clock_at, now, "complaint", {**COMPLAINT, "phone": "13800000003"}
    )
    with session_scope(db_url) as session:
        repository = TicketRepository(session, clock=clock_at(now + timedelta(hours=2)))
        repository.update(contacted, actor="agent1", note="已电话联系客户")
    assert escalate(db_url, now + timedelta(hours=23, minutes=59)) == []
    done = escalate(db_url, now + timedelta(hours=24))
    assert [(e.ticket_no, e.level, e.to) for e in done] == [(late, 1, "客服投诉组主管")]
    assert state(db_url, contacted) == (0, [])
    assert [e.level for e in escalate(db_url, now + timedelta(hours=48))] == [2]
    assert state(db_url, late)[0] == 2
    assert state(db_url, contacted)[0] == 0  # its 4 working days have not passed


def test_finished_tickets_never_escalate(db_url: str, clock_at, now) -> None:
    ticket_no = file_ticket(db_url, clock_at, now, "fault_repair", URBAN_FAULT)
    with session_scope(db_url) as session:
        repository = TicketRepository(session, clock=clock_at(now + timedelta(minutes=30)))
        repository.update(ticket_no, actor="crew1", status="in_progress")
        repository.update(ticket_no, actor="crew1", status="resolved")
    assert escalate(db_url, now + timedelta(hours=3)) == []
    assert state(db_url, ticket_no) == (0, [])


def test_a_ticket_resolved_after_escalation_leaves_the_list(db_url: str, clock_at, now) -> None:
    ticket_no = file_ticket(db_url, clock_at, now, "fault_repair", URBAN_FAULT)
    escalate(db_url, now + timedelta(minutes=50))
    with session_scope(db_url) as session:
        assert [r.ticket.ticket_no for r in escalated_tickets(session, now, CONFIG)] == [ticket_no]
        repository = TicketRepository(session, clock=clock_at(now + timedelta(minutes=55)))
        repository.update(ticket_no, actor="crew1", status="in_progress")
        repository.update(ticket_no, actor="crew1", status="resolved")
    assert escalate(db_url, now + timedelta(hours=3)) == []
    with session_scope(db_url) as session:
        assert escalated_tickets(session, now, CONFIG) == []
    assert state(db_url, ticket_no)[0] == 1


def test_restarts_in_between_escalate_each_level_once(db_url: str, clock_at, now) -> None:
    ticket_no = file_ticket(db_url, clock_at, now, "fault_repair", URBAN_FAULT)
    for minutes in (45, 46, 60):
        escalate(db_url, now + timedelta(minutes=minutes))
        dispose_engines(db_url)  # a restart: new connections, nothing kept in memory
    assert state(db_url, ticket_no)[0] == 1
    for minutes in (90, 91):
        escalate(db_url, now + timedelta(minutes=minutes))
        dispose_engines(db_url)
    level, events = state(db_url, ticket_no)
    assert level == 2 and len(events) == 2


def test_a_second_process_waits_and_then_finds_it_done(db_url: str, clock_at, now) -> None:
    """Process A has escalated but not committed; process B, at the same moment, blocks on
    the row (PostgreSQL) or the write lock (SQLite) and then escalates nothing."""
    ticket_no = file_ticket(db_url, clock_at, now, "fault_repair", URBAN_FAULT)
    at = now + timedelta(minutes=45)
    results: List[List[Escalation]] = []
    with session_scope(db_url) as first:
        assert [e.level for e in escalate_due(first, at, CONFIG)] == [1]
        second = threading.Thread(target=lambda: results.append(escalate(db_url, at)))
        second.start()
        time.sleep(0.5)
        assert second.is_alive(), "the second process did not wait for the first"
    second.join(timeout=30)
    assert results == [[]]
    level, events = state(db_url, ticket_no)
    assert level == 1 and len(events) == 1


def test_two_processes_at_once_escalate_once(db_url: str, clock_at, now) -> None:
    numbers = [
        file_ticket(
            db_url, clock_at, now, "fault_repair", {**URBAN_FAULT, "phone": f"1380000{i:04d}"}
        )
        for i in range(5)
    ]
    at = now + timedelta(minutes=95)
    start = threading.Barrier(2)
    results: List[List[Escalation]] = []

    def run() -> None:
        start.wait()
        results.append(escalate(db_url, at))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 2
    done = sorted((e.ticket_no, e.level) for r in results for e in r)
    assert done == sorted((n, level) for n in numbers for level in (1, 2))
    for ticket_no in numbers:
        level, events = state(db_url, ticket_no)
        assert level == 2 and [e[1]["level"] for e in events] == [[0, 1], [1, 2]]


ESCALATE_IN_A_PROCESS = """
import json, sys, time
from datetime import datetime
from pathlib import Path
from bot.core.db import session_scope
from bot.core.settings import get_settings
from bot.core.tickets.escalation import escalate_due
url, at, go = sys.argv[1], datetime.fromisoformat(sys.argv[2]), Path(sys.argv[3])
with session_scope(url) as session:  # connected and warm before the start signal
    session.connection()
while not go.exists():
    time.sleep(0.01)
with session_scope(url) as session:
    done = escalate_due(session, at, get_settings().service.escalation)
    print(json.dumps([[e.ticket_no, e.level] for e in done]))
"""


def test_two_console_processes_escalate_once(db_url: str, clock_at, now, tmp_path: Path) -> None:
    """Two OS processes (as two consoles would be) sweep the same late tickets at once."""
    numbers = [
        file_ticket(
            db_url, clock_at, now, "fault_repair", {**URBAN_FAULT, "phone": f"1390000{i:04d}"}
        )
        for i in range(5)
    ]
    at = now + timedelta(minutes=95)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", ESCALATE_IN_A_PROCESS, db_url, at.isoformat(), str(go)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(3)  # both import and connect
    go.touch()
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    done = sorted(tuple(pair) for out in outputs for pair in json.loads(out.splitlines()[-1]))
    assert done == sorted((n, level) for n in numbers for level in (1, 2))
    for ticket_no in numbers:
        level, events = state(db_url, ticket_no)
        assert level == 2 and [e[1]["level"] for e in events] == [[0, 1], [1, 2]]


def test_the_console_loop_escalates_on_the_real_clock(
    db_url: str, clock_at, now, monkeypatch
) -> None:
    ticket_no = file_ticket(db_url, clock_at, now, "fault_repair", URBAN_FAULT)  # days ago
    monkeypatch.setenv("DATABASE_URL", db_url)
    settings = load_settings()
    assert escalate_tickets(settings) == 2
    assert escalate_tickets(settings) == 0
    assert state(db_url, ticket_no)[0] == 2


def test_levels_must_grow() -> None:
    with pytest.raises(ValidationError):
        EscalationConfig.parse_obj(
            {"levels": [{"to": "a", "multiple": 2}, {"to": "b", "multiple": 1}]}
        )
    with pytest.raises(ValidationError):
        EscalationConfig.parse_obj({"levels": [{"to": "a", "multiple": 0}]})


# ---------------------------------------------------------------- the owner of a ticket


def test_owner_is_the_queue_then_a_person_with_who_and_why(db_url: str, clock_at, now) -> None:
    ticket_no = file_ticket(db_url, clock_at, now, "fault_repair", URBAN_FAULT)
    queue = load_catalog().labels["owner"]["queue"].format(department="抢修")
    with session_scope(db_url) as session:
        repository = TicketRepository(session, clock=clock_at(now + timedelta(minutes=5)))
        ticket = repository.get(ticket_no)
        assert owner_label(ticket) == queue == "抢修队列"
        repository.reassign(ticket_no, "boss", "crew1", "就近安排")
        assert owner_label(ticket, {"crew1": "张师傅"}) == "张师傅"
        repository.reassign(ticket_no, "boss", "crew1", "again")  # no change, no entry
        repository.reassign(ticket_no, "boss", None, "请假")
        assert owner_label(ticket) == queue
        moves = [e for e in ticket.events if e.action == "assigned"]
    assert [(e.actor, e.changes) for e in moves] == [
        ("boss", {"assignee": [None, "crew1"]}),
        ("boss", {"assignee": ["crew1", None]}),
    ]
    assert "抢修队列" in moves[0].note and "crew1" in moves[0].note and "就近安排" in moves[0].note
    assert "请假" in moves[1].note


# ---------------------------------------------------------------- the console


@pytest.fixture
def client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    yield from make_client(db_url, monkeypatch)


def test_supervisor_sees_the_list_badges_and_count(
    client: TestClient, db_url: str, clock_at, now
) -> None:
    late = file_ticket(db_url, clock_at, now, "fault_repair", URBAN_FAULT)
    calm = file_ticket(db_url, clock_at, now, "suggestion", {"description": "多设网点"})
    sign_in(client, "boss")
    page = client.get("/console/supervisor").text
    assert 'id="no-escalations"' in page and 'id="escalation-count"' not in page

    escalate(db_url, now + timedelta(minutes=45))
    with session_scope(db_url) as session:
        TicketRepository(session).reassign(late, "boss", "agent1", "值班安排")
    page = client.get("/console/supervisor").text
    listing = page.split('id="escalation-list"')[1].split("</table>")[0]
    assert f"/console/tickets/{late}" in listing and calm not in listing
    assert "一级督办" in listing and "抢修主管" in listing and "agent1-名" in listing
    assert 'id="escalation-count">1<' in page

    ticket_page = client.get(f"/console/tickets/{late}").text
    assert 'id="escalation-badge">一级督办<' in ticket_page
    assert 'id="ticket-owner">agent1-名<' in ticket_page
    assert "抢修主管" in ticket_page  # the history entry's note

    tickets = client.get("/console/tickets").text
    row = tickets.split(f'href="/console/tickets/{late}"')[1].split("</tr>")[0]
    assert "一级督办" in row and "agent1-名" in row
    calm_row = tickets.split(f'href="/console/tickets/{calm}"')[1].split("</tr>")[0]
    assert "督办" not in calm_row and "客服中心队列" in calm_row


def test_an_agent_sees_badges_but_not_the_list(
    client: TestClient, db_url: str, clock_at, now
) -> None:
    late = file_ticket(db_url, clock_at, now, "fault_repair", URBAN_FAULT)
    escalate(db_url, now + timedelta(minutes=90))
    sign_in(client, "agent1")
    assert client.get("/console/supervisor").status_code == 403
    ticket_page = client.get(f"/console/tickets/{late}").text
    assert 'id="escalation-badge">二级督办<' in ticket_page
    assert 'id="ticket-owner">抢修队列<' in ticket_page
    assert 'id="escalation-link"' not in ticket_page


def test_reassigning_in_the_console_records_the_reason(
    client: TestClient, db_url: str, clock_at, now
) -> None:
    ticket_no = file_ticket(db_url, clock_at, now, "fault_repair", URBAN_FAULT)
    token = sign_in(client, "boss")
    response = client.post(
        f"/console/tickets/{ticket_no}",
        data={"csrf_token": token, "assignee": "agent2", "reason": "原处理人请假"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    with session_scope(db_url) as session:
        ticket = TicketRepository(session).get(ticket_no)
        moves = [e for e in ticket.events if e.action == "assigned"]
        assert ticket.assignee == "agent2"
    assert len(moves) == 1 and moves[0].actor == "boss" and "原处理人请假" in moves[0].note
