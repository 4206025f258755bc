"""Absence as state on the staff account (console_users.absent_since, absence_reason,
covered_by): set when someone is marked absent, shown in the supervisor's 「请假 / 代班」 table,
cleared by 「已返岗」; the absent agent's claimed hand-overs go to the colleague or back to the
waiting queue; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Iterator, List

import pytest
from fastapi.testclient import TestClient

from bot.core.clock import to_utc_naive
from bot.core.db import session_scope
from bot.core.handoff.repository import HandoffRepository
from bot.core.staff import ConsoleUser, list_absent
from bot.core.tickets.absence import mark_absent, mark_returned, release_claimed_handoffs
from tests.unit.console_helpers import make_client, sign_in
from tests.unit.test_absence import moves, tickets_of


def handoffs_of(db_url: str, agent: str, claimed: int, waiting: int = 0) -> List[int]:
    """`claimed` handoffs claimed by `agent` (their ids), plus `waiting` unclaimed ones."""
    ids = []
    with session_scope(db_url) as session:
        repository = HandoffRepository(session)
        for i in range(claimed + waiting):
            handoff = repository.open(f"ho-{agent}-{i}", "rest", "request_human", "normal", {})
            if i < claimed:
                repository.claim(handoff.id, agent)
                ids.append(handoff.id)
    return ids


def handoff_state(db_url: str, handoff_id: int) -> tuple:
    with session_scope(db_url) as session:
        handoff = HandoffRepository(session).get(handoff_id)
        return handoff.status, handoff.agent, handoff.claimed_at


def account(db_url: str, username: str) -> tuple:
    with session_scope(db_url) as session:
        user = session.query(ConsoleUser).filter_by(username=username).one()
        return user.absent_since, user.absence_reason, user.covered_by


@pytest.fixture
def client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    yield from make_client(db_url, monkeypatch)


def test_claimed_handoffs_go_to_the_colleague(client: TestClient, db_url: str) -> None:
    mine = handoffs_of(db_url, "agent1", 2, waiting=1)
    theirs = handoffs_of(db_url, "boss", 1)[0]
    with session_scope(db_url) as session:
        assert release_claimed_handoffs(session, "agent1", "boss", "agent2") == mine
    for handoff_id in mine:
        status, agent, claimed_at = handoff_state(db_url, handoff_id)
        assert (status, agent) == ("active", "agent2") and claimed_at is not None
    assert handoff_state(db_url, theirs)[:2] == ("active", "boss")
    with session_scope(db_url) as session:
        assert len(HandoffRepository(session).list(status="waiting")) == 1


def test_without_a_colleague_claimed_handoffs_wait_again(client: TestClient, db_url: str) -> None:
    mine = handoffs_of(db_url, "agent1", 2)
    with session_scope(db_url) as session:
        repository = HandoffRepository(session)
        repository.close(mine[1])  # closed ones are not moved
        assert release_claimed_handoffs(session, "agent1", "agent1") == [mine[0]]
    assert handoff_state(db_url, mine[0]) == ("waiting", None, None)
    assert handoff_state(db_url, mine[1])[:2] == ("closed", "agent1")
    with session_scope(db_url) as session:
        repository = HandoffRepository(session)
        assert repository.queue_position(repository.get(mine[0])) == 1
        repository.claim(mine[0], "agent2")  # the queue can take it again
    assert handoff_state(db_url, mine[0])[:2] == ("active", "agent2")


def test_mark_absent_stores_the_state_and_returning_clears_it(
    client: TestClient, db_url: str, clock_at, now: datetime
) -> None:
    numbers = tickets_of(db_url, clock_at, now, "agent1", 1)
    handoff = handoffs_of(db_url, "agent1", 1)[0]
    with session_scope(db_url) as session:
        released = mark_absent(session, "agent1", "boss", "病假", "agent2", clock=clock_at(now))
    assert released.tickets == numbers and released.handoffs == [handoff]
    assert account(db_url, "agent1") == (to_utc_naive(now), "病假", "agent2")
    assert account(db_url, "agent2") == (None, None, None)
    with session_scope(db_url) as session:
        assert [u.username for u in list_absent(session)] == ["agent1"]
        assert mark_returned(session, "agent1") is True
    assert account(db_url, "agent1") == (None, None, None)
    with session_scope(db_url) as session:
        assert list_absent(session) == [] and mark_returned(session, "agent1") is False


def test_the_supervisor_sees_who_covers_for_whom(
    client: TestClient, db_url: str, clock_at, now: datetime
) -> None:
    numbers = tickets_of(db_url, clock_at, now, "agent1", 1)
    handoff = handoffs_of(db_url, "agent1", 1)[0]
    token = sign_in(client, "boss")
    assert 'id="no-absences"' in client.get("/console/supervisor").text
    response = client.post(
        "/console/absence",
        data={"csrf_token": token, "username": "agent1", "reason": "事假", "colleague": "agent2"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "moved=1" in response.headers["location"]
    assert "handoffs=1" in response.headers["location"]
    client.post(
        "/console/absence",
        data={"csrf_token": token, "username": "agent2", "reason": "外出培训"},
        follow_redirects=False,
    )
    page = client.get(response.headers["location"]).text
    assert 'id="absence-done-handoffs">，1个已接手的转人工会话<' in page
    assert "请假 / 代班" in page and 'id="absence-table"' in page
    row = page.split('id="absent-agent1"')[1].split("</tr>")[0]
    assert "事假" in row and 'class="absent-cover">agent2-名<' in row and "已返岗" in row
    assert re.search(r'class="absent-since">\d{4}-\d\d-\d\d \d\d:\d\d<', row)
    other = page.split('id="absent-agent2"')[1].split("</tr>")[0]
    assert "外出培训" in other and "退回队列" in other
    assert moves(db_url, numbers[0])[0][:2] == ("boss", ["agent1", "agent2"])
    # agent2 was absent too, without a colleague: the handover agent1 left goes to the queue
    assert handoff_state(db_url, handoff) == ("waiting", None, None)

    back = client.post(
        "/console/absence/return",
        data={"csrf_token": token, "username": "agent1"},
        follow_redirects=False,
    )
    assert back.status_code == 303 and "returned=1" in back.headers["location"]
    page = client.get(back.headers["location"]).text
    assert 'id="absence-returned"' in page
    assert 'id="absent-agent1"' not in page and 'id="absent-agent2"' in page
    assert account(db_url, "agent1") == (None, None, None)


def test_an_agent_marks_and_clears_only_themselves(client: TestClient, db_url: str) -> None:
    handoff = handoffs_of(db_url, "agent1", 1)[0]
    token = sign_in(client, "agent1")
    queue = client.get("/console/queue").text
    form = queue.split('id="self-absence"')[1].split("</form>")[0]
    assert 'action="/console/absence"' in form and 'name="reason"' in form
    assert 'name="username"' not in form  # only for themselves
    for path, data in (
        ("/console/absence", {"username": "agent2", "reason": "x"}),
        ("/console/absence/return", {"username": "agent2"}),
    ):
        refused = client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)
        assert refused.status_code == 403
    assert account(db_url, "agent2") == (None, None, None)
    response = client.post(
        "/console/absence", data={"csrf_token": token, "reason": "身体不适"}, follow_redirects=False
    )
    assert response.status_code == 303 and "handoffs=1" in response.headers["location"]
    since, reason, covered_by = account(db_url, "agent1")
    assert since is not None and (reason, covered_by) == ("身体不适", None)
    assert handoff_state(db_url, handoff) == ("waiting", None, None)
    back = client.post(
        "/console/absence/return", data={"csrf_token": token}, follow_redirects=False
    )
    assert back.status_code == 303
    assert account(db_url, "agent1") == (None, None, None)


def test_trainers_cannot_mark_absence(client: TestClient, db_url: str) -> None:
    token = sign_in(client, "trainer1")
    for path in ("/console/absence", "/console/absence/return"):
        response = client.post(
            path, data={"csrf_token": token, "reason": "x"}, follow_redirects=False
        )
        assert response.status_code == 403
    assert account(db_url, "trainer1") == (None, None, None)


def test_every_move_of_a_handoff_is_recorded_and_shown(client: TestClient, db_url: str) -> None:
    """Absences and transfers: who moved the conversation, from whom, to whom, why."""
    first, second = handoffs_of(db_url, "agent1", 2)
    with session_scope(db_url) as session:
        mark_absent(session, "agent1", "boss", "病假", colleague="agent2")
    with session_scope(db_url) as session:
        mark_absent(session, "agent2", "agent2", "外出抢修现场")  # back to the queue
    with session_scope(db_url) as session:
        moves = HandoffRepository(session).get(first).moves
    assert [(m["by"], m["from"], m["to"], m["why"]) for m in moves] == [
        ("boss", "agent1", "agent2", "agent1不在岗（病假）"),
        ("agent2", "agent2", None, "agent2不在岗（外出抢修现场）"),
    ]
    sign_in(client, "boss")
    page = client.get(f"/console/handoffs/{second}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    listed = re.findall(r"<li>.*?</li>", page.text.split('id="moves"')[1].split("</ol>")[0], re.S)
    assert len(listed) == 2
    assert "agent1 → agent2：agent1不在岗（病假）（操作人 boss）" in listed[0]
    assert "agent2 → 退回排队：agent2不在岗（外出抢修现场）（操作人 agent2）" in listed[1]


def test_an_absent_colleague_cannot_cover(client: TestClient, db_url: str) -> None:
    from bot.core.tickets.absence import ColleagueAbsent

    with session_scope(db_url) as session:
        mark_absent(session, "agent2", "boss", "年假")
    with pytest.raises(ColleagueAbsent):
        with session_scope(db_url) as session:
            mark_absent(session, "agent1", "boss", "病假", colleague="agent2")
    assert account(db_url, "agent1") == (None, None, None)  # nothing half-done
    csrf = sign_in(client, "boss")
    page = client.get("/console/supervisor", headers={"Accept": "text/html"}).text
    form = page.split('name="colleague"')[1].split("</select>")[0]
    assert 'value="agent1"' in form and 'value="agent2"' not in form  # not offered
    refused = client.post(
        "/console/absence",
        data={"username": "agent1", "reason": "病假", "colleague": "agent2", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert refused.status_code == 400 and "在岗的同事" in refused.json()["detail"]
    assert account(db_url, "agent1") == (None, None, None)
