"""The figures of the supervisor's branch comparison and of the monthly report.

The tickets of a range are those filed (created_at) in [start, end), both naive UTC. They are
read once and aggregated in Python: a month of one bureau's tickets is a few thousand rows, and
the same code then runs on SQLite and PostgreSQL (no percentile functions in SQLite).

Definitions, per group (branch, department or agent):

* tickets: filed in the range.
* resolution time: from created_at to the first history entry that set the status to
  resolved or closed; tickets never resolved have none.
* resolved within the limit (%): of the tickets with a due time, those resolved at or
  before it; None when no ticket of the group has a due time.
* first-contact time: from created_at to first_contacted_at (staff's first status change
  or note).
* median: statistics.median; p90: nearest rank (the ceil(0.9·n)-th smallest value).
  Minutes, one decimal.
* overdue now: tickets of the range still open whose due time has passed at `now`.
* ratings: the customers' 1–5 ratings of hand-overs (handoffs.rating). A branch or
  department owns the ratings of hand-overs linked to its tickets (by the hand-over's
  ticket_no, else by conversation); an agent owns the ratings of the hand-overs they handled
  that began in the range. Low rating: 1 or 2.
* Rows are sorted slowest first: by p90 resolution time, descending; rows without one last.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.core.branches import unassigned_label
from bot.core.catalog import load_catalog
from bot.core.clock import local_zone, to_local, to_utc_naive, utc_now
from bot.core.handoff.models import Handoff
from bot.core.tickets.models import FINAL_STATUSES, Ticket

GROUPS = ("branch", "department", "agent")
RESOLVED_STATUSES = ("resolved", "closed")
LOW_RATINGS = (1, 2)


def _label(key: str) -> str:
    return str(load_catalog().labels.get("reports", {}).get(key, key))


def percentile(values: Sequence[float], share: float) -> Optional[float]:
    """The nearest-rank percentile (share 0.9: the ceil(0.9·n)-th smallest), None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


def _median(values: Sequence[float]) -> Optional[float]:
    return _round(statistics.median(values)) if values else None


def _minutes(start: datetime, end: Optional[datetime]) -> Optional[float]:
    return None if end is None else (end - start).total_seconds() / 60


def resolved_at(ticket: Ticket) -> Optional[datetime]:
    """When the ticket's history first set its status to resolved or closed, or None."""
    for event in ticket.events:
        if event.action != "status" or not isinstance(event.changes, dict):
            continue
        change = event.changes.get("status")
        if isinstance(change, (list, tuple)) and len(change) == 2:
            if change[1] in RESOLVED_STATUSES:
                return event.at
    return None


def _is_overdue(ticket: Ticket, now: datetime) -> bool:
    return ticket.status not in FINAL_STATUSES and ticket.due_at is not None and ticket.due_at < now


def _tickets(session: Session, start: datetime, end: datetime) -> List[Ticket]:
    query = (
        select(Ticket)
        .where(Ticket.created_at >= start, Ticket.created_at < end)
        .options(selectinload(Ticket.events))
        .order_by(Ticket.created_at, Ticket.id)
    )
    return list(session.execute(query).scalars())


@dataclass
class _Group:
    tickets: int = 0
    with_due: int = 0
    within_limit: int = 0
    resolved: int = 0
    first_contact: List[float] = field(default_factory=list)
    resolution: List[float] = field(default_factory=list)
    overdue_now: int = 0
    ratings: List[int] = field(default_factory=list)

    def add(self, ticket: Ticket, now: datetime) -> None:
        self.tickets += 1
        done = resolved_at(ticket)
        if done is not None:
            self.resolved += 1
            self.resolution.append((done - ticket.created_at).total_seconds() / 60)
        if ticket.due_at is not None:
            self.with_due += 1
            if done is not None and done <= ticket.due_at:
                self.within_limit += 1
        contact = _minutes(ticket.created_at, ticket.first_contacted_at)
        if contact is not None:
            self.first_contact.append(contact)
        if _is_overdue(ticket, now):
            self.overdue_now += 1

    def row(self, name: str) -> Dict[str, Any]:
        ratings = self.ratings
        return {
            "name": name,
            "tickets": self.tickets,
            "resolved": self.resolved,
            "resolved_within_limit_pct": (
                round(100 * self.within_limit / self.with_due, 1) if self.with_due else None
            ),
            "median_first_contact_min": _median(self.first_contact),
            "p90_first_contact_min": _round(percentile(self.first_contact, 0.9)),
            "median_resolution_min": _median(self.resolution),
            "p90_resolution_min": _round(percentile(self.resolution, 0.9)),
            "overdue_now": self.overdue_now,
            "ratings": len(ratings),
            "rating_avg": round(sum(ratings) / len(ratings), 2) if ratings else None,
            "low_rating_share": (
                round(100 * sum(1 for r in ratings if r in LOW_RATINGS) / len(ratings), 1)
                if ratings
                else None
            ),
        }


