"""The trainer's retrain: a candidate model trained in the background, judged, put live, rolled back.

A *run* goes ``queued → training → evaluating → ready | rejected | failed``; a ready run can go
``live`` (the run that was live becomes ``replaced``), and the live run can be ``rolled_back``
(the run it replaced is live again). Every step is a row of the history (who, when, figures).

One model operation at a time: a run holds ``active = 1`` while it trains, evaluates, goes live
or is rolled back, and a unique index on ``active`` refuses a second one, in any number of
console processes (SQLite and PostgreSQL both allow many NULLs under a unique index). A worker
that stops reporting for ``retrain.stale_after_s`` is recorded as failed, so a crash never
blocks the button for good.

The worker (``python -m bot trainer retrain --run N``, bot/tools/trainer/retrain.py) trains and
evaluates and reports here; the console starts it and reads the runs. Going live and rolling
back load the model into every Rasa server through `loaders` (``PUT /model``, see
bot/core/rasa_api.py) and then replace ``retrain.live_model``, the file the runner starts Rasa
with, so a restarted server keeps the model that is live.

    run = start_run(session, "trainer1", utc_now(), config)    # RetrainError when one is running
    judge(comparison, RetrainConfig())                          # Verdict(ok, reasons)
    go_live(url, run.id, "trainer1", loaders, config)           # RetrainError with the reason
    roll_back(url, "trainer1", loaders, config)
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.clock import iso_local, to_utc_naive, utc_now
from bot.core.db import Base, session_scope, sql_in
from bot.core.rasa_api import RasaClient
from bot.core.settings import RetrainConfig, Settings

logger = logging.getLogger(__name__)

RUN_STATUSES = (
    "queued",
    "training",
    "evaluating",
    "ready",
    "rejected",
    "failed",
    "live",
    "replaced",
    "rolled_back",
)
WORKING = ("queued", "training", "evaluating")
STATUS_LABELS = {
    "queued": "排队中",
    "training": "训练中",
    "evaluating": "评估中",
    "ready": "可上线",
    "rejected": "未通过",
    "failed": "失败",
    "live": "在用",
    "replaced": "已替换",
    "rolled_back": "已回退",
}
ACTION_LABELS = {
    "requested": "开始训练",
    "evaluated": "评估完成",
    "failed": "训练失败",
    "live": "上线",
    "live_failed": "上线失败",
    "rolled_back": "回退",
    "rollback_failed": "回退失败",
}
BUSY = "已有模型在训练、上线或回退，请等它完成后再试。"

# A model loader puts one model file into one Rasa server (raises when the server refuses).
ModelLoader = Callable[[str], None]


class RetrainError(RuntimeError):
    """A retrain step that cannot be done; the message is for the trainer (Chinese)."""


class RetrainRun(Base):
    """One candidate model: trained, judged against the serving model, maybe put live."""

    __tablename__ = "trainer_retrain_runs"
    __table_args__ = (
        CheckConstraint(sql_in("status", RUN_STATUSES), name="status"),
        CheckConstraint("active IS NULL OR active = 1", name="active_one"),
    )

    id = Column(Integer, primary_key=True)
    status = Column(String(16), nullable=False, index=True)
    active = Column(Integer, unique=True)  # 1 while an operation holds it, else NULL
    requested_by = Column(String(64), nullable=False)
    requested_at = Column(DateTime, nullable=False)
    heartbeat_at = Column(DateTime)  # the worker's last report
    finished_at = Column(DateTime)  # trained and judged (or failed)
    stage = Column(String(200), nullable=False, default="")  # what the trainer reads now
    progress = Column(Float, nullable=False, default=0.0)  # 0–1
    train_steps = Column(Integer)  # components trained (the next run's progress estimate)
    candidate_path = Column(Text)
    serving_path = Column(Text)  # the model it was compared with
    figures = Column(JSON)  # bot.core.training.comparison.Comparison.as_dict()
    verdict = Column(JSON)  # {"ok": bool, "reasons": [...]}
    error = Column(Text)
    live_at = Column(DateTime)
    live_by = Column(String(64))
    previous_path = Column(Text)  # a copy of the live file it replaced (what 「回退」 restores)
    replaced_run_id = Column(Integer)  # the run that was live before it, if any


class ModelChange(Base):
    """The history of the trainer's models: requested, trained, judged, live, rolled back."""

    __tablename__ = "trainer_model_history"

    id = Column(Integer, primary_key=True)
    run_id = Column(
        Integer, ForeignKey("trainer_retrain_runs.id", ondelete="CASCADE"), nullable=False
    )
    action = Column(String(32), nullable=False)
    actor = Column(String(64), nullable=False)
    at = Column(DateTime, nullable=False, index=True)
    detail = Column(JSON, nullable=False, default=dict)


