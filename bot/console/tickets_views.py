"""Ticket pages: list with filters, detail with history, status / assignee / note changes.

Every change goes through TicketRepository.update with the signed-in user as actor, so it
lands in the ticket's append-only history (who, when, what). Overdue tickets (past their due
time and not finished) are highlighted.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Dict, Mapping, Optional
from urllib.parse import quote, urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from bot.console.auth import ConsoleUser, Principal, list_agents, require_role
from bot.console.media_views import media_labels, photo_links, ticket_location
from bot.console.sweeper import deliver_notices
from bot.console.templating import render
from bot.core.catalog import load_catalog
from bot.core.clock import as_local, to_utc_naive, utc_now
from bot.core.db import session_scope
from bot.core.media.service import for_ticket
from bot.core.notifications.outbox import list_notices
from bot.core.tickets.escalation import level_name, owner_label
from bot.core.tickets.models import FINAL_STATUSES, STATUSES, Ticket
from bot.core.tickets.repository import (
    ORDERS,
    PRIORITIES,
    InvalidStatus,
    StatusNotAllowed,
    TicketNotFound,
    TicketRepository,
)

TICKET_ROLES = ("agent", "supervisor", "trainer")
EDIT_ROLES = ("agent", "supervisor")
MAX_NOTE_CHARS = 2000
PAGE_SIZE = 50
MAX_SEARCH_CHARS = 32
MIN_YEAR, MAX_YEAR = 1971, 9998
NOTICE_STATE_NAMES = {
    "pending": "待发送",
    "sent": "已送达",
    "failed": "发送失败",
    "superseded": "已被新通知取代",
}

router = APIRouter(include_in_schema=False)


def is_overdue(ticket: Ticket, now: Optional[datetime] = None) -> bool:
    """Past its due time and not finished."""
    now = now or to_utc_naive(utc_now())
    return ticket.due_at is not None and ticket.due_at < now and ticket.status not in FINAL_STATUSES


def status_names() -> Dict[str, str]:
    return {code: load_catalog().statuses.get(code, code) for code in STATUSES}


def staff_names(session: Any) -> Dict[str, str]:
    """Display names of the console's users, by username (to show owners by name)."""
    return {u.username: u.display_name for u in session.execute(select(ConsoleUser)).scalars()}


def ticket_row(
    ticket: Ticket, now: datetime, names: Optional[Mapping[str, str]] = None
) -> Dict[str, Any]:
    service = load_catalog().services.get(ticket.category)
    level = int(ticket.escalation_level or 0)
    return {
        "ticket": ticket,
        "overdue": is_overdue(ticket, now),
        "category_name": service.name if service else ticket.category,
        "owner": owner_label(ticket, names),
        # Shown while the ticket is open: a finished ticket's escalation is history only.
        "escalation": level if ticket.status not in FINAL_STATUSES else 0,
        "escalation_name": level_name(level),
    }


def priority_names() -> Dict[str, str]:
    """Priority codes as staff read them (catalog labels.priorities), most pressing first."""
    names = load_catalog().labels.get("priorities", {})
    return {code: names.get(code, code) for code in PRIORITIES}


