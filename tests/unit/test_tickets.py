"""TicketRepository: filing, idempotency, history, updates, listing and the JSON shape."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.core.db import session_scope
from bot.core.tickets.models import HistoryIsAppendOnly, TicketEvent
from bot.core.tickets.repository import (
    InvalidStatus,
    StatusNotAllowed,
    TicketNotFound,
    TicketRepository,
    request_key,
)

FAULT = {"address": "潮南区峡山街道东山路12号", "phone": "13812345678", "description": "整栋楼停电"}
NEW_CONNECTION = {
    "customer_name": "陈伟明",
    "phone": "13812345678",
    "address": "龙湖区长平路88号",
    "customer_type": "居民",
}


@pytest.fixture
def clock(clock_at, now):
    return clock_at(now)


def test_create_records_everything(db_url: str, clock) -> None:
    with session_scope(db_url) as session:
        ticket, created = TicketRepository(session, clock=clock).create(
            "fault_repair", FAULT, "conv-1", "rest"
        )
    assert created
    assert ticket.ticket_no == "GD20261127000001"
    assert (ticket.category, ticket.priority, ticket.department) == ("fault_repair", "high", "抢修")
    assert ticket.status == "new" and ticket.contact_phone == "13812345678"
    assert ticket.created_at == datetime(2026, 11, 27, 9, 30)  # naive UTC
    assert ticket.due_at == datetime(2026, 11, 27, 11, 0)  # 潮南区 is rural: 90 minutes

    with session_scope(db_url) as session:
        data = TicketRepository(session).to_dict(TicketRepository(session).get("gd20261127000001"))
    assert data == {
        "ticket_no": "GD20261127000001",
        "category": "fault_repair",
        "status": "new",
        "priority": "high",
        "department": "抢修",
        "details": FAULT,
        "conversation_id": "conv-1",
        "channel": "rest",
        "created_at": "2026-11-27T17:30:00+08:00",
        "due_at": "2026-11-27T19:00:00+08:00",
        "first_contact_due_at": None,  # only categories that promise a first contact
        "first_contacted_at": None,
    }


def test_a_complaint_promises_a_first_contact_within_24_hours(db_url: str, clock) -> None:
    with session_scope(db_url) as session:
        repository = TicketRepository(session, clock=clock)
        ticket, _ = repository.create(
            "complaint", {"phone": "13812345678", "description": "抢修员态度差"}, "conv-9", "rest"
        )
        data = TicketRepository.to_dict(ticket)
        assert data["first_contact_due_at"] == "2026-11-28T17:30:00+08:00"
        assert data["due_at"] == "2026-12-03T23:59:59+08:00"  # the answer: 4 working days
        repository.update(ticket.ticket_no, actor="bot", details={"description": "补充"})
        assert ticket.first_contacted_at is None  # the bot's own changes are no contact
        repository.update(ticket.ticket_no, actor="wangfang", status="in_progress")
        assert TicketRepository.to_dict(ticket)["first_contacted_at"] == "2026-11-27T17:30:00+08:00"


def test_working_day_due_time_and_empty_details_dropped(db_url: str, clock) -> None:
    details = dict(NEW_CONNECTION, capacity_kw=None, description="")
    with session_scope(db_url) as session:
        ticket, _ = TicketRepository(session, clock=clock).create(
            "new_connection", details, "conv-1", "wechat"
        )
        data = TicketRepository.to_dict(ticket)
    assert data["details"] == NEW_CONNECTION
    assert data["due_at"] == "2026-12-04T23:59:59+08:00"
    assert (data["department"], data["priority"], data["channel"]) == (
        "业扩报装",
        "normal",
        "wechat",
    )


def test_praise_has_no_due_time(db_url: str, clock) -> None:
    with session_scope(db_url) as session:
        ticket, _ = TicketRepository(session, clock=clock).create(
            "praise", {"description": "师傅很负责"}, "conv-1", "rest"
        )
        assert TicketRepository.to_dict(ticket)["due_at"] is None
        assert ticket.contact_phone is None


def test_same_request_twice_gives_one_ticket(db_url: str, clock) -> None:
    with session_scope(db_url) as session:
        tickets = TicketRepository(session, clock=clock)
        first, created_first = tickets.create("fault_repair", FAULT, "conv-1", "rest")
        again, created_again = tickets.create(
            "fault_repair", dict(reversed(FAULT.items())), "conv-1", "rest"
        )
    assert created_first and not created_again
    assert again.ticket_no == first.ticket_no
    with session_scope(db_url) as session:
        assert len(TicketRepository(session).list(conversation_id="conv-1")) == 1


def test_different_details_or_conversation_give_two_tickets(db_url: str, clock) -> None:
    with session_scope(db_url) as session:
        tickets = TicketRepository(session, clock=clock)
        a, _ = tickets.create("fault_repair", FAULT, "conv-1", "rest")
        b, created_b = tickets.create(
            "fault_repair", dict(FAULT, description="电压低"), "conv-1", "rest"
        )
        c, created_c = tickets.create("fault_repair", FAULT, "conv-2", "rest")
    assert created_b and created_c
    assert len({a.ticket_no, b.ticket_no, c.ticket_no}) == 3


def test_same_request_after_the_first_is_finished_files_a_new_ticket(db_url: str, clock) -> None:
    with session_scope(db_url) as session:
        tickets = TicketRepository(session, clock=clock)
        first, _ = tickets.create("fault_repair", FAULT, "conv-1", "rest")
        tickets.update(first.ticket_no, actor="agent-7", status="resolved")
        second, created = tickets.create("fault_repair", FAULT, "conv-1", "rest")
        third, created_third = tickets.create("fault_repair", FAULT, "conv-1", "rest")
    assert created and second.ticket_no != first.ticket_no
    assert not created_third and third.ticket_no == second.ticket_no


def test_request_key_is_canonical() -> None:
    assert request_key("c", "x", {"a": 1, "b": "电"}) == request_key("c", "x", {"b": "电", "a": 1})
    assert request_key("c", "x", {"a": 1}) == request_key("c", "x", {"a": 1, "b": None})
    assert request_key("c", "x", {"a": 1}) != request_key("c", "y", {"a": 1})
    assert request_key("c", "x", {"a": 1}) != request_key("d", "x", {"a": 1})


def test_unknown_category(db_url: str) -> None:
    with session_scope(db_url) as session:
        with pytest.raises(KeyError):
            TicketRepository(session).create("weather", {}, "conv-1", "rest")


def test_update_appends_history_with_actors(db_url: str, clock_at, now) -> None:
    with session_scope(db_url) as session:
        ticket, _ = TicketRepository(session, clock=clock_at(now)).create(
            "emergency", {"address": "龙湖区长平路"}, "conv-1", "rest"
        )
    later = clock_at(now + timedelta(minutes=5))
    with session_scope(db_url) as session:
        tickets = TicketRepository(session, clock=later)
        tickets.update(ticket.ticket_no, "bot", details={"phone": "13812345678"})
        tickets.update(ticket.ticket_no, "dispatcher", status="assigned", assignee="抢修一班")
        tickets.update(ticket.ticket_no, "dispatcher", status="assigned")  # no change, no entry
        tickets.update(ticket.ticket_no, "抢修一班", status="in_progress", note="已出发")
    with session_scope(db_url) as session:
        tickets = TicketRepository(session)
        data = tickets.to_dict(tickets.get(ticket.ticket_no), with_history=True)
        found = tickets.list(phone="13812345678")
    assert [t.ticket_no for t in found] == [ticket.ticket_no]
    assert data["status"] == "in_progress" and data["assignee"] == "抢修一班"
    assert data["details"] == {"address": "龙湖区长平路", "phone": "13812345678"}
    assert data["updated_at"] == "2026-11-27T17:35:00+08:00"
    history = [(h["actor"], h["action"], h["changes"], h["note"]) for h in data["history"]]
    assert history == [
        ("bot", "created", None, None),
        ("bot", "details", {"phone": [None, "13812345678"]}, None),
        ("dispatcher", "status", {"status": ["new", "assigned"]}, None),
        ("dispatcher", "assigned", {"assignee": [None, "抢修一班"]}, None),
        ("抢修一班", "status", {"status": ["assigned", "in_progress"]}, None),
        ("抢修一班", "note", None, "已出发"),
    ]
    assert data["history"][0]["at"] == "2026-11-27T17:30:00+08:00"
    assert data["history"][-1]["at"] == "2026-11-27T17:35:00+08:00"


def test_history_cannot_be_changed_or_deleted(db_url: str, clock) -> None:
    with session_scope(db_url) as session:
        ticket, _ = TicketRepository(session, clock=clock).create(
            "fault_repair", FAULT, "c", "rest"
        )
    with pytest.raises(HistoryIsAppendOnly):
        with session_scope(db_url) as session:
            event = session.get(TicketEvent, ticket.events[0].id)
            event.actor = "someone else"
    with pytest.raises(HistoryIsAppendOnly):
        with session_scope(db_url) as session:
            session.delete(session.get(TicketEvent, ticket.events[0].id))
    with session_scope(db_url) as session:
        assert session.get(TicketEvent, ticket.events[0].id).actor == "bot"


def test_invalid_status_and_unknown_ticket(db_url: str, clock) -> None:
    with session_scope(db_url) as session:
        tickets = TicketRepository(session, clock=clock)
        ticket, _ = tickets.create("fault_repair", FAULT, "c", "rest")
        with pytest.raises(InvalidStatus):
            tickets.update(ticket.ticket_no, "api", status="done")
        with pytest.raises(TicketNotFound):
            tickets.update("GD20990101000001", "api", status="closed")
        assert tickets.get("GD20990101000001") is None
        assert ticket.status == "new"


def test_a_closed_ticket_never_goes_back(db_url: str, clock) -> None:
    """The catalog's status_transitions are enforced: closed and cancelled are final, and a
    refused change leaves neither a history entry nor a notice."""
    with session_scope(db_url) as session:
        tickets = TicketRepository(session, clock=clock)
        ticket, _ = tickets.create("fault_repair", FAULT, "c", "rest")
        for status in ("assigned", "in_progress", "resolved", "in_progress", "resolved", "closed"):
            tickets.update(ticket.ticket_no, "staff1", status=status)
        entries = len(ticket.events)
        for status in ("new", "assigned", "in_progress", "resolved", "cancelled"):
            with pytest.raises(StatusNotAllowed, match="已办结"):
                tickets.update(ticket.ticket_no, "staff1", status=status)
        assert ticket.status == "closed" and len(ticket.events) == entries
        other, _ = tickets.create("fault_repair", {**FAULT, "description": "跳闸"}, "c", "rest")
        tickets.update(other.ticket_no, "staff1", status="cancelled")
        with pytest.raises(StatusNotAllowed):
            tickets.update(other.ticket_no, "staff1", status="new")


def test_list_filters_and_order(db_url: str, clock_at, now) -> None:
    with session_scope(db_url) as session:
        for minutes, (code, details, conversation) in enumerate(
            [
                ("fault_repair", FAULT, "conv-1"),
                ("new_connection", NEW_CONNECTION, "conv-1"),
                ("suggestion", {"description": "希望增加夜间营业"}, "conv-2"),
            ]
        ):
            TicketRepository(session, clock=clock_at(now + timedelta(minutes=minutes))).create(
                code, details, conversation, "rest"
            )
        tickets = TicketRepository(session)
        tickets.update("GD20261127000003", "api", status="closed")
        assert [t.ticket_no[-1] for t in tickets.list()] == ["3", "2", "1"]
        assert [t.category for t in tickets.list(conversation_id="conv-1")] == [
            "new_connection",
            "fault_repair",
        ]
        assert [t.ticket_no for t in tickets.list(status="closed")] == ["GD20261127000003"]
        assert [t.category for t in tickets.list(category="fault_repair")] == ["fault_repair"]
        assert len(tickets.list(phone="13812345678")) == 2
        assert len(tickets.list(limit=1)) == 1
        assert tickets.list(conversation_id="conv-1", status="closed") == []


def test_ticket_filed_late_in_december_is_due_in_2027(db_url: str, clock_at) -> None:
    clock = clock_at(datetime(2026, 12, 28, 2, 0, tzinfo=timezone.utc))
    with session_scope(db_url) as session:
        ticket, _ = TicketRepository(session, clock=clock).create(
            "account_closure", {"account_no": "0301234567", "phone": "13812345678"}, "c", "rest"
        )
        data = TicketRepository.to_dict(ticket)
    assert data["ticket_no"] == "GD20261228000001"
    assert data["due_at"] == "2027-01-05T23:59:59+08:00"


def test_number_uses_the_local_date(db_url: str, clock_at) -> None:
    # 2026-11-27 16:30 UTC is already 2026-11-28 00:30 in Shantou.
    clock = clock_at(datetime(2026, 11, 27, 16, 30, tzinfo=timezone.utc))
    with session_scope(db_url) as session:
        ticket, _ = TicketRepository(session, clock=clock).create(
            "fault_repair", FAULT, "c", "rest"
        )
    assert ticket.ticket_no == "GD20261128000001"


def test_an_uncontacted_complaint_past_24_hours_counts_as_first_contact_overdue(
    db_url: str, clock
) -> None:
    from datetime import timedelta

    from bot.console.supervisor import department_stats
    from bot.core.clock import to_utc_naive

    with session_scope(db_url) as session:
        repository = TicketRepository(session, clock=clock)
        ticket, _ = repository.create(
            "complaint", {"phone": "13812345678", "description": "抢修员态度差"}, "conv-9", "rest"
        )
        later = to_utc_naive(clock()) + timedelta(hours=25)
        [row] = [r for r in department_stats(session, later) if r["department"] == "客服投诉组"]
        assert (row["open"], row["first_contact_overdue"], row["overdue"]) == (1, 1, 0)
        repository.update(ticket.ticket_no, actor="lizhang", note="已电话联系客户")
        [row] = [r for r in department_stats(session, later) if r["department"] == "客服投诉组"]
        assert row["first_contact_overdue"] == 0


def test_csv_cells_cannot_become_spreadsheet_formulas() -> None:
    from bot.console.supervisor import to_csv

    stats = {
        "departments": [
            {
                "department": '=HYPERLINK("http://evil")',
                "open": 1,
                "overdue": 0,
                "first_contact_overdue": 0,
                "total": 1,
            }
        ],
        "agents": [
            {
                "agent": "@SUM(A1)",
                "handoffs": 1,
                "median_first_response_min": -3,
                "median_handling_min": None,
                "ratings": 0,
                "average_rating": None,
                "open_tickets": 0,
                "overdue_tickets": 0,
            }
        ],
    }
    text = to_csv(stats)
    assert "'=HYPERLINK" in text and "'@SUM(A1)" in text
    assert ",-3," in text  # a negative number is a number, not text