@dataclass
class Verdict:
    ok: bool
    reasons: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return {"ok": self.ok, "reasons": list(self.reasons)}


def judge(comparison: Mapping[str, Any], config: RetrainConfig) -> Verdict:
    """May the candidate go live? Not when accuracy or macro-F1, or any intent's F1, is worse
    than the serving model's by more than the configured margins."""
    reasons: List[str] = []
    old, new = comparison.get("old") or {}, comparison.get("new") or {}
    for key, label in (("accuracy", "准确率"), ("macro_f1", "macro-F1")):
        drop = float(old.get(key, 0.0)) - float(new.get(key, 0.0))
        if drop > config.overall_margin + 1e-9:
            reasons.append(f"{label}下降 {drop:.3f}（允许 {config.overall_margin:.3f}）")
    for row in comparison.get("per_intent") or []:
        drop = float(row.get("old_f1", 0.0)) - float(row.get("new_f1", 0.0))
        if drop > config.intent_margin + 1e-9:
            reasons.append(
                f"意图 {row['intent']} 的 F1 下降 {drop:.3f}（允许 {config.intent_margin:.3f}）"
            )
    return Verdict(not reasons, reasons)


def _record(
    session: Session, run_id: int, action: str, actor: str, at: datetime, **detail: Any
) -> None:
    session.add(ModelChange(run_id=run_id, action=action, actor=actor, at=at, detail=detail))


def _move(session: Session, run_id: int, when_status: Sequence[str] = (), **values: Any) -> int:
    """Set `values` on run `run_id` — only while its status is one of `when_status`, if any
    are given (one conditional UPDATE); the rows moved (0 or 1)."""
    query = update(RetrainRun).where(RetrainRun.id == run_id)
    if when_status:
        query = query.where(RetrainRun.status.in_(tuple(when_status)))
    moved = session.execute(query.values(**values).execution_options(synchronize_session=False))
    return int(moved.rowcount)


def expire_stale(session: Session, now: datetime, config: RetrainConfig) -> List[int]:
    """Record as failed every working run whose worker has not reported in time."""
    now = to_utc_naive(now)
    limit = now - timedelta(seconds=config.stale_after_s)
    stale = session.scalars(select(RetrainRun).where(RetrainRun.status.in_(WORKING))).all()
    expired = []
    for run in stale:
        last = run.heartbeat_at or run.requested_at
        if last >= limit:
            continue
        moved = _move(
            session,
            run.id,
            WORKING,
            status="failed",
            active=None,
            finished_at=now,
            stage="训练进程中断",
            error=f"训练进程超过 {config.stale_after_s:.0f} 秒没有进展",
        )
        if moved:
            _record(session, run.id, "failed", "system", now, error="stale")
            expired.append(run.id)
    return expired


