"""Absence (bot/core/tickets/absence.py, POST /console/absence): an absent person's open
tickets go to a named colleague or back to their department's queue, each recorded with who
and why; agents may only mark themselves; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterator, List

import pytest
from fastapi.testclient import TestClient

from bot.core.db import session_scope
from bot.core.tickets.absence import SameColleague, release_open_tickets
from bot.core.tickets.escalation import owner_label
from bot.core.tickets.repository import TicketRepository
from tests.unit.console_helpers import make_client, sign_in

FAULT = {"address": "金平区金砂路1号", "phone": "13800000001", "description": "停电"}


def tickets_of(db_url: str, clock_at, now: datetime, assignee: str, count: int) -> List[str]:
    numbers = []
    with session_scope(db_url) as session:
        repository = TicketRepository(session, clock=clock_at(now))
        for i in range(count):
            ticket, _ = repository.create(
                "fault_repair", {**FAULT, "phone": f"1390000{i:04d}"}, f"abs-{assignee}-{i}", "rest"
            )
            repository.update(ticket.ticket_no, actor="boss", assignee=assignee)
            numbers.append(str(ticket.ticket_no))
    return numbers


def moves(db_url: str, ticket_no: str) -> list:
    with session_scope(db_url) as session:
        ticket = TicketRepository(session).get(ticket_no)
        return [
            (e.actor, e.changes["assignee"], e.note)
            for e in ticket.events
            if e.action == "assigned"
        ][1:]  # after the first assignment


def test_open_tickets_go_to_the_colleague_finished_ones_stay(db_url: str, clock_at, now) -> None:
    open_one, done_one = tickets_of(db_url, clock_at, now, "agent1", 2)
    other = tickets_of(db_url, clock_at, now, "agent2", 1)[0]
    with session_scope(db_url) as session:
        repository = TicketRepository(session, clock=clock_at(now))
        repository.update(done_one, actor="agent1", status="in_progress")
        repository.update(done_one, actor="agent1", status="resolved")
        later = clock_at(now + timedelta(hours=1))
        moved = release_open_tickets(session, "agent1", "boss", "病假", "agent2", clock=later)
    assert moved == [open_one]
    assert moves(db_url, open_one) == [
        ("boss", ["agent1", "agent2"], moves(db_url, open_one)[0][2])
    ]
    note = moves(db_url, open_one)[0][2]
    assert "agent1" in note and "agent2" in note and "病假" in note and "不在岗" in note
    assert moves(db_url, done_one) == [] and moves(db_url, other) == []
    with session_scope(db_url) as session:
        repository = TicketRepository(session)
        assert repository.get(done_one).assignee == "agent1"
        assert repository.get(other).assignee == "agent2"


def test_without_a_colleague_they_go_back_to_the_queue(db_url: str, clock_at, now) -> None:
    numbers = tickets_of(db_url, clock_at, now, "crew1", 3)
    with session_scope(db_url) as session:
        assert release_open_tickets(session, "crew1", "crew1", "外出培训") == numbers
    with session_scope(db_url) as session:
        for number in numbers:
            ticket = TicketRepository(session).get(number)
            assert ticket.assignee is None and owner_label(ticket) == "抢修队列"
    assert all(moves(db_url, n)[0][:2] == ("crew1", ["crew1", None]) for n in numbers)
    assert "抢修队列" in moves(db_url, numbers[0])[0][2]
    with session_scope(db_url) as session:  # again: nothing left to move, nothing recorded
        assert release_open_tickets(session, "crew1", "crew1", "外出培训") == []
    assert all(len(moves(db_url, n)) == 1 for n in numbers)


def test_nobody_covers_for_themselves(db_url: str) -> None:
    with session_scope(db_url) as session, pytest.raises(SameColleague):
        release_open_tickets(session, "agent1", "boss", "x", "agent1")


@pytest.fixture
def client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    yield from make_client(db_url, monkeypatch)


def test_a_supervisor_marks_someone_absent(client: TestClient, db_url: str, clock_at, now) -> None:
    numbers = tickets_of(db_url, clock_at, now, "agent1", 2)
    token = sign_in(client, "boss")
    assert 'id="absence-form"' in client.get("/console/supervisor").text
    response = client.post(
        "/console/absence",
        data={"csrf_token": token, "username": "agent1", "reason": "事假", "colleague": "agent2"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and "moved=2" in response.headers["location"]
    assert 'id="absence-done">已转出2张工单<' in client.get(response.headers["location"]).text
    assert all(moves(db_url, n)[0][:2] == ("boss", ["agent1", "agent2"]) for n in numbers)
    ticket_page = client.get(f"/console/tickets/{numbers[0]}").text
    assert 'id="ticket-owner">agent2-名<' in ticket_page and "事假" in ticket_page


def test_an_agent_marks_only_themselves(client: TestClient, db_url: str, clock_at, now) -> None:
    mine = tickets_of(db_url, clock_at, now, "agent1", 1)[0]
    theirs = tickets_of(db_url, clock_at, now, "agent2", 1)[0]
    token = sign_in(client, "agent1")
    refused = client.post(
        "/console/absence",
        data={"csrf_token": token, "username": "agent2", "reason": "x"},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    no_reason = client.post(
        "/console/absence", data={"csrf_token": token, "reason": " "}, follow_redirects=False
    )
    assert no_reason.status_code == 400
    response = client.post(
        "/console/absence", data={"csrf_token": token, "reason": "身体不适"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert moves(db_url, mine)[0][:2] == ("agent1", ["agent1", None])
    assert moves(db_url, theirs) == []
