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
* ``GET  /console/trainer/api/retrain`` → ``{runs, working, live, history, margins}``
  (bot/core/training/retrain.py); ``POST`` → 「训练新模型」: records a run and starts its worker
  (``python -m bot trainer retrain --run N``) in the background, 202, or 409 while another
  model operation is under way
* ``POST /console/trainer/api/retrain/{run_id}/live`` → 「上线」 (only a run judged ready; every
  Rasa server loads it); ``POST /console/trainer/api/retrain/rollback`` → 「回退」. 409 with
  the reason when it cannot be done.

Signed-in users with the ``trainer`` role (or admin) only; POSTs carry the CSRF header.
Labels are written to data/nlu (INTAKE_NLU_DIR to point at a scratch copy).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any, Callable, Dict, List, Optional

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bot.console.api import MAX_ROW_ID
from bot.console.auth import Principal, require_role
from bot.console.templating import render
from bot.core.clock import utc_now
from bot.core.db import session_scope
from bot.core.settings import PROJECT_ROOT, Settings
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
from bot.core.training.retrain import (
    RetrainError,
    fail_run,
    go_live,
    overview,
    rasa_loaders,
    roll_back,
    start_run,
)

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


# ------------------------------------------------------------------ 训练新模型 / 上线 / 回退


def start_worker(settings: Settings, run_id: int) -> None:
    """Start the retrain worker of `run_id` in its own process (its output: var/retrain/)."""
    out = settings.var_dir / "retrain" / f"run-{run_id}.out"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "trainer", "retrain", "--run", str(run_id)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a console restart does not stop a training
        )
    threading.Thread(target=process.wait, name=f"retrain-{run_id}", daemon=True).start()


def _retrain_state(settings: Settings) -> Dict[str, Any]:
    config = settings.trainer.retrain
    with session_scope(settings.database_url) as session:
        state = overview(session, config)
    state["margins"] = {"overall": config.overall_margin, "intent": config.intent_margin}
    return state


def _worker_starter(request: Request) -> Callable[[Settings, int], None]:
    return getattr(request.app.state, "retrain_worker", None) or start_worker


@router.get("/api/retrain")
def retrain_state(request: Request, user: Principal = Depends(trainer_user)) -> Dict[str, Any]:
    """Recent runs, the one working and the live one, and the history."""
    return _retrain_state(request.app.state.settings)


@router.post("/api/retrain", status_code=202)
def retrain_start(request: Request, user: Principal = Depends(trainer_user)) -> Dict[str, Any]:
    """「训练新模型」: record a run and start its worker."""
    settings: Settings = request.app.state.settings
    try:
        with session_scope(settings.database_url) as session:
            run_id = start_run(session, user.username, utc_now(), settings.trainer.retrain).id
    except RetrainError as error:
        raise HTTPException(status_code=409, detail=str(error)) from error
    try:
        _worker_starter(request)(settings, run_id)
    except Exception as error:
        with session_scope(settings.database_url) as session:
            fail_run(session, run_id, f"无法启动训练：{type(error).__name__}", utc_now())
        raise HTTPException(status_code=500, detail="无法启动训练，请联系运维。") from error
    return _retrain_state(settings)


async def _model_step(settings: Settings, step: Callable[..., Any], *args: Any) -> Dict[str, Any]:
    """Run 「上线」 or 「回退」 (it loads a model into every Rasa server: up to a minute) in a
    worker thread; 409 with the reason when it cannot be done; then the page's state."""
    try:
        await run_in_threadpool(
            step,
            settings.database_url,
            *args,
            rasa_loaders(settings),
            settings.trainer.retrain,
        )
    except RetrainError as error:
        raise HTTPException(status_code=409, detail=str(error)) from error
    return await run_in_threadpool(_retrain_state, settings)


@router.post("/api/retrain/{run_id}/live")
async def retrain_go_live(
    run_id: int, request: Request, user: Principal = Depends(trainer_user)
) -> Dict[str, Any]:
    """「上线」: every Rasa server loads the run's model."""
    if not 1 <= run_id <= MAX_ROW_ID:
        raise HTTPException(status_code=404, detail="没有这次训练")
    return await _model_step(request.app.state.settings, go_live, run_id, user.username)


@router.post("/api/retrain/rollback")
async def retrain_roll_back(
    request: Request, user: Principal = Depends(trainer_user)
) -> Dict[str, Any]:
    """「回退」: every Rasa server goes back to the model the live one replaced."""
    return await _model_step(request.app.state.settings, roll_back, user.username)