def start_run(session: Session, user: str, now: datetime, config: RetrainConfig) -> RetrainRun:
    """A new queued run, or RetrainError when another model operation is under way."""
    now = to_utc_naive(now)
    expire_stale(session, now, config)
    run = RetrainRun(
        status="queued",
        active=1,
        requested_by=user,
        requested_at=now,
        heartbeat_at=now,
        stage="排队中",
        progress=0.0,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError as error:
        raise RetrainError(BUSY) from error
    _record(session, run.id, "requested", user, now)
    return run


def report_progress(
    session: Session,
    run_id: int,
    status: str,
    stage: str,
    progress: float,
    now: datetime,
    **values: Any,
) -> bool:
    """The worker's report (training or evaluating); False when the run is no longer working
    (expired as stale), so the worker stops."""
    now = to_utc_naive(now)
    if status not in ("training", "evaluating"):
        raise ValueError(status)
    moved = _move(
        session,
        run_id,
        WORKING,
        status=status,
        stage=stage[:200],
        progress=max(0.0, min(1.0, progress)),
        heartbeat_at=now,
        **values,
    )
    return bool(moved)


def finish_run(
    session: Session,
    run_id: int,
    comparison: Mapping[str, Any],
    config: RetrainConfig,
    now: datetime,
) -> Verdict:
    """Judge the evaluated candidate: ready (「上线」 offered) or rejected, with the reasons."""
    now = to_utc_naive(now)
    verdict = judge(comparison, config)
    status = "ready" if verdict.ok else "rejected"
    moved = _move(
        session,
        run_id,
        WORKING,
        status=status,
        active=None,
        finished_at=now,
        heartbeat_at=now,
        progress=1.0,
        stage="评估完成，可以上线" if verdict.ok else "评估完成，未通过",
        figures=dict(comparison),
        verdict=verdict.as_dict(),
    )
    if not moved:
        raise RetrainError("这次训练已被记为中断，结果没有保存。")
    _record(
        session,
        run_id,
        "evaluated",
        "system",
        now,
        verdict=verdict.as_dict(),
        old=dict(comparison.get("old") or {}),
        new=dict(comparison.get("new") or {}),
    )
    return verdict


def fail_run(session: Session, run_id: int, error: str, now: datetime) -> None:
    """The worker could not train or evaluate: failed, with why."""
    now = to_utc_naive(now)
    moved = _move(
        session,
        run_id,
        WORKING,
        status="failed",
        active=None,
        finished_at=now,
        stage="训练失败",
        error=error[:4000],
    )
    if moved:
        _record(session, run_id, "failed", "system", now, error=error[:500])


def previous_steps(session: Session) -> Optional[int]:
    """How many components the last finished training had (the progress estimate)."""
    return session.scalar(
        select(RetrainRun.train_steps)
        .where(RetrainRun.train_steps.is_not(None))
        .order_by(RetrainRun.id.desc())
        .limit(1)
    )


# ------------------------------------------------------------------ going live, rolling back


def rasa_loaders(settings: Settings) -> List[ModelLoader]:
    """One loader per Rasa server (INTAKE_RASA_SERVER_URLS), in order."""
    timeout = settings.trainer.retrain.load_timeout_s
    return [
        RasaClient(settings, base_url=url, timeout_s=timeout).load_model
        for url in settings.rasa_server_urls
    ]


def _claim(url: str, run_id: int, status: str, refusal: str, config: RetrainConfig) -> None:
    """Take the one-operation slot for `run_id` while it has `status`."""
    with session_scope(url) as session:
        expire_stale(session, utc_now(), config)
        try:
            with session.begin_nested():
                moved = session.execute(
                    update(RetrainRun)
                    .where(
                        RetrainRun.id == run_id,
                        RetrainRun.status == status,
                        RetrainRun.active.is_(None),
                    )
                    .values(active=1)
                    .execution_options(synchronize_session=False)
                ).rowcount
        except IntegrityError as error:
            raise RetrainError(BUSY) from error
        if not moved:
            raise RetrainError(refusal)


def _release(url: str, run_id: int, action: str, actor: str, **detail: Any) -> None:
    with session_scope(url) as session:
        _move(session, run_id, active=None)
        _record(session, run_id, action, actor, to_utc_naive(utc_now()), **detail)


def _load_everywhere(loaders: Sequence[ModelLoader], model: str, fallback: Optional[str]) -> None:
    """Load `model` into every server; when one refuses, put `fallback` back into those done."""
    done: List[ModelLoader] = []
    for loader in loaders:
        try:
            loader(model)
        except Exception as error:
            for undo in done:
                if fallback is None:
                    break
                try:
                    undo(fallback)
                except Exception:  # already failing: say the first error, log the second
                    logger.exception("could not put the previous model back")
            raise RetrainError(
                f"模型加载失败（第 {len(done) + 1}/{len(loaders)} 台服务器）：{error}"
            ) from error
        done.append(loader)


def _replace_file(source: Path, target: Path) -> None:
    """Copy `source` over `target` atomically (a copy beside it, then a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def go_live(
    url: str, run_id: int, user: str, loaders: Sequence[ModelLoader], config: RetrainConfig
) -> None:
    """Put a ready candidate live on every Rasa server; the model it replaces is kept for
    「回退」. When a server refuses, the others get the serving model back and nothing changes."""
    _claim(url, run_id, "ready", "只有评估通过的模型才能上线。", config)
    with session_scope(url) as session:
        run = session.get(RetrainRun, run_id)
        candidate = Path(run.candidate_path or "") if run else Path()
        serving = session.scalar(select(RetrainRun).where(RetrainRun.status == "live"))
        replaced_run_id = serving.id if serving else None
    live = config.path("live_model")
    previous: Optional[Path] = None
    try:
        if not candidate.is_file():
            raise RetrainError("候选模型文件不见了，请重新训练。")
        if live.is_file():
            previous = config.path("models_dir") / "previous" / f"before-run-{run_id}.tar.gz"
            _replace_file(live, previous)
        _load_everywhere(loaders, str(candidate), str(live) if live.is_file() else None)
        _replace_file(candidate, live)
    except RetrainError as error:
        _release(url, run_id, "live_failed", user, error=str(error))
        raise
    now = to_utc_naive(utc_now())
    with session_scope(url) as session:
        if replaced_run_id is not None:
            _move(session, replaced_run_id, ("live",), status="replaced")
        _move(
            session,
            run_id,
            status="live",
            active=None,
            live_at=now,
            live_by=user,
            previous_path=str(previous) if previous else None,
            replaced_run_id=replaced_run_id,
        )
        _record(session, run_id, "live", user, now, servers=len(loaders))
    logger.info("run %s is live on %d server(s)", run_id, len(loaders))


def roll_back(url: str, user: str, loaders: Sequence[ModelLoader], config: RetrainConfig) -> int:
    """Put back the model the live run replaced (on every server and in the live file);
    the run it replaced, if any, is live again. Returns the rolled-back run's id."""
    with session_scope(url) as session:
        run = session.scalar(select(RetrainRun).where(RetrainRun.status == "live"))
        if run is None or not run.previous_path:
            raise RetrainError("没有可以回退的模型。")
        run_id, previous, candidate = run.id, Path(run.previous_path), run.candidate_path
        replaced_run_id = run.replaced_run_id
    _claim(url, run_id, "live", "没有可以回退的模型。", config)
    try:
        if not previous.is_file():
            raise RetrainError("之前的模型文件不见了，无法回退。")
        _load_everywhere(loaders, str(previous), candidate)
        _replace_file(previous, config.path("live_model"))
    except RetrainError as error:
        _release(url, run_id, "rollback_failed", user, error=str(error))
        raise
    now = to_utc_naive(utc_now())
    with session_scope(url) as session:
        _move(session, run_id, status="rolled_back", active=None)
        if replaced_run_id is not None:
            _move(session, replaced_run_id, ("replaced",), status="live")
        _record(session, run_id, "rolled_back", user, now, restored=replaced_run_id)
    logger.info("run %s rolled back on %d server(s)", run_id, len(loaders))
    return run_id


# ------------------------------------------------------------------ what the page shows


def run_as_dict(run: RetrainRun) -> Dict[str, Any]:
    """One run as the trainer page's JSON."""
    return {
        "id": run.id,
        "status": run.status,
        "status_label": STATUS_LABELS.get(run.status, run.status),
        "working": run.status in WORKING,
        "requested_by": run.requested_by,
        "requested_at": iso_local(run.requested_at),
        "finished_at": iso_local(run.finished_at),
        "stage": run.stage,
        "progress": round(run.progress or 0.0, 3),
        "figures": run.figures,
        "verdict": run.verdict,
        "error": run.error,
        "live_at": iso_local(run.live_at),
        "live_by": run.live_by,
        "can_go_live": run.status == "ready",
        "can_roll_back": run.status == "live" and bool(run.previous_path),
    }


def overview(session: Session, config: RetrainConfig, limit: int = 10) -> Dict[str, Any]:
    """Recent runs, the working and the live one, and the latest history lines."""
    expire_stale(session, utc_now(), config)
    runs = session.scalars(select(RetrainRun).order_by(RetrainRun.id.desc()).limit(limit)).all()
    changes = session.scalars(
        select(ModelChange).order_by(ModelChange.id.desc()).limit(limit * 3)
    ).all()
    working = next((r for r in runs if r.status in WORKING), None)
    live = session.scalar(select(RetrainRun).where(RetrainRun.status == "live"))
    return {
        "runs": [run_as_dict(r) for r in runs],
        "working": run_as_dict(working) if working else None,
        "live": run_as_dict(live) if live else None,
        "history": [
            {
                "run_id": c.run_id,
                "action": c.action,
                "action_label": ACTION_LABELS.get(c.action, c.action),
                "actor": c.actor,
                "at": iso_local(c.at),
                "detail": c.detail,
            }
            for c in changes
        ],
    }
