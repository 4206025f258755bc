"""The retrain worker: train a candidate, evaluate it and the serving model, judge it.

The console's 「训练新模型」 records a run (bot/core/training/retrain.py) and starts this in its
own process; an operator can run it in a terminal too:

    python -m bot trainer retrain            # records a run, trains, evaluates, judges
    python -m bot trainer retrain --run 7    # the console's: carry out run 7

Training is ``rasa train`` of config/trainer.yml `retrain` (config, domain, data) into
``models_dir/candidates/run-N.tar.gz``; its log is var/retrain/run-N.log. Progress is the
share of components trained (the previous run's count is the estimate), then the two
evaluations on the holdout (bot.tools.evaluation, the figures `make evaluate` prints). A
heartbeat reports every few seconds; when the run is no longer working (recorded as stale)
the worker stops its training.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, List, Optional

import yaml

from bot.core.clock import utc_now
from bot.core.db import session_scope
from bot.core.settings import PROJECT_ROOT, RetrainConfig, Settings
from bot.core.training.comparison import compare_metrics
from bot.core.training.retrain import (
    fail_run,
    finish_run,
    previous_steps,
    report_progress,
    start_run,
)

HEARTBEAT_S = 5.0
# rasa.engine.training.hooks logs one of these per trainable component (cached or trained)
STEP_LINES = ("Finished training component", "from cache.")
# training is this share of the bar, the two evaluations the rest
TRAIN_SHARE = 0.8
NO_MODEL = SimpleNamespace(accuracy=0.0, macro_f1=0.0, fallback_rate=0.0, examples=0, per_intent={})


def estimated_steps(config_file: Path) -> int:
    """Components in the pipeline and policies: the first run's estimate of its steps."""
    spec = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    return max(1, len(spec.get("pipeline") or []) + len(spec.get("policies") or []))


def train_command(config: RetrainConfig, out_dir: Path, name: str) -> List[str]:
    """`rasa train` of the configured data into out_dir/name.tar.gz."""
    return [
        sys.executable,
        "-m",
        "rasa",
        "train",
        "--config",
        str(config.path("config")),
        "--domain",
        str(config.path("domain")),
        "--data",
        str(config.path("data")),
        "--out",
        str(out_dir),
        "--fixed-model-name",
        name,
    ]


@dataclass
class Worker:
    """Carries out one run, reporting to the database at `url`."""

    url: str
    run_id: int
    config: RetrainConfig
    log_file: Path
    status: str = "training"
    stage: str = "训练中"
    progress: float = 0.0
    steps_done: int = 0
    stopped: threading.Event = field(default_factory=threading.Event)
    process: Optional["subprocess.Popen[str]"] = None

    def report(self, **values: Any) -> bool:
        """Tell the database where the run is; False when it is no longer working."""
        with session_scope(self.url) as session:
            working = report_progress(
                session,
                self.run_id,
                self.status,
                self.stage,
                self.progress,
                utc_now(),
                **values,
            )
        if not working:
            self.stopped.set()
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
        return working

    def _beat(self) -> None:
        while not self.stopped.wait(HEARTBEAT_S):
            try:
                self.report()
            except Exception:  # a database hiccup: the next beat tries again
                traceback.print_exc()

    def train(self, candidate: Path) -> int:
        """Train the candidate; returns the components trained."""
        with session_scope(self.url) as session:
            expected = previous_steps(session) or estimated_steps(self.config.path("config"))
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        candidate.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])
        )
        with self.log_file.open("w", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                train_command(self.config, candidate.parent, candidate.name[: -len(".tar.gz")]),
                cwd=PROJECT_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
            assert self.process.stdout is not None
            for line in self.process.stdout:
                log.write(line)
                if any(marker in line for marker in STEP_LINES):
                    self.steps_done += 1
                    minutes, seconds = divmod(int(time.monotonic() - started), 60)
                    self.stage = (
                        f"训练中：已完成 {self.steps_done} 个组件，已用 {minutes} 分 {seconds} 秒"
                    )
                    self.progress = TRAIN_SHARE * min(0.99, self.steps_done / expected)
            code = self.process.wait()
        if self.stopped.is_set():
            raise RuntimeError("训练已被中断")
        if code != 0 or not candidate.is_file():
            raise RuntimeError(f"rasa train 失败（退出码 {code}），日志：{self.log_file}")
        return self.steps_done

    def evaluate(self, candidate: Path) -> dict:
        """Evaluate the candidate and the serving model on the holdout; the comparison."""
        from bot.tools.evaluation import evaluate

        holdout = self.config.path("holdout")
        serving = self.config.path("live_model")
        self.status, self.stage, self.progress = "evaluating", "评估新模型", TRAIN_SHARE
        self.report(train_steps=self.steps_done, candidate_path=str(candidate))
        new = evaluate(str(candidate), holdout)
        self.stage, self.progress = "评估在用模型", (1 + TRAIN_SHARE) / 2
        self.report(serving_path=str(serving) if serving.is_file() else None)
        old: Any = evaluate(str(serving), holdout) if serving.is_file() else NO_MODEL
        comparison = compare_metrics(old, new, str(holdout), str(serving), str(candidate))
        return comparison.as_dict()

    def run(self) -> int:
        """Train, evaluate, judge; 0 when the candidate may go live, 1 rejected, 2 failed."""
        candidate = self.config.path("models_dir") / "candidates" / f"run-{self.run_id}.tar.gz"
        if not self.report():
            return 2
        beat = threading.Thread(target=self._beat, name="retrain-heartbeat", daemon=True)
        beat.start()
        try:
            self.train(candidate)
            comparison = self.evaluate(candidate)
        except Exception as error:
            self.stopped.set()
            with session_scope(self.url) as session:
                fail_run(session, self.run_id, f"{error}", utc_now())
            traceback.print_exc()
            return 2
        self.stopped.set()
        with session_scope(self.url) as session:
            verdict = finish_run(session, self.run_id, comparison, self.config, utc_now())
        print(f"run {self.run_id}: {'ready' if verdict.ok else 'rejected'} {verdict.reasons}")
        return 0 if verdict.ok else 1


def retrain(settings: Settings, run_id: Optional[int] = None, user: str = "cli") -> int:
    """Carry out run `run_id`, or record a new one first (from a terminal)."""
    config = settings.trainer.retrain
    if run_id is None:
        with session_scope(settings.database_url) as session:
            run_id = start_run(session, user, utc_now(), config).id
        print(f"run {run_id} recorded")
    log_file = settings.var_dir / "retrain" / f"run-{run_id}.log"
    return Worker(settings.database_url, run_id, config, log_file).run()