def _group_key(ticket: Ticket, group_by: str) -> str:
    if group_by == "branch":
        return str(ticket.branch or unassigned_label())
    if group_by == "department":
        return str(ticket.department)
    return str(ticket.assignee or _label("unassigned_agent"))


def _rated_handoffs(session: Session, conditions: Iterable[Any]) -> List[Handoff]:
    query = select(Handoff).where(Handoff.rating.isnot(None), *conditions)
    return list(session.execute(query.order_by(Handoff.id)).scalars())


def _slowest_first(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    def key(row: Dict[str, Any]) -> Tuple[int, float, str]:
        p90 = row["p90_resolution_min"]
        return (1, 0.0, row["name"]) if p90 is None else (0, -p90, row["name"])

    return sorted(rows, key=key)


def figures(
    session: Session,
    start: datetime,
    end: datetime,
    group_by: str,
    now: Optional[datetime] = None,
) -> List[Dict[str, Any]]:
    """One row per branch / department / agent with tickets (or, for agents, ratings) in
    [start, end) (naive UTC), slowest first. `now` (naive UTC) decides what is overdue."""
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}, got {group_by!r}")
    now = now or to_utc_naive(utc_now())
    groups: Dict[str, _Group] = defaultdict(_Group)
    tickets = _tickets(session, start, end)
    for ticket in tickets:
        groups[_group_key(ticket, group_by)].add(ticket, now)
    if group_by == "agent":
        conditions = [
            Handoff.agent.isnot(None),
            Handoff.created_at >= start,
            Handoff.created_at < end,
        ]
        for handoff in _rated_handoffs(session, conditions):
            groups[str(handoff.agent)].ratings.append(int(handoff.rating))
    elif tickets:
        by_no = {t.ticket_no: t for t in tickets}
        by_conversation: Dict[str, Ticket] = {}
        for ticket in tickets:  # the latest ticket of a conversation within the range
            if ticket.conversation_id:
                by_conversation[ticket.conversation_id] = ticket
        for handoff in _rated_handoffs(session, []):
            owner = by_no.get(handoff.ticket_no or "") or by_conversation.get(
                handoff.conversation_id
            )
            if owner is not None:
                groups[_group_key(owner, group_by)].ratings.append(int(handoff.rating))
    return _slowest_first([group.row(name) for name, group in groups.items()])


def local_days(start: datetime, end: datetime) -> List[date]:
    """The local days touched by [start, end) (naive UTC)."""
    first = to_local(start).date()
    last = to_local(end - timedelta(microseconds=1)).date()
    return (
        [first + timedelta(days=n) for n in range((last - first).days + 1)] if end > start else []
    )


def day_range(first: date, last: date) -> Tuple[datetime, datetime]:
    """[start, end) in naive UTC covering the local days first … last (inclusive)."""
    zone = local_zone()
    start = datetime.combine(first, time.min, tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
    return to_utc_naive(start), to_utc_naive(end)


def month_range(month: str) -> Tuple[datetime, datetime]:
    """[start, end) in naive UTC of a local calendar month given as YYYY-MM."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError as error:
        raise ValueError(f"month must look like 2026-11, got {month!r}") from error
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return day_range(first, following - timedelta(days=1))


def daily_trend(session: Session, start: datetime, end: datetime) -> List[Dict[str, Any]]:
    """Per local day of the range: tickets filed, and of those how many are resolved.
    Empty when no ticket was filed in the range."""
    tickets = _tickets(session, start, end)
    if not tickets:
        return []
    filed: Dict[date, int] = defaultdict(int)
    resolved: Dict[date, int] = defaultdict(int)
    for ticket in tickets:
        day = to_local(ticket.created_at).date()
        filed[day] += 1
        if resolved_at(ticket) is not None:
            resolved[day] += 1
    return [
        {"day": day, "tickets": filed[day], "resolved": resolved[day]}
        for day in local_days(start, end)
    ]


def overdue(session: Session, now: datetime) -> List[Dict[str, Any]]:
    """Open tickets whose due time has passed at `now` (naive UTC), most overdue first."""
    query = (
        select(Ticket)
        .where(
            Ticket.status.notin_(FINAL_STATUSES),
            Ticket.due_at.isnot(None),
            Ticket.due_at < now,
        )
        .order_by(Ticket.due_at, Ticket.id)
    )
    return [
        {
            "ticket_no": ticket.ticket_no,
            "branch": ticket.branch or unassigned_label(),
            "department": ticket.department,
            "category": ticket.category,
            "status": ticket.status,
            "assignee": ticket.assignee or "",
            "created_at": ticket.created_at,
            "due_at": ticket.due_at,
            "overdue_hours": round((now - ticket.due_at).total_seconds() / 3600, 1),
            "address": str((ticket.details or {}).get("address") or ""),
        }
        for ticket in session.execute(query).scalars()
    ]
