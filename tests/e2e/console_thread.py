"""The staff console alone, in this process, for browser tests that need no Rasa server."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Dict, Iterator

import uvicorn

from bench.stack import free_port
from bot.console.app import create_app
from bot.core.db import dispose_engines
from bot.core.settings import Settings


@contextlib.contextmanager
def environment(values: Dict[str, str]) -> Iterator[None]:
    """`values` in os.environ for the block; what was there before afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def console_in_thread(settings: Settings, start_timeout_s: float = 30) -> Iterator[str]:
    """The console app of `settings`, served by uvicorn on a free port; its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        dispose_engines(settings.database_url)
