"""Create, find and update tickets; every change is appended to the ticket's history.

with session_scope() as session:
    tickets = TicketRepository(session)
    ticket, created = tickets.create("fault_repair", details, conversation_id, "rest")
    payload = tickets.to_dict(ticket)          # the spec §5 JSON shape
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from bot.core.branches import find_branch
from bot.core.catalog import Catalog, load_catalog
from bot.core.clock import iso_local, to_local, to_utc_naive, utc_now
from bot.core.notifications.outbox import enqueue_status_notice
from bot.core.tickets.due import compute_due_at, compute_first_contact_due
from bot.core.tickets.escalation import queue_label
from bot.core.tickets.models import FINAL_STATUSES, STATUSES, Ticket, TicketEvent
from bot.core.tickets.numbering import next_ticket_no

MAX_LIST_LIMIT = 1000
PRIORITIES = ("urgent", "high", "normal", "low")  # most pressing first
ORDERS = ("created", "due", "priority", "status")
SYSTEM_ACTORS = ("bot", "notifier")  # their changes are not a person contacting the customer
_MAX_KEY_CHAIN = 1000


class TicketNotFound(LookupError):
    """No ticket has this number."""


class StatusNotAllowed(ValueError):
    """The ticket's current status may not change to the one asked for (catalog
    `status_transitions`: e.g. a closed ticket does not go back to new)."""


class InvalidStatus(ValueError):
    """A status outside new/assigned/in_progress/resolved/closed/cancelled."""


def clean_details(details: Mapping[str, Any]) -> Dict[str, Any]:
    """The details worth storing: unset (None / empty) values dropped."""
    return {k: v for k, v in details.items() if v is not None and v != ""}


def canonical_json(value: Any) -> str:
    """Stable JSON text (sorted keys, no spaces) for hashing."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def request_key(
    conversation_id: Optional[str],
    category: str,
    details: Mapping[str, Any],
    submission: Optional[str] = None,
) -> str:
    """Idempotency key of a confirmed request: sha256(conversation + category + the
    submission's identity), or of its details when the caller has no submission identity."""
    what = f"submission:{submission}" if submission else canonical_json(clean_details(details))
    text = "\n".join([conversation_id or "", category, what])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _chained_key(key: str, previous_ticket_no: str) -> str:
    return hashlib.sha256(f"{key}\nafter\n{previous_ticket_no}".encode()).hexdigest()


def _phone(details: Mapping[str, Any]) -> Optional[str]:
    phone = details.get("phone")
    return str(phone) if phone else None


def _rank(column: Any, codes: Tuple[str, ...]) -> Any:
    """A column's position in `codes` (unknown codes last), for ORDER BY."""
    return case({code: i for i, code in enumerate(codes)}, value=column, else_=len(codes))


def _order_by(order: str) -> Tuple[Any, ...]:
    """ORDER BY terms of a list order (ORDERS); an unknown order is the newest first."""
    newest = (Ticket.created_at.desc(), Ticket.id.desc())
    if order == "due":  # soonest first, tickets without a due time last
        return (Ticket.due_at.is_(None), Ticket.due_at.asc(), *newest)
    if order == "priority":
        return (_rank(Ticket.priority, PRIORITIES), *newest)
    if order == "status":
        return (_rank(Ticket.status, STATUSES), *newest)
    return newest


def _search_clause(text: str) -> Any:
    """A ticket number (case-insensitive) or phone number, exact or its beginning."""
    text = text.strip()
    clauses = [Ticket.ticket_no.startswith(text.upper(), autoescape=True)]
    digits = "".join(c for c in text if c.isdigit())
    if digits and len(digits) == len(text.replace(" ", "").replace("-", "")):
        clauses.append(Ticket.contact_phone.startswith(digits, autoescape=True))
    return or_(*clauses)


@dataclass(frozen=True)
class TicketFilter:
    """Which tickets a list or a count is about; None (or an empty search) filters nothing.
    `search` is a ticket number or phone prefix; created_from (inclusive) / created_to
    (exclusive) are stored (naive UTC) times; overdue_at keeps the tickets due before it and
    not finished."""

    conversation_id: Optional[str] = None
    status: Optional[str] = None
    category: Optional[str] = None
    phone: Optional[str] = None
    priority: Optional[str] = None
    department: Optional[str] = None
    assignee: Optional[str] = None
    search: Optional[str] = None
    created_from: Optional[datetime] = None
    created_to: Optional[datetime] = None
    overdue_at: Optional[datetime] = None

    def apply(self, query: Any) -> Any:
        """`query` with a WHERE clause for every filter that is set."""
        equal = {
            Ticket.conversation_id: self.conversation_id,
            Ticket.status: self.status,
            Ticket.category: self.category,
            Ticket.contact_phone: self.phone,
            Ticket.priority: self.priority,
            Ticket.department: self.department,
            Ticket.assignee: self.assignee,
        }
        for column, value in equal.items():
            if value is not None:
                query = query.where(column == value)
        if self.search:
            query = query.where(_search_clause(self.search))
        if self.created_from is not None:
            query = query.where(Ticket.created_at >= self.created_from)
        if self.created_to is not None:
            query = query.where(Ticket.created_at < self.created_to)
        if self.overdue_at is not None:
            query = query.where(
                Ticket.due_at < self.overdue_at, Ticket.status.notin_(FINAL_STATUSES)
            )
        return query


