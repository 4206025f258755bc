"""A throw-away assistant for the benchmarks: the real stack on free ports, fresh SQLite."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from bot.core.settings import get_settings, reset_settings
from bot.tools.runner import Stack


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: List[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def isolated_env(var_dir: Path) -> Dict[str, str]:
    """Environment for a stack of its own: files under `var_dir`, free ports, 127.0.0.1."""
    return {
        "INTAKE_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'intake.db'}",
        "RASA_TRACKER_DB": str(var_dir / "tracker.db"),
        "RASA_PORT": str(free_port()),
        "ACTION_PORT": str(free_port()),
        "CONSOLE_PORT": str(free_port()),
        "BIND_HOST": "127.0.0.1",
        "CONSOLE_HTTPS_ONLY": "0",  # plain HTTP on 127.0.0.1
    }


@contextmanager
def throwaway_stack(
    model: str, prefix: str, extra_env: Optional[Dict[str, str]] = None, seed: bool = False
) -> Iterator[Stack]:
    """Start Rasa, the action server and the console on free ports; remove everything after."""
    from bot.core.db import upgrade_database
    from bot.core.seed import seed_default_database

    var_dir = Path(tempfile.mkdtemp(prefix=prefix))
    saved = dict(os.environ)  # put back afterwards: a test session may run another stack
    os.environ.update({**isolated_env(var_dir), **(extra_env or {})})
    reset_settings()
    settings = get_settings()
    upgrade_database(settings.database_url)
    if seed:
        seed_default_database(settings.database_url)
    stack = Stack(settings, model=model, log_dir=var_dir / "logs")
    stack.start()
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(var_dir, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved)
        reset_settings()
