"""HandoffRepository: one open handoff per conversation, queue order, claim, close, rating."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core.db import session_scope
from bot.core.handoff.repository import HandoffNotFound, HandoffRepository, HandoffStateError


def _open(
    session, clock, conversation: str, priority: str = "normal", reason: str = "request_human"
):
    return HandoffRepository(session, clock=clock).open(
        conversation, "rest", reason, priority, {"transcript": ["转人工"]}
    )


def test_queue_positions_urgent_first_then_fifo(db_url: str, clock_at, now) -> None:
    arrivals = [("a", "normal"), ("b", "normal"), ("c", "urgent"), ("d", "high"), ("e", "urgent")]
    with session_scope(db_url) as session:
        for minute, (conversation, priority) in enumerate(arrivals):
            reason = "emergency" if priority == "urgent" else "request_human"
            _open(
                session, clock_at(now + timedelta(minutes=minute)), conversation, priority, reason
            )
    with session_scope(db_url) as session:
        handoffs = HandoffRepository(session)
        positions = {h.conversation_id: handoffs.queue_position(h) for h in handoffs.list()}
        assert positions == {"c": 1, "e": 2, "d": 3, "a": 4, "b": 5}
        listed = [h.conversation_id for h in handoffs.list(status="waiting")]
        assert listed == ["c", "e", "d", "a", "b"]
        by_id = handoffs.queue_positions()
        assert [by_id[h.id] for h in handoffs.list()] == [1, 2, 3, 4, 5]


def test_same_second_arrivals_are_ordered_by_id(db_url: str, clock_at, now) -> None:
    with session_scope(db_url) as session:
        first = _open(session, clock_at(now), "a")
        second = _open(session, clock_at(now), "b")
        handoffs = HandoffRepository(session)
        assert (handoffs.queue_position(first), handoffs.queue_position(second)) == (1, 2)


def test_open_returns_the_existing_open_handoff(db_url: str, clock_at, now) -> None:
    with session_scope(db_url) as session:
        first = _open(session, clock_at(now), "a")
        _open(session, clock_at(now), "b", "high")
        again = HandoffRepository(session, clock=clock_at(now)).open(
            "a", "rest", "emergency", "urgent", {}, ticket_no="GD20261127000001"
        )
        assert again.id == first.id
        # escalated: the emergency jumps the queue
        assert (again.priority, again.reason, again.ticket_no) == (
            "urgent",
            "emergency",
            "GD20261127000001",
        )
        assert HandoffRepository(session).queue_position(again) == 1
        calmer = _open(session, clock_at(now), "a", "low")
        assert calmer.id == first.id and calmer.priority == "urgent"
        assert len(HandoffRepository(session).list(conversation_id="a")) == 1


def test_claim_close_and_rate(db_url: str, clock_at, now) -> None:
    with session_scope(db_url) as session:
        a = _open(session, clock_at(now), "a")
        b = _open(session, clock_at(now + timedelta(minutes=1)), "b")
        handoffs = HandoffRepository(session, clock=clock_at(now + timedelta(minutes=3)))
        handoffs.claim(a.id, "agent-7")
        assert (a.status, a.agent) == ("active", "agent-7")
        assert handoffs.queue_position(a) is None and handoffs.queue_position(b) == 1
        with pytest.raises(HandoffStateError):
            handoffs.claim(a.id, "agent-8")
        with pytest.raises(HandoffNotFound):
            handoffs.claim(9999, "agent-8")
        assert handoffs.record_rating("a", 5) is None  # nothing closed yet
        handoffs.close(a.id)
        with pytest.raises(HandoffStateError):  # closing twice is refused, not repeated
            handoffs.close(a.id)
        assert a.status == "closed" and a.closed_at is not None
        rated = handoffs.record_rating("a", 4)
        assert rated.id == a.id and rated.rating == 4
        with pytest.raises(ValueError):
            handoffs.record_rating("a", 6)
        # a new handoff after the first one closed is a new row
        again = _open(session, clock_at(now + timedelta(minutes=9)), "a")
        assert again.id != a.id


def test_to_dict_shape(db_url: str, clock_at, now) -> None:
    with session_scope(db_url) as session:
        handoff = _open(session, clock_at(now), "conv-9", "urgent", "emergency")
        data = HandoffRepository(session).to_dict(handoff)
    assert data == {
        "id": handoff.id,
        "conversation_id": "conv-9",
        "channel": "rest",
        "reason": "emergency",
        "status": "waiting",
        "priority": "urgent",
        "queue_position": 1,
        "agent": None,
        "created_at": "2026-11-27T17:30:00+08:00",
    }


def test_rejects_unknown_reason_and_priority(db_url: str) -> None:
    with session_scope(db_url) as session:
        handoffs = HandoffRepository(session)
        with pytest.raises(ValueError):
            handoffs.open("a", "rest", "bored", "normal", {})
        with pytest.raises(ValueError):
            handoffs.open("a", "rest", "fallback", "asap", {})


def test_waiting_since(db_url: str, clock_at, now) -> None:
    with session_scope(db_url) as session:
        _open(session, clock_at(now), "old")
        _open(session, clock_at(now + timedelta(minutes=8)), "new")
        handoffs = HandoffRepository(session, clock=clock_at(now + timedelta(minutes=11)))
        assert [h.conversation_id for h in handoffs.waiting_since(10)] == ["old"]
