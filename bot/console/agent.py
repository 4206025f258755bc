"""Agent views: the queue, one conversation (transcript, details, reply box) and its actions.

Pages (session sign-in, CSRF on every POST):
    GET  /console/queue                     waiting (by priority, then arrival) and active
    GET  /console/handoffs/{id}             transcript, collected details, actions
    POST /console/handoffs/{id}/claim|reply|transfer|handback|close
    GET  /console/api/queue                 the queue as JSON (the page refreshes with it)
    GET  /console/api/handoffs/{id}/transcript   the transcript as JSON (polled while open)
JSON API for other systems and tests (bearer token, like the rest of /api/v1):
    POST /api/v1/handoffs/{id}/claim        {"agent": name}
    POST /api/v1/handoffs/{id}/messages     {"agent": name, "text": …}
    POST /api/v1/handoffs/{id}/handback     {"agent": name}   (the bot asks for a rating)
    POST /api/v1/handoffs/{id}/close        {"agent": name}
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Dict, List, Optional

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from bot.console.api import HandoffId, require_token
from bot.console.auth import ROLES, Principal, list_agents, require_role
from bot.console.media_views import conversation_photos, media_labels
from bot.console.templating import render
from bot.core.catalog import load_catalog
from bot.core.clock import iso_local, to_utc_naive, utc_now
from bot.core.db import session_scope
from bot.core.handoff import service as handover
from bot.core.rasa_api import RasaClient, RasaError

AGENT_ROLES = ("agent", "supervisor")
LABELS = load_catalog().labels
REASON_NAMES = LABELS["handoff_reasons"]
PRIORITY_NAMES = LABELS["priorities"]
STATUS_NAMES = LABELS["handoff_statuses"]

router = APIRouter(include_in_schema=False)
agent_only = require_role(*AGENT_ROLES)


# ---------------------------------------------------------------- transcript


def _customer_text(event: Dict[str, Any]) -> str:
    """What the customer sent, as an agent reads it: a photo or a location as a label (the
    photos themselves are shown next to the transcript)."""
    text = str(event["text"])
    labels = load_catalog().labels["media"]
    if text == "/send_photo":
        return labels["photo_message"]
    if text == "/share_location":
        location = (event.get("metadata") or {}).get("location") or {}
        return labels["location_message"].format(
            lat=location.get("lat", "?"), lon=location.get("lon", "?")
        )
    return text


def transcript_from_events(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Customer, bot and agent messages (with the predicted intent), pauses and resumes."""
    rows: List[Dict[str, Any]] = []
    for event in events:
        kind, at = event.get("event"), event.get("timestamp")
        when = dt.datetime.fromtimestamp(at, dt.timezone.utc).isoformat() if at else None
        if kind == "user" and event.get("text") is not None:
            intent = (event.get("parse_data") or {}).get("intent") or {}
            rows.append(
                {
                    "from": "customer",
                    "text": _customer_text(event),
                    "at": when,
                    "intent": intent.get("name"),
                    "confidence": intent.get("confidence"),
                }
            )
        elif kind == "bot" and event.get("text"):
            agent = (event.get("metadata") or {}).get("agent")
            rows.append(
                {
                    "from": "agent" if agent else "bot",
                    "agent": agent,
                    "text": str(event["text"]),
                    "at": when,
                }
            )
        elif kind in ("pause", "resume"):
            rows.append(
                {
                    "from": "system",
                    "text": "转人工（机器人暂停）" if kind == "pause" else "交还机器人",
                    "at": when,
                }
            )
    return rows


def labelled_details(details: Dict[str, Any]) -> List[Dict[str, Any]]:
    fields = load_catalog().fields
    return [
        {"label": fields[k].label if k in fields else k, "value": v} for k, v in details.items()
    ]


def waiting_minutes(view: handover.HandoffView) -> float:
    return (to_utc_naive(utc_now()) - view.created_at).total_seconds() / 60


