"""JSON API v1 (spec §5): tickets, handoffs, notices and dead letters, behind a bearer token.

Every route of this router requires ``Authorization: Bearer <settings.api_token()>``.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Callable, ContextManager, Dict, List, Optional

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.orm import Session

from bot.console.media_views import attachment_json, attachments_by_ticket, ticket_location
from bot.console.sweeper import deliver_notices
from bot.core import dead_letters
from bot.core.db import session_scope
from bot.core.handoff.models import HANDOFF_STATUSES
from bot.core.handoff.repository import HandoffRepository
from bot.core.notifications.models import NOTICE_STATES
from bot.core.notifications.outbox import list_notices, notice_dict
from bot.core.tickets.models import STATUSES, Ticket
from bot.core.tickets.repository import (
    InvalidStatus,
    StatusNotAllowed,
    TicketNotFound,
    TicketRepository,
)

_bearer = HTTPBearer(auto_error=False)

# A row id in a path: a positive 64-bit integer (larger numbers name no row and must not
# reach the database, whose integers they would overflow).
MAX_ROW_ID = 2**63 - 1
HandoffId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


def require_token(
    request: Request, credentials: Optional[HTTPAuthorizationCredentials] = Depends(_bearer)
) -> None:
    """401 unless the request carries the configured bearer token."""
    expected = request.app.state.settings.api_token().encode("utf-8")
    given = (credentials.credentials if credentials else "").encode("utf-8")
    if not given or not secrets.compare_digest(given, expected):
        raise HTTPException(
            status_code=401,
            detail="未授权：缺少或错误的访问令牌 / Unauthorized: missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])


class TicketPatch(BaseModel):
    """Body of PATCH /api/v1/tickets/{ticket_no}."""

    status: Optional[str] = None
    assignee: Optional[str] = None
    note: Optional[str] = None

    class Config:
        extra = "forbid"


def _session(request: Request) -> ContextManager[Session]:
    # Explicit per-endpoint transactions: committed before the response is sent.
    return session_scope(request.app.state.settings.database_url)


def _check_choice(name: str, value: Optional[str], allowed: tuple) -> None:
    if value is not None and value not in allowed:
        raise HTTPException(
            status_code=422,
            detail=f"{name} 取值无效 / invalid {name} {value!r}; allowed: {', '.join(allowed)}",
        )


def _not_found(ticket_no: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"工单不存在 / ticket not found: {ticket_no}")


def _absolute(request: Request) -> Callable[[str], str]:
    """Console-relative path → the absolute URL under the address the caller used."""
    base = str(request.base_url).rstrip("/")
    return lambda path: base + path


def _with_media(
    request: Request, session: Session, tickets: List[Ticket], answers: List[Dict[str, Any]]
) -> List[Dict[str, Any]]:
    """Add each ticket's photos (signed staff links, one query for all) and location."""
    photos = attachments_by_ticket(session, [ticket.id for ticket in tickets])
    url = _absolute(request)
    areas = request.app.state.settings.areas
    for ticket, answer in zip(tickets, answers):
        answer["attachments"] = [attachment_json(a, url) for a in photos[ticket.id]]
        answer["location"] = ticket_location(ticket, areas)
    return answers


@router.get("/tickets")
def list_tickets(
    request: Request,
    conversation_id: Optional[str] = None,
    status: Optional[str] = None,
    category: Optional[str] = None,
    phone: Optional[str] = None,
    limit: int = Query(100, ge=1, le=1000),
) -> List[Dict[str, Any]]:
    """Tickets matching the filters, newest first."""
    _check_choice("status", status, STATUSES)
    with _session(request) as session:
        tickets = TicketRepository(session).list(
            conversation_id=conversation_id,
            status=status,
            category=category,
            phone=phone,
            limit=limit,
        )
        answers = [TicketRepository.to_dict(ticket) for ticket in tickets]
        return _with_media(request, session, tickets, answers)