def _int(text: str, default: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return default


def _day(text: str) -> Optional[date]:
    """A YYYY-MM-DD date from a date input, or None."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return day if MIN_YEAR <= day.year <= MAX_YEAR else None  # no overflow at the ends


def _clean(text: str, limit: int) -> str:
    """Printable characters only (PostgreSQL refuses NUL), trimmed, at most `limit`."""
    return "".join(c for c in text if c.isprintable()).strip()[:limit]


def _day_start(day: date) -> datetime:
    """The stored (naive UTC) time of a local day's midnight."""
    return to_utc_naive(as_local(datetime.combine(day, time())))


def repository_filters(
    status: str = "",
    category: str = "",
    department: str = "",
    assignee: str = "",
    overdue: bool = False,
    query: str = "",
    priority: str = "",
    created_from: Optional[date] = None,
    created_to: Optional[date] = None,
) -> Dict[str, Any]:
    """The list page's filters as TicketRepository.list / count arguments (empty = any;
    the date range is of local days, both ends included)."""
    return {
        "status": status or None,
        "category": category or None,
        "department": department or None,
        "assignee": assignee or None,
        "priority": priority or None,
        "search": query.strip() or None,
        "created_from": _day_start(created_from) if created_from else None,
        "created_to": _day_start(created_to + timedelta(days=1)) if created_to else None,
        "overdue_at": to_utc_naive(utc_now()) if overdue else None,
    }


@router.get("/console/tickets", response_class=HTMLResponse)
def tickets_page(
    request: Request,
    status: str = "",
    category: str = "",
    department: str = "",
    assignee: str = "",
    overdue: str = "",
    q: str = "",
    priority: str = "",
    created_from: str = "",
    created_to: str = "",
    sort: str = "",
    page: str = "",
    user: Principal = Depends(require_role(*TICKET_ROLES)),
) -> HTMLResponse:
    """The ticket list: filters, a sort and PAGE_SIZE tickets a page. Unknown filter values
    are ignored, an unknown sort is the default (newest first), a page out of range is the
    first or last page."""
    catalog = load_catalog()
    now = to_utc_naive(utc_now())
    departments = sorted({s.department for s in catalog.services.values()})
    categories = {code: s.name for code, s in catalog.services.items()}
    priorities = priority_names()
    day_from, day_to = _day(created_from), _day(created_to)
    filters = {
        "q": _clean(q, MAX_SEARCH_CHARS),
        "status": status if status in STATUSES else "",
        "category": category if category in categories else "",
        "priority": priority if priority in priorities else "",
        "department": department if department in departments else "",
        "assignee": _clean(assignee, 64),
        "created_from": day_from.isoformat() if day_from else "",
        "created_to": day_to.isoformat() if day_to else "",
        "overdue": "1" if overdue else "",
    }
    sort = sort if sort in ORDERS else ORDERS[0]
    chosen = repository_filters(
        filters["status"],
        filters["category"],
        filters["department"],
        filters["assignee"],
        bool(filters["overdue"]),
        filters["q"],
        filters["priority"],
        day_from,
        day_to,
    )
    with session_scope(request.app.state.settings.database_url) as session:
        repository = TicketRepository(session)
        total = repository.count(**chosen)
        pages = max(1, -(-total // PAGE_SIZE))
        current = min(max(1, _int(page, 1)), pages)  # past the end: the last page
        offset = (current - 1) * PAGE_SIZE
        tickets = repository.list(limit=PAGE_SIZE, offset=offset, order=sort, **chosen)
        names = staff_names(session)
        rows = [ticket_row(t, now, names) for t in tickets]
    kept = {k: v for k, v in filters.items() if v}

    def link(**changes: Any) -> str:
        query = {**kept, "sort": sort, **changes}
        if query.get("sort") == ORDERS[0]:
            del query["sort"]
        if query.get("page") == 1:
            del query["page"]
        text = urlencode(query)
        return f"/console/tickets?{text}" if text else "/console/tickets"

    return render(
        request,
        "tickets.html",
        {
            "user": user,
            "rows": rows,
            "statuses": status_names(),
            "priorities": priorities,
            "categories": categories,
            "departments": departments,
            "filters": filters,
            "sort": sort,
            "pager": {
                "page": current,
                "pages": pages,
                "total": total,
                "prev": link(page=current - 1) if current > 1 else "",
                "next": link(page=current + 1) if current < pages else "",
            },
            "sort_links": {order: link(sort=order) for order in ORDERS},
        },
    )


@router.get("/console/tickets/{ticket_no}", response_class=HTMLResponse)
def ticket_page(
    request: Request,
    ticket_no: str,
    error: str = "",
    user: Principal = Depends(require_role(*TICKET_ROLES)),
) -> HTMLResponse:
    settings = request.app.state.settings
    with session_scope(settings.database_url) as session:
        ticket = TicketRepository(session).get(ticket_no)
        if ticket is None:
            raise HTTPException(status_code=404, detail="工单不存在")
        row = ticket_row(ticket, to_utc_naive(utc_now()), staff_names(session))
        history = list(ticket.events)
        notices = list(reversed(list_notices(session, ticket_id=ticket.id)))
        agents = [(u.username, u.display_name) for u in list_agents(session)]
        photos = photo_links(for_ticket(session, ticket.id))
    fields = load_catalog().fields
    details = [
        {"label": fields[k].label if k in fields else k, "value": v}
        for k, v in (ticket.details or {}).items()
    ]
    return render(
        request,
        "ticket.html",
        {
            "user": user,
            "row": row,
            "history": history,
            "details": details,
            "notices": notices,
            "notice_states": NOTICE_STATE_NAMES,
            "statuses": status_names(),
            "priorities": priority_names(),
            "agents": agents,
            "error": error[:200],
            "can_edit": user.has_role(*EDIT_ROLES),
            "photos": photos,
            "location": ticket_location(ticket, settings.areas),
            "media_labels": media_labels(settings),
            "escalation_title": load_catalog().labels.get("escalation", {}).get("title", ""),
        },
    )


@router.post("/console/tickets/{ticket_no}")
def update_ticket(
    request: Request,
    ticket_no: str,
    background: BackgroundTasks,
    status: str = Form(""),
    assignee: str = Form(""),
    note: str = Form(""),
    reason: str = Form(""),
    user: Principal = Depends(require_role(*EDIT_ROLES)),
) -> Response:
    """Change status, assignee and/or add a note (one history entry per change); a new
    status the catalog announces is sent to the customer right after the redirect. A new
    assignee with a `reason` is recorded as a change of owner saying why."""
    target = f"/console/tickets/{quote(ticket_no, safe='')}"
    if len(note) > MAX_NOTE_CHARS or len(reason) > MAX_NOTE_CHARS:
        return RedirectResponse(f"{target}?error={quote('备注太长')}", status_code=303)
    reason = _clean(reason, MAX_NOTE_CHARS)
    try:
        with session_scope(request.app.state.settings.database_url) as session:
            repository = TicketRepository(session)
            if assignee and reason:
                repository.reassign(ticket_no, user.username, assignee, reason)
            repository.update(
                ticket_no,
                actor=user.username,
                status=status or None,
                assignee=assignee or None,
                note=note.strip() or None,
            )
    except TicketNotFound:
        raise HTTPException(status_code=404, detail="工单不存在") from None
    except InvalidStatus:
        return RedirectResponse(f"{target}?error={quote('状态无效')}", status_code=303)
    except StatusNotAllowed as error:
        return RedirectResponse(f"{target}?error={quote(str(error))}", status_code=303)
    if status:
        background.add_task(deliver_notices, request.app.state.settings)
    return RedirectResponse(target, status_code=303)