def handoff_json(view: handover.HandoffView) -> Dict[str, Any]:
    return {
        "id": view.id,
        "conversation_id": view.conversation_id,
        "channel": view.channel,
        "reason": view.reason,
        "reason_name": REASON_NAMES.get(view.reason, view.reason),
        "status": view.status,
        "priority": view.priority,
        "priority_name": PRIORITY_NAMES.get(view.priority, view.priority),
        "queue_position": view.queue_position,
        "agent": view.agent,
        "created_at": iso_local(view.created_at),
        "waiting_minutes": round(waiting_minutes(view), 1),
        "ticket_no": view.ticket_no,
        "moves": [
            {**move, "at": iso_local(dt.datetime.fromisoformat(move["at"]))} for move in view.moves
        ],
    }


def _settings(request: Request) -> Any:
    return request.app.state.settings


def _get_or_404(request: Request, handoff_id: HandoffId) -> handover.HandoffView:
    try:
        return handover.get(_settings(request), handoff_id)
    except handover.HandoffNotFound:
        raise HTTPException(status_code=404, detail="会话不存在") from None


# ---------------------------------------------------------------- pages


@router.get("/console", response_class=HTMLResponse)
@router.get("/console/", response_class=HTMLResponse)
def console_home(user: Principal = Depends(require_role(*ROLES))) -> Response:
    from bot.console.auth import home_of

    return RedirectResponse(home_of(user), status_code=303)


@router.get("/console/queue", response_class=HTMLResponse)
def queue_page(request: Request, user: Principal = Depends(agent_only)) -> HTMLResponse:
    views = handover.queue(_settings(request), include_closed=20)
    return render(
        request,
        "queue.html",
        {
            "user": user,
            "handoffs": [handoff_json(v) for v in views],
            "reasons": REASON_NAMES,
            "statuses": STATUS_NAMES,
        },
    )


@router.get("/console/api/queue")
def queue_json(request: Request, user: Principal = Depends(agent_only)) -> List[Dict[str, Any]]:
    return [handoff_json(v) for v in handover.queue(_settings(request), include_closed=20)]


@router.get("/console/handoffs/{handoff_id}", response_class=HTMLResponse)
async def conversation_page(
    request: Request, handoff_id: HandoffId, error: str = "", user: Principal = Depends(agent_only)
) -> HTMLResponse:
    view = _get_or_404(request, handoff_id)
    try:
        events = await run_in_threadpool(
            RasaClient(_settings(request)).events, view.conversation_id
        )
        transcript, rasa_error = transcript_from_events(events), None
    except RasaError:
        transcript, rasa_error = [], "暂时无法读取对话记录（Rasa 无响应）"
    with session_scope(_settings(request).database_url) as session:
        colleagues = [
            (u.username, u.display_name)
            for u in list_agents(session, present_only=True)
            if u.username != user.username
        ]
        photos = conversation_photos(session, view.conversation_id)
    return render(
        request,
        "conversation.html",
        {
            "user": user,
            "handoff": handoff_json(view),
            "details": labelled_details(view.details),
            "transcript": transcript,
            "rasa_error": rasa_error,
            "error": error[:200],
            "mine": view.status == "active" and view.agent == user.username,
            "colleagues": colleagues,
            "statuses": STATUS_NAMES,
            "photos": photos,
            "media_labels": media_labels(_settings(request)),
            "move_labels": dict(load_catalog().labels.get("handoff_moves", {})),
        },
    )


@router.get("/console/api/handoffs/{handoff_id}/transcript")
async def transcript_json(
    request: Request, handoff_id: HandoffId, user: Principal = Depends(agent_only)
) -> Dict[str, Any]:
    view = _get_or_404(request, handoff_id)
    try:
        events = await run_in_threadpool(
            RasaClient(_settings(request)).events, view.conversation_id
        )
    except RasaError:
        raise HTTPException(status_code=503, detail="暂时无法读取对话记录") from None
    return {"handoff": handoff_json(view), "transcript": transcript_from_events(events)}


def _back(handoff_id: HandoffId, error: str = "") -> RedirectResponse:
    from urllib.parse import quote

    suffix = f"?error={quote(error)}" if error else ""
    return RedirectResponse(f"/console/handoffs/{handoff_id}{suffix}", status_code=303)


async def _do(handoff_id: HandoffId, action: Callable[[], Any]) -> RedirectResponse:
    """Run an agent action; state errors come back to the page as a message."""
    try:
        await run_in_threadpool(action)
    except handover.HandoffNotFound:
        raise HTTPException(status_code=404, detail="会话不存在") from None
    except (handover.HandoffStateError, handover.HandoverError) as error:
        message = (
            str(error) if isinstance(error, handover.HandoverError) else "该会话已被接入或已结束"
        )
        return _back(handoff_id, message)
    except RasaError:
        return _back(handoff_id, "消息没有发出：Rasa 暂时无响应，请重试")
    return _back(handoff_id)


