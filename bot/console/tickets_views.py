"""Ticket pages: list with filters, detail with history, status / assignee / note changes.

Every change goes through TicketRepository.update with the signed-in user as actor, so it
lands in the ticket's append-only history (who, when, what). Overdue tickets (past their due
time and not finished) are highlighted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from bot.console.auth import Principal, list_agents, require_role
from bot.console.media_views import media_labels, photo_links, ticket_location
from bot.console.sweeper import deliver_notices
from bot.console.templating import render
from bot.core.catalog import load_catalog
from bot.core.clock import to_utc_naive, utc_now
from bot.core.db import session_scope
from bot.core.media.service import for_ticket
from bot.core.notifications.outbox import list_notices
from bot.core.tickets.models import FINAL_STATUSES, STATUSES, Ticket
from bot.core.tickets.repository import (
    InvalidStatus,
    StatusNotAllowed,
    TicketNotFound,
    TicketRepository,
)

TICKET_ROLES = ("agent", "supervisor", "trainer")
EDIT_ROLES = ("agent", "supervisor")
MAX_NOTE_CHARS = 2000
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


def ticket_row(ticket: Ticket, now: datetime) -> Dict[str, Any]:
    service = load_catalog().services.get(ticket.category)
    return {
        "ticket": ticket,
        "overdue": is_overdue(ticket, now),
        "category_name": service.name if service else ticket.category,
    }


def filter_tickets(
    session: Any,
    status: str = "",
    category: str = "",
    department: str = "",
    assignee: str = "",
    overdue: bool = False,
    query: str = "",
    limit: int = 300,
) -> List[Ticket]:
    """Tickets matching the list page's filters, newest first."""
    statement = select(Ticket)
    if status:
        statement = statement.where(Ticket.status == status)
    if category:
        statement = statement.where(Ticket.category == category)
    if department:
        statement = statement.where(Ticket.department == department)
    if assignee:
        statement = statement.where(Ticket.assignee == assignee)
    if query:
        statement = statement.where(Ticket.ticket_no.contains(query.strip().upper()))
    if overdue:
        statement = statement.where(
            Ticket.due_at < to_utc_naive(utc_now()), Ticket.status.notin_(FINAL_STATUSES)
        )
    statement = statement.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)
    return list(session.execute(statement).scalars())


@router.get("/console/tickets", response_class=HTMLResponse)
def tickets_page(
    request: Request,
    status: str = "",
    category: str = "",
    department: str = "",
    assignee: str = "",
    overdue: str = "",
    q: str = "",
    user: Principal = Depends(require_role(*TICKET_ROLES)),
) -> HTMLResponse:
    catalog = load_catalog()
    now = to_utc_naive(utc_now())
    with session_scope(request.app.state.settings.database_url) as session:
        tickets = filter_tickets(
            session,
            status if status in STATUSES else "",
            category,
            department,
            assignee,
            bool(overdue),
            q,
        )
        rows = [ticket_row(t, now) for t in tickets]
    departments = sorted({s.department for s in catalog.services.values()})
    return render(
        request,
        "tickets.html",
        {
            "user": user,
            "rows": rows,
            "statuses": status_names(),
            "categories": {code: s.name for code, s in catalog.services.items()},
            "departments": departments,
            "filters": {
                "status": status,
                "category": category,
                "department": department,
                "assignee": assignee,
                "overdue": overdue,
                "q": q,
            },
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
        row = ticket_row(ticket, to_utc_naive(utc_now()))
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
            "agents": agents,
            "error": error[:200],
            "can_edit": user.has_role(*EDIT_ROLES),
            "photos": photos,
            "location": ticket_location(ticket, settings.areas),
            "media_labels": media_labels(settings),
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
    user: Principal = Depends(require_role(*EDIT_ROLES)),
) -> Response:
    """Change status, assignee and/or add a note (one history entry per change); a new
    status the catalog announces is sent to the customer right after the redirect."""
    target = f"/console/tickets/{quote(ticket_no, safe='')}"
    if len(note) > MAX_NOTE_CHARS:
        return RedirectResponse(f"{target}?error={quote('备注太长')}", status_code=303)
    try:
        with session_scope(request.app.state.settings.database_url) as session:
            TicketRepository(session).update(
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
