"""The stock `rasa init` assistant, the yardstick of the latency benchmark (bench/latency.py).

Created once with `rasa init --no-prompt` (which also trains it) from the same venv's Rasa into
`var/bench-stock/` and reused while that folder holds a model; a folder without a model is
trained there (`rasa train`). `stock_bot()` starts it the way this assistant runs — `rasa run`
with the REST channel and an SQLite tracker store (fresh for every start) — on a free port of
127.0.0.1, waits for `GET /status`, and stops it (its whole process group) afterwards. The
template's actions are responses only, so no action server is needed.

    python -m bench.stock      # create/train it now (≈ 1–3 min the first time)
"""

from __future__ import annotations

import fcntl
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import requests
import yaml

from bench.stack import free_port
from bot.core.settings import PROJECT_ROOT

STOCK_DIR = PROJECT_ROOT / "var" / "bench-stock"
RASA = Path(sys.executable).parent / "rasa"
PREPARE_TIMEOUT_S = 1200  # rasa init + training, or rasa train alone
READY_TIMEOUT_S = 240
STOP_TIMEOUT_S = 20


@dataclass(frozen=True)
class StockBot:
    """A running stock bot."""

    port: int
    folder: Path
    process: subprocess.Popen

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/rest/webhook"


def stock_env() -> Dict[str, str]:
    """The environment of the stock bot's processes: no telemetry, and none of this project's
    modules on the path (the stock bot runs Rasa as shipped)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update({"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"})
    return env


def latest_model(folder: Path) -> Optional[Path]:
    """The newest model the stock bot's folder holds, if any."""
    models = sorted((folder / "models").glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    return models[-1] if models else None


def _run_logged(command: List[str], folder: Path, log_name: str) -> None:
    log_path = folder / log_name
    with open(log_path, "wb") as log:
        result = subprocess.run(
            command,
            cwd=folder,
            env=stock_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=PREPARE_TIMEOUT_S,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command[1:])}` failed in {folder} (exit {result.returncode}):\n"
            f"{log_tail(log_path)}"
        )


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def ensure_rest_channel(credentials: Path) -> None:
    """The REST channel the benchmark talks to: `rest:` in credentials.yml (the template has
    it; added when missing)."""
    text = credentials.read_text() if credentials.exists() else ""
    loaded = yaml.safe_load(text) if text.strip() else None
    if isinstance(loaded, dict) and "rest" in loaded:
        return
    credentials.write_text(text.rstrip("\n") + ("\n\n" if text.strip() else "") + "rest:\n")


def write_endpoints(folder: Path) -> Path:
    """endpoints.yml of the stock bot: an SQLite tracker store in its folder (as this
    assistant's), nothing else (no action server, the default in-memory lock store)."""
    endpoints = folder / "endpoints.yml"
    endpoints.write_text(
        "# Written by bench/stock.py for the latency benchmark.\n"
        + yaml.safe_dump(
            {
                "tracker_store": {
                    "type": "SQL",
                    "dialect": "sqlite",
                    "db": str(folder / "tracker.db"),
                }
            },
            sort_keys=False,
        )
    )
    return endpoints


def prepare_stock_bot(folder: Path = STOCK_DIR, log: bool = True) -> Path:
    """The stock bot's model: created and trained the first time, reused afterwards.

    Several benchmark runs at once wait for each other here (a lock file next to the folder)
    rather than creating the folder twice."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        model = latest_model(folder)
        if model is not None:
            return model
        started = time.monotonic()
        if not (folder / "config.yml").exists() or not (folder / "domain.yml").exists():
            if log:
                print(f"Creating the stock `rasa init` bot in {folder} (trains it: ≈ 1–3 min)")
            folder.mkdir(parents=True, exist_ok=True)
            _run_logged([str(RASA), "init", "--no-prompt", "--init-dir", "."], folder, "init.log")
        model = latest_model(folder)
        if model is None:  # init did not train (or an earlier run stopped half-way)
            if log:
                print(f"Training the stock `rasa init` bot in {folder} (≈ 1–3 min)")
            _run_logged([str(RASA), "train"], folder, "train.log")
            model = latest_model(folder)
        if model is None:
            raise RuntimeError(f"no model in {folder / 'models'} after training")
        if log:
            print(
                f"Stock bot ready: {model.relative_to(folder)} ({time.monotonic() - started:.0f} s)"
            )
        return model


def _wait_ready(process: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the stock bot exited ({process.returncode}) before it was ready:\n"
                f"{log_tail(log_path)}"
            )
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(
        f"the stock bot was not ready within {READY_TIMEOUT_S} s:\n{log_tail(log_path)}"
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
    except ProcessLookupError:
        pass


@contextmanager
def stock_bot(folder: Path = STOCK_DIR) -> Iterator[StockBot]:
    """Start the stock bot (preparing it first if needed) on a free port of 127.0.0.1 with a
    fresh SQLite tracker store; stop it afterwards."""
    model = prepare_stock_bot(folder)
    ensure_rest_channel(folder / "credentials.yml")
    tracker_db = folder / "tracker.db"
    tracker_db.unlink(missing_ok=True)
    endpoints = write_endpoints(folder)
    port = free_port()
    token = secrets.token_hex(16)  # the HTTP API is not left open, even on 127.0.0.1
    log_path = folder / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                str(RASA),
                "run",
                "--enable-api",
                "--interface",
                "127.0.0.1",
                "--port",
                str(port),
                "--model",
                str(model),
                "--endpoints",
                str(endpoints),
                "--credentials",
                str(folder / "credentials.yml"),
                f"--auth-token={token}",  # one argument: a token may begin with "-"
            ],
            cwd=folder,
            env=stock_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
        )
        try:
            _wait_ready(process, f"http://127.0.0.1:{port}/status?token={token}", log_path)
            yield StockBot(port=port, folder=folder, process=process)
        finally:
            _stop(process)
            tracker_db.unlink(missing_ok=True)


def main() -> None:
    print(prepare_stock_bot())


if __name__ == "__main__":
    main()
