"""The trainer's inbox in the console: ``GET /console/trainer`` (page) and its JSON API.

* ``GET  /console/trainer/api/inbox?refresh=1`` → collect from the tracker store (when refresh), then
  ``{items, intents, entities, unwritten}``: open items (count, predicted intent, confidence,
  context); `unwritten` counts labels recorded but not yet in their data file
* ``POST /console/trainer/api/label`` ``{item_id, intent, entities: [{start, end, entity, value?}],
  patch?: bool}`` → ``{example, data_file, patch?, written, write_error, message}`` (personal
  data replaced before writing). The label is committed before the file is written: when the
  write fails the answer is 202 with ``written: false``, the error and a message for the
  trainer (「已记录，写入训练文件失败：…」); ``python -m bot trainer flush`` writes it later.
* ``POST /console/trainer/api/discard`` ``{item_id, reason}``
* ``GET  /console/trainer/api/compare`` → the last ``python -m bot trainer compare`` (reports/compare.json),
  ``GET /console/trainer/compare.png`` its confusion matrix image

Signed-in users with the ``trainer`` role (or admin) only; POSTs carry the CSRF header.
Labels are written to data/nlu (INTAKE_NLU_DIR to point at a scratch copy).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bot.console.api import MAX_ROW_ID
from bot.console.auth import Principal, require_role
from bot.console.templating import render
from bot.core.db import session_scope
from bot.core.training.comparison import CONFUSION_IMAGE, load_comparison
from bot.core.training.inbox import (
    collect_candidates,
    item_as_dict,
    open_items,
    sync_inbox,
    tracker_url,
)
from bot.core.training.intents import choice_list, entity_list, nlu_dir
from bot.core.training.labelling import LabelError, discard_item, label_item, unwritten_count

trainer_user = require_role("trainer")
router = APIRouter(prefix="/console/trainer")


class EntitySpan(BaseModel):
    start: int
    end: int
    entity: str
    value: Optional[str] = None


class LabelRequest(BaseModel):
    item_id: int = Field(..., ge=1, le=MAX_ROW_ID)
    intent: str
    entities: List[EntitySpan] = []
    patch: bool = False


class DiscardRequest(BaseModel):
    item_id: int = Field(..., ge=1, le=MAX_ROW_ID)
    reason: str = "noise"


def _url(request: Request) -> str:
    return request.app.state.settings.database_url


@router.get("", response_class=HTMLResponse)
def page(request: Request, user: Principal = Depends(trainer_user)) -> HTMLResponse:
    """The inbox page (the list is loaded by static/console/trainer.js)."""
    return render(
        request,
        "trainer.html",
        {"user": user, "comparison": load_comparison(), "has_image": CONFUSION_IMAGE.exists()},
    )


@router.get("/api/inbox")
async def inbox(
    request: Request, refresh: bool = False, user: Principal = Depends(trainer_user)
) -> Dict[str, Any]:
    """Open inbox items (after collecting from the tracker store when `refresh`)."""

    def load() -> Dict[str, Any]:
        candidates = collect_candidates(tracker_url()) if refresh else []
        with session_scope(_url(request)) as session:
            sync_inbox(session, candidates)
            return {
                "items": [item_as_dict(item) for item in open_items(session)],
                "unwritten": unwritten_count(session),
            }

    try:
        loaded = await run_in_threadpool(load)
    except Exception as error:  # e.g. no tracker store yet: say so, don't 500
        raise HTTPException(
            status_code=503, detail=f"无法读取对话记录：{type(error).__name__}"
        ) from error
    return {**loaded, "intents": choice_list(), "entities": entity_list()}


@router.post("/api/label")
def label(
    body: LabelRequest, request: Request, user: Principal = Depends(trainer_user)
) -> JSONResponse:
    """Label one item: pseudonymise, record, write to its area file (or return the patch)."""
    try:
        with session_scope(_url(request)) as session:
            result = label_item(
                session,
                body.item_id,
                body.intent,
                [e.dict() for e in body.entities],
                user.username,
                nlu_dir(),
                patch_only=body.patch,
            )
    except LabelError as error:
        raise HTTPException(status_code=422, detail=str(error)) from error
    answer = {
        "item_id": result.item_id,
        "example": result.example,
        "data_file": result.data_file,
        "patch": result.patch,
        "written": result.written,
        "write_error": result.write_error,
        "message": result.message,
    }
    recorded_not_written = result.patch is None and not result.written
    return JSONResponse(answer, status_code=202 if recorded_not_written else 200)


@router.post("/api/discard")
def discard(
    body: DiscardRequest, request: Request, user: Principal = Depends(trainer_user)
) -> Dict[str, Any]:
    """Drop one item from the inbox (noise, personal data, duplicate)."""
    try:
        with session_scope(_url(request)) as session:
            discard_item(session, body.item_id, body.reason, user.username)
    except LabelError as error:
        raise HTTPException(status_code=422, detail=str(error)) from error
    return {"item_id": body.item_id, "status": "discarded"}


@router.get("/api/compare")
def compare(user: Principal = Depends(trainer_user)) -> Dict[str, Any]:
    """The last model comparison, or 404 when none was run."""
    comparison = load_comparison()
    if comparison is None:
        raise HTTPException(
            status_code=404, detail="还没有模型对比结果：python -m bot trainer compare"
        )
    return comparison


@router.get("/compare.png")
def compare_image(user: Principal = Depends(trainer_user)) -> FileResponse:
    if not CONFUSION_IMAGE.exists():
        raise HTTPException(status_code=404, detail="no confusion matrix yet")
    return FileResponse(CONFUSION_IMAGE, media_type="image/png")