def _override(user: Principal) -> bool:
    return user.has_role("supervisor")


@router.post("/console/handoffs/{handoff_id}/claim")
async def claim_form(
    request: Request, handoff_id: HandoffId, user: Principal = Depends(agent_only)
) -> Response:
    return await _do(
        handoff_id, lambda: handover.claim(_settings(request), handoff_id, user.username)
    )


@router.post("/console/handoffs/{handoff_id}/reply")
async def reply_form(
    request: Request,
    handoff_id: HandoffId,
    text: str = Form(""),
    user: Principal = Depends(agent_only),
) -> Response:
    return await _do(
        handoff_id,
        lambda: handover.reply(
            _settings(request), handoff_id, user.username, user.display_name, text, _override(user)
        ),
    )


@router.post("/console/handoffs/{handoff_id}/transfer")
async def transfer_form(
    request: Request,
    handoff_id: HandoffId,
    to_agent: str = Form(...),
    user: Principal = Depends(agent_only),
) -> Response:
    with session_scope(_settings(request).database_url) as session:
        known = {u.username for u in list_agents(session, present_only=True)}
    if to_agent not in known:
        return _back(handoff_id, "没有这个坐席，或这位同事不在岗")
    await _do(
        handoff_id,
        lambda: handover.transfer(
            _settings(request), handoff_id, user.username, to_agent, _override(user)
        ),
    )
    return RedirectResponse("/console/queue", status_code=303)


@router.post("/console/handoffs/{handoff_id}/handback")
async def handback_form(
    request: Request, handoff_id: HandoffId, user: Principal = Depends(agent_only)
) -> Response:
    return await _do(
        handoff_id,
        lambda: handover.finish(
            _settings(request), handoff_id, user.username, ask_rating=True, override=_override(user)
        ),
    )


@router.post("/console/handoffs/{handoff_id}/close")
async def close_form(
    request: Request, handoff_id: HandoffId, user: Principal = Depends(agent_only)
) -> Response:
    return await _do(
        handoff_id,
        lambda: handover.finish(
            _settings(request),
            handoff_id,
            user.username,
            ask_rating=False,
            override=_override(user),
        ),
    )


# ---------------------------------------------------------------- JSON API (bearer token)

api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])


class AgentAction(BaseModel):
    agent: str
    text: Optional[str] = None

    class Config:
        extra = "forbid"


def _api_call(action: Callable[[], handover.HandoffView]) -> JSONResponse:
    try:
        view = action()
    except handover.HandoffNotFound:
        raise HTTPException(status_code=404, detail="handoff not found") from None
    except (handover.HandoffStateError, handover.HandoverError) as error:
        raise HTTPException(status_code=409, detail=str(error)) from None
    except RasaError as error:
        raise HTTPException(status_code=502, detail=f"Rasa: {error}") from None
    return JSONResponse(handoff_json(view))


@api_router.post("/handoffs/{handoff_id}/claim")
def api_claim(request: Request, handoff_id: HandoffId, body: AgentAction) -> JSONResponse:
    return _api_call(lambda: handover.claim(_settings(request), handoff_id, body.agent))


@api_router.post("/handoffs/{handoff_id}/messages")
def api_reply(request: Request, handoff_id: HandoffId, body: AgentAction) -> JSONResponse:
    return _api_call(
        lambda: handover.reply(
            _settings(request), handoff_id, body.agent, body.agent, body.text or ""
        )
    )


@api_router.post("/handoffs/{handoff_id}/handback")
def api_handback(request: Request, handoff_id: HandoffId, body: AgentAction) -> JSONResponse:
    return _api_call(lambda: handover.finish(_settings(request), handoff_id, body.agent, True))


@api_router.post("/handoffs/{handoff_id}/close")
def api_close(request: Request, handoff_id: HandoffId, body: AgentAction) -> JSONResponse:
    return _api_call(lambda: handover.finish(_settings(request), handoff_id, body.agent, False))
