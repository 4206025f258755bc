"""The staff ticket list (/console/tickets): pages of 50 sorted and paged in the database,
sorting, combined filters, search by ticket number or phone, Chinese priority and status
names, and polite fallbacks for bad query values — on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any, Dict, Iterator, List
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from bot.core.catalog import load_catalog
from bot.core.db import get_engine, session_scope
from bot.core.tickets.models import Ticket
from bot.core.tickets.repository import PRIORITIES, TicketRepository
from tests.unit.console_helpers import make_client, sign_in

COUNT = 120
# low, normal, high, urgent in turn (the catalog's priorities of these services)
CODES = ("suggestion", "transfer", "fault_repair", "emergency")
STATES = ("in_progress", "new", "assigned")
ROW_RE = re.compile(r'<td><a href="/console/tickets/(GD\d+)"')
NEXT_RE = re.compile(r'<a href="([^"]+)" rel="next"')
PREV_RE = re.compile(r'<a href="([^"]+)" rel="prev"')


@pytest.fixture
def client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    yield from make_client(db_url, monkeypatch)


@pytest.fixture
def seeded(db_url: str, clock_at, now: datetime) -> Dict[str, dict]:
    """120 tickets filed a minute apart (the last one newest), by ticket number: index i,
    category CODES[i % 4], status STATES[i % 3], a due time scrambled by (i * 37) % 120 hours
    (none for i == 5), phone 139 + i in 8 digits."""
    made: Dict[str, dict] = {}
    with session_scope(db_url) as session:
        for i in range(COUNT):
            at = now - timedelta(minutes=COUNT - i)
            ticket, created = TicketRepository(session, clock=clock_at(at)).create(
                CODES[i % 4],
                {"phone": f"139{i:08d}", "description": f"seeded ticket {i}"},
                f"list-{i}",
                "rest",
            )
            assert created
            ticket.status = STATES[i % 3]
            ticket.due_at = (
                None if i == 5 else now.replace(tzinfo=None) + timedelta(hours=(i * 37) % 120)
            )
            made[ticket.ticket_no] = {
                "i": i,
                "category": ticket.category,
                "priority": ticket.priority,
                "status": ticket.status,
                "created_at": ticket.created_at,
                "due_at": ticket.due_at,
            }
    return made


def numbers(html: str) -> List[str]:
    return ROW_RE.findall(html)


def newest_first(seeded: Dict[str, dict]) -> List[str]:
    return sorted(seeded, key=lambda n: seeded[n]["i"], reverse=True)


class _Text(HTMLParser):
    """The text a reader sees: character data only (no tags, attributes or option values)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: List[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def shown_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def get(client: TestClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.text


def test_pages_of_fifty_newest_first(client: TestClient, seeded: Dict[str, dict]) -> None:
    sign_in(client, "agent1")
    expected = newest_first(seeded)
    first = get(client, "/console/tickets")
    assert numbers(first) == expected[:50]
    assert "第 1 / 3 页，共 120 张" in first
    assert not PREV_RE.search(first)
    next_url = NEXT_RE.search(first)
    assert next_url and parse_qs(urlsplit(next_url.group(1)).query)["page"] == ["2"]
    second = get(client, next_url.group(1).replace("&amp;", "&"))
    assert numbers(second) == expected[50:100]
    third = get(client, "/console/tickets?page=3")
    assert numbers(third) == expected[100:]
    assert len(numbers(third)) == 20
    assert "第 3 / 3 页，共 120 张" in third
    assert PREV_RE.search(third) and not NEXT_RE.search(third)
    beyond = get(client, "/console/tickets?page=99999")
    assert numbers(beyond) == expected[100:]
    assert "第 3 / 3 页" in beyond


def test_filters_combine(client: TestClient, seeded: Dict[str, dict]) -> None:
    sign_in(client, "agent1")
    html = get(client, "/console/tickets?status=in_progress&priority=high&category=fault_repair")
    wanted = [
        n
        for n in newest_first(seeded)
        if seeded[n]["status"] == "in_progress" and seeded[n]["category"] == "fault_repair"
    ]
    assert wanted and numbers(html) == wanted
    assert f"共 {len(wanted)} 张" in html
    # fault repairs are never urgent: the filters are ANDed, not ORed
    none = get(client, "/console/tickets?priority=urgent&category=fault_repair")
    assert numbers(none) == [] and "没有符合条件的工单" in none and "共 0 张" in none
    only_status = get(client, "/console/tickets?status=assigned")
    assert {seeded[n]["status"] for n in numbers(only_status)} == {"assigned"}


def test_paging_keeps_the_filters_and_the_sort(client: TestClient, seeded: Dict[str, dict]) -> None:
    sign_in(client, "agent1")
    department = load_catalog().services["fault_repair"].department  # also the emergencies'
    first = client.get("/console/tickets", params={"department": department, "sort": "due"})
    assert "共 60 张" in first.text and "第 1 / 2 页" in first.text
    next_url = NEXT_RE.search(first.text)
    assert next_url
    query = parse_qs(urlsplit(next_url.group(1).replace("&amp;", "&")).query)
    assert query == {"department": [department], "sort": ["due"], "page": ["2"]}
    second = get(client, next_url.group(1).replace("&amp;", "&"))
    shown = numbers(first.text) + numbers(second)
    in_department = [n for n in seeded if seeded[n]["category"] in ("fault_repair", "emergency")]
    assert sorted(shown) == sorted(in_department)
    due = [seeded[n]["due_at"] for n in shown]
    assert due == sorted(due)


def test_sort_by_due_time_soonest_first(client: TestClient, seeded: Dict[str, dict]) -> None:
    sign_in(client, "agent1")
    expected = sorted(
        seeded,
        key=lambda n: (
            seeded[n]["due_at"] is None,
            seeded[n]["due_at"] or datetime.min,
            -seeded[n]["i"],
        ),
    )
    assert numbers(get(client, "/console/tickets?sort=due")) == expected[:50]
    last = get(client, "/console/tickets?sort=due&page=3")
    assert numbers(last) == expected[100:]
    assert numbers(last)[-1] == next(n for n in seeded if seeded[n]["i"] == 5)  # no due time


def test_sort_by_priority_urgent_first(client: TestClient, seeded: Dict[str, dict]) -> None:
    sign_in(client, "agent1")
    expected = sorted(
        seeded, key=lambda n: (PRIORITIES.index(seeded[n]["priority"]), -seeded[n]["i"])
    )
    shown = numbers(get(client, "/console/tickets?sort=priority"))
    assert shown == expected[:50]
    assert [seeded[n]["priority"] for n in shown] == ["urgent"] * 30 + ["high"] * 20


def test_sort_by_status(client: TestClient, seeded: Dict[str, dict]) -> None:
    sign_in(client, "agent1")
    shown = numbers(get(client, "/console/tickets?sort=status"))
    assert [seeded[n]["status"] for n in shown] == ["new"] * 40 + ["assigned"] * 10


def test_search_by_ticket_number_or_phone(client: TestClient, seeded: Dict[str, dict]) -> None:
    sign_in(client, "agent1")
    number = next(n for n in seeded if seeded[n]["i"] == 42)
    assert numbers(get(client, f"/console/tickets?q={number}")) == [number]
    assert numbers(get(client, f"/console/tickets?q={number.lower()}")) == [number]
    day_prefix = number[:10]  # GD + the day: every ticket of that day
    assert len(numbers(get(client, f"/console/tickets?q={day_prefix}"))) == 50
    assert numbers(get(client, "/console/tickets?q=13900000042")) == [number]
    by_prefix = numbers(get(client, "/console/tickets?q=1390000004"))  # 40..49
    assert sorted(seeded[n]["i"] for n in by_prefix) == list(range(40, 50))
    assert numbers(get(client, "/console/tickets?q=00000042")) == []  # not a middle part
    assert numbers(get(client, "/console/tickets?q=GD%25")) == []  # % is no wildcard


def test_created_date_range(client: TestClient, seeded: Dict[str, dict]) -> None:
    sign_in(client, "agent1")  # every ticket was filed on 2026-11-27 (local)
    assert "共 120 张" in get(
        client, "/console/tickets?created_from=2026-11-27&created_to=2026-11-27"
    )
    assert "共 0 张" in get(client, "/console/tickets?created_to=2026-11-26")
    assert "共 0 张" in get(client, "/console/tickets?created_from=2026-11-28")


def test_priorities_and_statuses_read_in_chinese(
    client: TestClient, seeded: Dict[str, dict]
) -> None:
    sign_in(client, "agent1")
    catalog = load_catalog()
    priorities, statuses = catalog.labels["priorities"], catalog.statuses
    for sort in ("created", "priority"):
        text = shown_text(get(client, f"/console/tickets?sort={sort}"))
        for word in ("high", "urgent", "normal", "low", "in_progress", "assigned", "new"):
            assert not re.search(rf"\b{word}\b", text), (sort, word)
    listing = get(client, "/console/tickets?sort=priority")
    assert f'<span class="badge prio-urgent">{priorities["urgent"]}</span>' in listing
    assert f"<td>{statuses['in_progress']}</td>" in listing
    number = next(n for n in seeded if seeded[n]["priority"] == "high")
    page = get(client, f"/console/tickets/{number}")
    assert priorities["high"] in page
    assert not re.search(r"\bhigh\b", shown_text(page))


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=-3",
        "page=0",
        "page=1e5",
        "page=" + "9" * 5000,
        "sort=evil",
        "sort=created_at%20desc;drop%20table%20tickets",
        "status=bogus&priority=bogus&category=bogus&department=bogus",
        "created_from=9999-12-31&created_to=0001-01-01",
        "created_from=yesterday&created_to=2026-13-45",
        "q=%00%01",
    ],
)
def test_bad_parameters_fall_back_to_the_defaults(
    client: TestClient, seeded: Dict[str, dict], query: str
) -> None:
    sign_in(client, "agent1")
    html = get(client, f"/console/tickets?{query}")
    assert numbers(html) == newest_first(seeded)[:50]
    assert "第 1 / 3 页，共 120 张" in html


def test_one_page_is_two_queries_with_limit(
    client: TestClient, seeded: Dict[str, dict], db_url: str
) -> None:
    sign_in(client, "agent1")
    statements: List[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "FROM tickets" in statement:
            statements.append(statement)

    engine = get_engine(db_url)
    event.listen(engine, "before_cursor_execute", record)
    try:
        numbers(get(client, "/console/tickets?page=2&sort=priority"))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 2, statements
    counting, listing = statements
    assert "count(" in counting.lower()
    assert "LIMIT" in listing and "OFFSET" in listing and "ORDER BY" in listing
    with session_scope(db_url) as session:
        assert session.query(Ticket).count() == COUNT
