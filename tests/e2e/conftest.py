"""End-to-end fixtures: the real Rasa server, action server and console on free ports.

One stack per test session (loading the model takes 30–60 s); every test talks to it as a
customer would, through Rasa's REST channel, and checks tickets through the JSON API.
"""
from __future__ import annotations

import itertools
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from bot.config import PROJECT_ROOT, load_settings
from bot.runner import Stack

# INTAKE_MODEL lets a developer test a model trained elsewhere (default: what make trains).
MODEL = Path(os.environ.get("INTAKE_MODEL") or PROJECT_ROOT / "models" / "intake.tar.gz")
API_TOKEN = "e2e-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` (make test does)")
    var_dir = tmp_path_factory.mktemp("var")
    env = {
        "INTAKE_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'intake.db'}",
        "RASA_TRACKER_DB": str(var_dir / "tracker.db"),
        "RASA_PORT": str(free_port()),
        "ACTION_PORT": str(free_port()),
        "CONSOLE_PORT": str(free_port()),
        "INTAKE_API_TOKEN": API_TOKEN,
        "BIND_HOST": "127.0.0.1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from bot.db import upgrade_database
    from bot.seed import seed_default_database

    settings = load_settings()
    upgrade_database(settings.database_url)
    seed_default_database(settings.database_url)
    logs = PROJECT_ROOT / "reports" / "e2e-logs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    running = Stack(settings, model=str(MODEL), log_dir=logs)
    running.start()
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Customer:
    """One customer chatting through the REST channel."""

    stack: Stack
    sender: str = field(default_factory=lambda: f"e2e-{uuid.uuid4().hex[:12]}")
    transcript: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.stack.settings.rasa_port}/webhooks/rest/webhook"

    def say(self, text: str) -> List[Dict[str, Any]]:
        """Send one message; returns the bot's replies (text and buttons)."""
        response = requests.post(self.url, json={"sender": self.sender, "message": text}, timeout=60)
        response.raise_for_status()
        replies = response.json()
        self.transcript.append({"customer": text, "bot": replies})
        return replies

    def click(self, replies: List[Dict[str, Any]], title: str) -> List[Dict[str, Any]]:
        """Press the button with `title` among the last replies."""
        buttons = [b for r in replies for b in r.get("buttons", [])]
        payload = next((b["payload"] for b in buttons if b["title"] == title), None)
        assert payload is not None, f"no button {title!r} in {buttons}"
        return self.say(payload)


def texts(replies: List[Dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


@dataclass
class Api:
    stack: Stack

    def get(self, path: str, **params: Any) -> Any:
        response = requests.get(
            f"http://127.0.0.1:{self.stack.settings.console_port}/api/v1{path}",
            params=params, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def tickets(self, conversation_id: str) -> List[Dict[str, Any]]:
        return self.get("/tickets", conversation_id=conversation_id)

    def handoffs(self, conversation_id: str) -> List[Dict[str, Any]]:
        return self.get("/handoffs", conversation_id=conversation_id)


@pytest.fixture
def customer(stack: Stack) -> Customer:
    return Customer(stack)


@pytest.fixture
def api(stack: Stack) -> Api:
    return Api(stack)