@router.get("/tickets/{ticket_no}")
def get_ticket(request: Request, ticket_no: str) -> Dict[str, Any]:
    """One ticket with its history."""
    with _session(request) as session:
        ticket = TicketRepository(session).get(ticket_no)
        if ticket is None:
            raise _not_found(ticket_no)
        return _with_notifications(request, session, ticket)


def _with_notifications(request: Request, session: Session, ticket: Ticket) -> Dict[str, Any]:
    """The ticket with its history, the notices its customer was (or is to be) sent, its
    photos and its location."""
    notices = list_notices(session, ticket_id=ticket.id)
    answer = {
        **TicketRepository.to_dict(ticket, with_history=True),
        "notifications": [notice_dict(notice) for notice in reversed(notices)],
    }
    return _with_media(request, session, [ticket], [answer])[0]


@router.patch("/tickets/{ticket_no}")
def patch_ticket(
    request: Request, ticket_no: str, body: TicketPatch, background: BackgroundTasks
) -> Dict[str, Any]:
    """Change status / assignee or add a note; each change is kept in the history.

    A new status the catalog announces is sent to the customer right after the answer (and
    retried by the console's delivery loop if that fails)."""
    if body.status is None and body.assignee is None and not body.note:
        raise HTTPException(
            status_code=422,
            detail="请至少提供 status、assignee 或 note / provide status, assignee or note",
        )
    _check_choice("status", body.status, STATUSES)
    with _session(request) as session:
        repository = TicketRepository(session)
        try:
            ticket = repository.update(
                ticket_no, actor="api", status=body.status, assignee=body.assignee, note=body.note
            )
        except TicketNotFound:
            raise _not_found(ticket_no) from None
        except InvalidStatus as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        except StatusNotAllowed as error:
            raise HTTPException(status_code=409, detail=str(error)) from None
        answer = _with_notifications(request, session, ticket)
    if body.status is not None:
        background.add_task(deliver_notices, request.app.state.settings)
    return answer


@router.get("/notifications")
def list_notifications(
    request: Request,
    state: Optional[str] = None,
    limit: int = Query(100, ge=1, le=1000),
) -> List[Dict[str, Any]]:
    """Notices to customers, newest first (``state=failed``: the ones staff must follow up)."""
    _check_choice("state", state, NOTICE_STATES)
    with _session(request) as session:
        notices = list_notices(session, states=(state,) if state else (), limit=limit)
        return [notice_dict(notice) for notice in notices]


@router.get("/handoffs")
def list_handoffs(
    request: Request,
    status: Optional[str] = None,
    conversation_id: Optional[str] = None,
    limit: int = Query(200, ge=1, le=1000),
) -> List[Dict[str, Any]]:
    """Conversations handed to agents: waiting ones in queue order, then active, then closed."""
    _check_choice("status", status, HANDOFF_STATUSES)
    with _session(request) as session:
        repository = HandoffRepository(session)
        positions = repository.queue_positions()
        handoffs = repository.list(status=status, conversation_id=conversation_id, limit=limit)
        return [repository.to_dict(handoff, positions) for handoff in handoffs]


@router.get("/dead-letters")
def list_dead_letters(
    request: Request,
    source: Optional[str] = Query(None, max_length=dead_letters.SOURCE_MAX_CHARS),
    limit: int = Query(100, ge=1, le=1000),
) -> List[Dict[str, Any]]:
    """Work given up after its bounded retries (e.g. Telegram updates the poller could not
    forward), newest first, with the payload that was being sent (it may hold personal data:
    this is the only place it is shown)."""
    letters = dead_letters.recent(limit, source=source, url=request.app.state.settings.database_url)
    return [dead_letters.as_dict(letter, with_payload=True) for letter in letters]


@router.get("/openapi.json", include_in_schema=False)
def openapi_document(request: Request) -> Dict[str, Any]:
    """The OpenAPI description of this JSON API (for the bureau's integrators and for
    schemathesis), to bearer-token holders only: the console publishes no API docs."""
    from fastapi.openapi.utils import get_openapi

    routes = [r for r in request.app.routes if getattr(r, "path", "").startswith("/api/v1/")]
    return get_openapi(title="供电业务受理助手 JSON API", version="1", routes=routes)