class TicketRepository:
    """Tickets stored through one session; the caller owns the transaction."""

    def __init__(
        self,
        session: Session,
        catalog: Optional[Catalog] = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.session = session
        self.catalog = catalog or load_catalog()
        self.clock = clock

    # -- creating -----------------------------------------------------------------------

    def create(
        self,
        service_code: str,
        details: Mapping[str, Any],
        conversation_id: Optional[str],
        channel: str,
        actor: str = "bot",
        submission: Optional[str] = None,
    ) -> Tuple[Ticket, bool]:
        """File a ticket; returns (ticket, created).

        One submission (a form run, named by `submission`) is one ticket, however often it is
        retried. Without a submission identity, the same details confirmed twice in one
        conversation return the first ticket (created=False) while that ticket is still open;
        once it is resolved, closed or cancelled, the same request files a new ticket.
        """
        service = self.catalog.services.get(service_code)
        if service is None:
            raise KeyError(f"unknown service category {service_code!r}")
        details = clean_details(details)
        key = request_key(conversation_id, service.code, details, submission)
        if submission:
            existing = self._by_key(key)
        else:
            existing, key = self._open_ticket_for(key)
        if existing is not None:
            return existing, False

        now = self.clock()
        created_local = to_local(now)
        stored_now = to_utc_naive(now)
        due = compute_due_at(service, created_local, details)
        first_contact = compute_first_contact_due(service, created_local)
        ticket = Ticket(
            ticket_no=next_ticket_no(self.session, created_local.date()),
            category=service.code,
            priority=service.priority,
            status="new",
            department=service.department,
            details=details,
            contact_phone=_phone(details),
            conversation_id=conversation_id,
            channel=channel,
            request_key=key,
            created_at=stored_now,
            updated_at=stored_now,
            due_at=to_utc_naive(due) if due else None,
            first_contact_due_at=to_utc_naive(first_contact) if first_contact else None,
            branch=find_branch(details.get("address")),
        )
        ticket.events.append(TicketEvent(at=stored_now, actor=actor, action="created"))
        try:
            # A savepoint keeps the caller's transaction usable if the insert loses a race. (On
            # SQLite it works because next_ticket_no's INSERT has already begun the transaction.)
            with self.session.begin_nested():
                self.session.add(ticket)
        except IntegrityError:
            # A concurrent identical request won the race (its number is simply skipped).
            winner = self._by_key(key)
            if winner is None:
                raise
            return winner, False
        return ticket, True

    def _by_key(self, key: str) -> Optional[Ticket]:
        return self.session.execute(
            select(Ticket).where(Ticket.request_key == key)
        ).scalar_one_or_none()

    def _open_ticket_for(self, key: str) -> Tuple[Optional[Ticket], str]:
        """(the open ticket of this request or None, the key a new ticket would get)."""
        for _ in range(_MAX_KEY_CHAIN):
            ticket = self._by_key(key)
            if ticket is None:
                return None, key
            if ticket.status not in FINAL_STATUSES:
                return ticket, key
            key = _chained_key(key, ticket.ticket_no)
        raise RuntimeError("too many finished tickets for one request")

    # -- reading ------------------------------------------------------------------------

    def same_request(
        self, conversation_id: str, category: str, details: Mapping[str, Any]
    ) -> Optional[Ticket]:
        """The newest open ticket of this conversation with the same category and details."""
        wanted = canonical_json(clean_details(details))
        for ticket in self.list(conversation_id=conversation_id, category=category, limit=20):
            if ticket.status not in FINAL_STATUSES and canonical_json(ticket.details) == wanted:
                return ticket
        return None

    def get(self, ticket_no: str) -> Optional[Ticket]:
        """The ticket with this number (case-insensitive), or None."""
        return self.session.execute(
            select(Ticket)
            .where(Ticket.ticket_no == ticket_no.strip().upper())
            .options(selectinload(Ticket.events))
        ).scalar_one_or_none()

    def list(
        self,
        conversation_id: Optional[str] = None,
        status: Optional[str] = None,
        category: Optional[str] = None,
        phone: Optional[str] = None,
        limit: int = 100,
        offset: int = 0,
        order: str = "created",
        **filters: Any,
    ) -> List[Ticket]:
        """Tickets matching every given filter, newest first unless `order` says otherwise
        (one of ORDERS: created, due, priority, status). `offset` skips that many rows (for
        paging); further filters are those of `TicketFilter`."""
        chosen = TicketFilter(conversation_id, status, category, phone, **filters)
        query = chosen.apply(select(Ticket))
        limit = max(1, min(int(limit), MAX_LIST_LIMIT))
        query = query.order_by(*_order_by(order)).offset(max(0, int(offset))).limit(limit)
        return list(self.session.execute(query).scalars())

    def count(self, **filters: Any) -> int:
        """How many tickets match the filters of `TicketFilter` (one COUNT query)."""
        query = TicketFilter(**filters).apply(select(func.count()).select_from(Ticket))
        return int(self.session.execute(query).scalar_one())

    # -- changing -----------------------------------------------------------------------

    def update(
        self,
        ticket_no: str,
        actor: str,
        status: Optional[str] = None,
        assignee: Optional[str] = None,
        note: Optional[str] = None,
        details: Optional[Mapping[str, Any]] = None,
    ) -> Ticket:
        """Apply the given changes, one history entry per change (no-ops leave no trace).

        A new status the catalog announces also owes the customer a notice (bot.core.notifications),
        written in this same transaction."""
        if status is not None and status not in STATUSES:
            raise InvalidStatus(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        ticket = self.session.execute(
            select(Ticket).where(Ticket.ticket_no == ticket_no.strip().upper()).with_for_update()
        ).scalar_one_or_none()
        if ticket is None:
            raise TicketNotFound(ticket_no)
        now = to_utc_naive(self.clock())
        events: List[TicketEvent] = []
        if status is not None and status != ticket.status:
            allowed = self.catalog.status_transitions.get(ticket.status)
            if allowed is not None and status not in allowed:
                names = self.catalog.statuses
                raise StatusNotAllowed(
                    f"工单{ticket.ticket_no}当前为「{names.get(ticket.status, ticket.status)}」，"
                    f"不能改为「{names.get(status, status)}」"
                )
            events.append(self._event(now, actor, "status", {"status": [ticket.status, status]}))
            ticket.status = status
            enqueue_status_notice(self.session, self.catalog, ticket, now)
        if assignee is not None and assignee != ticket.assignee:
            change = {"assignee": [ticket.assignee, assignee]}
            events.append(self._event(now, actor, "assigned", change))
            ticket.assignee = assignee
        if details:
            merged = {**ticket.details, **clean_details(details)}
            changed = {
                key: [ticket.details.get(key), value]
                for key, value in merged.items()
                if ticket.details.get(key) != value
            }
            if changed:
                events.append(self._event(now, actor, "details", changed))
                ticket.details = merged  # a new dict, so the JSON column is saved
                ticket.contact_phone = _phone(merged)
        if note:
            events.append(TicketEvent(at=now, actor=actor, action="note", note=note))
        if events:
            ticket.events.extend(events)
            ticket.updated_at = now
            if (
                ticket.first_contacted_at is None
                and actor not in SYSTEM_ACTORS
                and (status is not None or note)
            ):
                ticket.first_contacted_at = now  # staff acted on it: the promise is kept
            self.session.flush()
        return ticket

    def reassign(
        self,
        ticket_no: str,
        actor: str,
        assignee: Optional[str],
        reason: str,
    ) -> Ticket:
        """Give the ticket a new owner: a person (`assignee`), or back to its department's
        queue (None). One history entry says who (the actor), from whom to whom, and why
        (catalog staff_messages.reassigned); the same owner again leaves no trace."""
        ticket = self.session.execute(
            select(Ticket).where(Ticket.ticket_no == ticket_no.strip().upper()).with_for_update()
        ).scalar_one_or_none()
        if ticket is None:
            raise TicketNotFound(ticket_no)
        assignee = assignee or None
        if assignee == ticket.assignee:
            return ticket
        now = to_utc_naive(self.clock())
        queue = queue_label(str(ticket.department), self.catalog)
        template = self.catalog.staff_messages.get("reassigned", "{old} -> {new}: {reason}")
        note = template.format(old=ticket.assignee or queue, new=assignee or queue, reason=reason)
        event = self._event(now, actor, "assigned", {"assignee": [ticket.assignee, assignee]})
        event.note = note
        ticket.events.append(event)
        ticket.assignee = assignee
        ticket.updated_at = now
        self.session.flush()
        return ticket

    @staticmethod
    def _event(at: datetime, actor: str, action: str, changes: Dict[str, Any]) -> TicketEvent:
        return TicketEvent(at=at, actor=actor, action=action, changes=changes)

    # -- presenting ---------------------------------------------------------------------

    @staticmethod
    def to_dict(ticket: Ticket, with_history: bool = False) -> Dict[str, Any]:
        """The spec §5 JSON shape; with_history adds updated_at, assignee and history."""
        data: Dict[str, Any] = {
            "ticket_no": ticket.ticket_no,
            "category": ticket.category,
            "status": ticket.status,
            "priority": ticket.priority,
            "department": ticket.department,
            "details": dict(ticket.details or {}),
            "conversation_id": ticket.conversation_id,
            "channel": ticket.channel,
            "created_at": iso_local(ticket.created_at),
            "due_at": iso_local(ticket.due_at),
            "first_contact_due_at": iso_local(ticket.first_contact_due_at),
            "first_contacted_at": iso_local(ticket.first_contacted_at),
        }
        if with_history:
            data["updated_at"] = iso_local(ticket.updated_at)
            data["assignee"] = ticket.assignee
            data["history"] = [
                {
                    "at": iso_local(event.at),
                    "actor": event.actor,
                    "action": event.action,
                    "changes": event.changes,
                    "note": event.note,
                }
                for event in ticket.events
            ]
        return data
