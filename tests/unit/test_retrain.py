"""The trainer's retrain runs: one at a time, judged by the margins, live and rolled back.

On SQLite and PostgreSQL; model servers are stand-in loaders here (the real Rasa server is in
tests/e2e/test_retrain_e2e.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
from sqlalchemy import select

from bot.core.clock import utc_now
from bot.core.db import session_scope
from bot.core.settings import RetrainConfig
from bot.core.training.retrain import (
    BUSY,
    ModelChange,
    RetrainError,
    RetrainRun,
    expire_stale,
    fail_run,
    finish_run,
    go_live,
    judge,
    overview,
    report_progress,
    roll_back,
    start_run,
)

T0 = datetime(2026, 11, 27, 2, 0)


def comparison(
    old: float = 0.95, new: float = 0.96, intents: Optional[Dict[str, tuple]] = None
) -> Dict[str, Any]:
    rows = [
        {"intent": name, "old_f1": before, "new_f1": after, "delta": after - before, "support": 9}
        for name, (before, after) in (intents or {"greet": (0.9, 0.95)}).items()
    ]
    return {
        "data": "holdout.yml",
        "old_model": "old",
        "new_model": "new",
        "old": {"accuracy": old, "macro_f1": old, "fallback_rate": 0.0, "examples": 50},
        "new": {"accuracy": new, "macro_f1": new, "fallback_rate": 0.0, "examples": 50},
        "per_intent": rows,
    }


@pytest.fixture
def config(tmp_path: Path) -> RetrainConfig:
    models = tmp_path / "models"
    models.mkdir()
    (models / "intake.tar.gz").write_text("model 0")
    return RetrainConfig(
        models_dir=models,
        live_model=models / "intake.tar.gz",
        overall_margin=0.005,
        intent_margin=0.05,
        stale_after_s=120,
    )


def ready_run(url: str, config: RetrainConfig, content: str, user: str = "trainer1") -> int:
    """A run trained (its candidate file holds `content`) and judged ready."""
    candidate = config.path("models_dir") / "candidates" / f"{content}.tar.gz"
    candidate.parent.mkdir(exist_ok=True)
    candidate.write_text(content)
    with session_scope(url) as session:
        run_id = start_run(session, user, utc_now(), config).id
    with session_scope(url) as session:
        report_progress(
            session,
            run_id,
            "evaluating",
            "评估新模型",
            0.8,
            utc_now(),
            candidate_path=str(candidate),
        )
        assert finish_run(session, run_id, comparison(), config, utc_now()).ok
    return run_id


class Servers:
    """Stand-ins for Rasa servers: what each was told to load; one can be made to refuse."""

    def __init__(self, count: int, refuse_at: Optional[int] = None) -> None:
        self.loaded: List[List[str]] = [[] for _ in range(count)]
        self.refuse_at = refuse_at

    def loaders(self) -> List[Callable[[str], None]]:
        def loader(index: int) -> Callable[[str], None]:
            def load(path: str) -> None:
                if index == self.refuse_at:
                    raise RuntimeError("HTTP 500 LoadingError")
                self.loaded[index].append(Path(path).read_text())

            return load

        return [loader(i) for i in range(len(self.loaded))]


def statuses(url: str) -> Dict[int, str]:
    with session_scope(url) as session:
        return {r.id: r.status for r in session.scalars(select(RetrainRun))}


def actions(url: str) -> List[tuple]:
    with session_scope(url) as session:
        return [
            (c.run_id, c.action, c.actor)
            for c in session.scalars(select(ModelChange).order_by(ModelChange.id))
        ]


# ------------------------------------------------------------------ judging


def test_a_candidate_within_the_margins_may_go_live() -> None:
    config = RetrainConfig(overall_margin=0.005, intent_margin=0.05)
    assert judge(comparison(0.95, 0.95), config).ok
    assert judge(comparison(0.95, 0.946), config).ok  # 0.004 worse: inside the margin
    # an intent the serving model did not know: 0 → 0.9 is better, not worse
    assert judge(comparison(intents={"new_business": (0.0, 0.9)}), config).ok
    assert judge(comparison(intents={"greet": (0.9, 0.86)}), config).ok  # 0.04 < 0.05


def test_worse_overall_or_on_one_intent_is_rejected_with_the_reason() -> None:
    config = RetrainConfig(overall_margin=0.005, intent_margin=0.05)
    overall = judge(comparison(0.95, 0.94), config)
    assert not overall.ok
    assert overall.reasons == [
        "准确率下降 0.010（允许 0.005）",
        "macro-F1下降 0.010（允许 0.005）",
    ]
    one = judge(comparison(intents={"greet": (0.9, 0.95), "report_outage": (0.97, 0.9)}), config)
    assert not one.ok
    assert one.reasons == ["意图 report_outage 的 F1 下降 0.070（允许 0.050）"]
    # zero margins: better everywhere still passes
    assert judge(comparison(), RetrainConfig(overall_margin=0.0, intent_margin=0.0)).ok


# ------------------------------------------------------------------ one at a time, progress, stale


def test_one_run_at_a_time(db_url: str, config: RetrainConfig) -> None:
    with session_scope(db_url) as session:
        first = start_run(session, "trainer1", utc_now(), config).id
    with pytest.raises(RetrainError, match=BUSY):
        with session_scope(db_url) as session:
            start_run(session, "trainer2", utc_now(), config)
    with session_scope(db_url) as session:
        assert report_progress(
            session, first, "training", "训练中：已完成 3 个组件", 0.3, utc_now()
        )
    with session_scope(db_url) as session:
        fail_run(session, first, "rasa train 失败（退出码 1）", utc_now())
    with session_scope(db_url) as session:  # the slot is free again
        second = start_run(session, "trainer2", utc_now(), config).id
    assert statuses(db_url) == {first: "failed", second: "queued"}
    assert actions(db_url) == [
        (first, "requested", "trainer1"),
        (first, "failed", "system"),
        (second, "requested", "trainer2"),
    ]


def test_a_worker_that_stops_reporting_is_recorded_failed(
    db_url: str, config: RetrainConfig
) -> None:
    with session_scope(db_url) as session:
        run_id = start_run(session, "trainer1", T0, config).id
    with session_scope(db_url) as session:
        assert report_progress(
            session, run_id, "training", "训练中", 0.2, T0 + timedelta(seconds=100)
        )
    with session_scope(db_url) as session:  # 119 s after the last report: still working
        assert expire_stale(session, T0 + timedelta(seconds=219), config) == []
    with session_scope(db_url) as session:
        assert expire_stale(session, T0 + timedelta(seconds=221), config) == [run_id]
    with session_scope(db_url) as session:
        run = session.get(RetrainRun, run_id)
        assert (run.status, run.active) == ("failed", None)
        assert run.error == "训练进程超过 120 秒没有进展"
        # the worker, late, learns it should stop; its result is not taken
        assert not report_progress(session, run_id, "evaluating", "评估新模型", 0.8, utc_now())
    with pytest.raises(RetrainError):
        with session_scope(db_url) as session:
            finish_run(session, run_id, comparison(), config, utc_now())
    with session_scope(db_url) as session:
        start_run(session, "trainer1", T0 + timedelta(seconds=300), config)


def test_finish_records_the_figures_and_the_verdict(db_url: str, config: RetrainConfig) -> None:
    with session_scope(db_url) as session:
        run_id = start_run(session, "trainer1", utc_now(), config).id
    worse = comparison(0.95, 0.90)
    with session_scope(db_url) as session:
        verdict = finish_run(session, run_id, worse, config, utc_now())
    assert not verdict.ok
    with session_scope(db_url) as session:
        state = overview(session, config)
    run = state["runs"][0]
    assert (run["status"], run["status_label"], run["can_go_live"]) == ("rejected", "未通过", False)
    assert run["figures"]["new"]["accuracy"] == 0.90 and run["progress"] == 1.0
    assert run["verdict"]["reasons"][0].startswith("准确率下降 0.050")
    assert state["working"] is None and state["live"] is None
    assert state["history"][0]["action_label"] == "评估完成"
    with pytest.raises(RetrainError, match="只有评估通过的模型才能上线"):
        go_live(db_url, run_id, "trainer1", Servers(1).loaders(), config)


# ------------------------------------------------------------------ live and back


def test_go_live_keeps_the_previous_model_and_roll_back_restores_it(
    db_url: str, config: RetrainConfig
) -> None:
    live = config.path("live_model")
    servers = Servers(2)
    first = ready_run(db_url, config, "model 1")
    go_live(db_url, first, "trainer1", servers.loaders(), config)
    assert servers.loaded == [["model 1"], ["model 1"]]
    assert live.read_text() == "model 1"  # a restarted server keeps it
    second = ready_run(db_url, config, "model 2", user="trainer2")
    go_live(db_url, second, "trainer2", servers.loaders(), config)
    assert statuses(db_url) == {first: "replaced", second: "live"}
    assert live.read_text() == "model 2"

    assert roll_back(db_url, "trainer1", servers.loaders(), config) == second
    assert servers.loaded == [["model 1", "model 2", "model 1"]] * 2
    assert live.read_text() == "model 1"
    assert statuses(db_url) == {first: "live", second: "rolled_back"}
    # and once more: back to the model that was serving before the first run
    assert roll_back(db_url, "trainer1", servers.loaders(), config) == first
    assert live.read_text() == "model 0" and servers.loaded[0][-1] == "model 0"
    with pytest.raises(RetrainError, match="没有可以回退的模型"):
        roll_back(db_url, "trainer1", servers.loaders(), config)
    assert [a for a in actions(db_url) if a[1] in ("live", "rolled_back")] == [
        (first, "live", "trainer1"),
        (second, "live", "trainer2"),
        (second, "rolled_back", "trainer1"),
        (first, "rolled_back", "trainer1"),
    ]
    with pytest.raises(RetrainError, match="只有评估通过的模型才能上线"):  # no second go-live
        go_live(db_url, second, "trainer2", servers.loaders(), config)


def test_a_server_that_refuses_leaves_everything_as_it_was(
    db_url: str, config: RetrainConfig
) -> None:
    live = config.path("live_model")
    servers = Servers(2, refuse_at=1)
    run_id = ready_run(db_url, config, "model 1")
    with pytest.raises(RetrainError, match="模型加载失败（第 2/2 台服务器）"):
        go_live(db_url, run_id, "trainer1", servers.loaders(), config)
    # the first server got the serving model back; the live file never changed
    assert servers.loaded[0] == ["model 1", "model 0"]
    assert live.read_text() == "model 0"
    assert statuses(db_url) == {run_id: "ready"}
    assert actions(db_url)[-1] == (run_id, "live_failed", "trainer1")
    # nothing is left holding the slot: it can be tried again, or a new run started
    go_live(db_url, run_id, "trainer1", Servers(2).loaders(), config)
    assert live.read_text() == "model 1"


def test_a_missing_candidate_file_is_refused(db_url: str, config: RetrainConfig) -> None:
    run_id = ready_run(db_url, config, "model 1")
    (config.path("models_dir") / "candidates" / "model 1.tar.gz").unlink()
    servers = Servers(1)
    with pytest.raises(RetrainError, match="候选模型文件不见了"):
        go_live(db_url, run_id, "trainer1", servers.loaders(), config)
    assert servers.loaded == [[]] and statuses(db_url) == {run_id: "ready"}


def test_a_model_goes_live_on_every_rasa_server_of_the_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.core.settings import load_settings
    from bot.tools.runner import ProductionStack

    monkeypatch.delenv("INTAKE_RASA_SERVER_URLS", raising=False)
    stack = ProductionStack(load_settings(rasa_port=5105), servers=2)
    urls = stack.environment("console")["INTAKE_RASA_SERVER_URLS"]
    assert urls == "http://127.0.0.1:5105,http://127.0.0.1:5106"
    listed = load_settings(rasa_server_urls_env=" http://a:1/, http://b:2 ")
    assert listed.rasa_server_urls == ["http://a:1", "http://b:2"]
    assert load_settings(rasa_url_override="http://x:9").rasa_server_urls == ["http://x:9"]
