"""Ticket numbers: format, per-day sequences, and uniqueness under concurrent filing."""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone
from typing import Callable, List

import pytest

from bot.core.db import session_scope
from bot.core.tickets.numbering import TICKET_NO_PATTERN, format_ticket_no, next_ticket_no
from bot.core.tickets.repository import TicketRepository

THREADS, PER_THREAD = 8, 25


def test_format() -> None:
    assert format_ticket_no(date(2026, 11, 27), 123) == "GD20261127000123"
    assert TICKET_NO_PATTERN.match("GD20261127000123")
    with pytest.raises(OverflowError):
        format_ticket_no(date(2026, 11, 27), 1_000_000)


def test_sequence_per_day(db_url: str) -> None:
    with session_scope(db_url) as session:
        first = [next_ticket_no(session, date(2026, 11, 27)) for _ in range(3)]
        other_day = next_ticket_no(session, date(2026, 11, 28))
    with session_scope(db_url) as session:
        fourth = next_ticket_no(session, date(2026, 11, 27))
    assert first == ["GD20261127000001", "GD20261127000002", "GD20261127000003"]
    assert other_day == "GD20261128000001"
    assert fourth == "GD20261127000004"


def test_rolled_back_numbers_are_reused(db_url: str) -> None:
    with pytest.raises(RuntimeError):
        with session_scope(db_url) as session:
            next_ticket_no(session, date(2026, 11, 27))
            raise RuntimeError
    with session_scope(db_url) as session:
        assert next_ticket_no(session, date(2026, 11, 27)) == "GD20261127000001"


def _run_threads(target: Callable[[int], None]) -> None:
    errors: List[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(index: int) -> None:
        try:
            start.wait()
            target(index)
        except BaseException as error:  # reported below, with the thread's failure
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def test_concurrent_filing_gives_unique_consecutive_numbers(db_url: str, clock_at) -> None:
    clock = clock_at(datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc))
    numbers: List[str] = []
    lock = threading.Lock()

    def file_tickets(index: int) -> None:
        for n in range(PER_THREAD):
            with session_scope(db_url) as session:
                ticket, created = TicketRepository(session, clock=clock).create(
                    "fault_repair",
                    {
                        "address": "龙湖区长平路88号",
                        "phone": "13812345678",
                        "description": f"{index}-{n}",
                    },
                    conversation_id=f"conv-{index}",
                    channel="rest",
                )
                assert created
            with lock:
                numbers.append(ticket.ticket_no)

    _run_threads(file_tickets)
    total = THREADS * PER_THREAD
    assert len(numbers) == total
    assert sorted(numbers) == [f"GD20261127{n:06d}" for n in range(1, total + 1)]


def test_concurrent_identical_requests_file_one_ticket(db_url: str, clock_at) -> None:
    clock = clock_at(datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc))
    results: List[str] = []
    lock = threading.Lock()

    def confirm(_index: int) -> None:
        with session_scope(db_url) as session:
            ticket, _ = TicketRepository(session, clock=clock).create(
                "complaint",
                {"phone": "13812345678", "description": "抄表员态度差"},
                conversation_id="same-conversation",
                channel="rest",
            )
            ticket_no = ticket.ticket_no
        with lock:
            results.append(ticket_no)

    _run_threads(confirm)
    assert len(results) == THREADS and len(set(results)) == 1
    with session_scope(db_url) as session:
        assert len(TicketRepository(session).list(conversation_id="same-conversation")) == 1
