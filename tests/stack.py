"""The real stack for the end-to-end, security and fault tests: Rasa, the action server and
the console on free ports (a pytest plugin: conftest.py at the repository root).

One stack per test session (loading the model takes 30–60 s); every test talks to it as a
customer would, through Rasa's REST channel, and checks tickets through the JSON API.
"""

from __future__ import annotations

import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests
import yaml

from bench.stack import isolated_env
from bot.core.settings import PROJECT_ROOT, load_settings, reset_settings
from bot.tools.runner import Stack
from tests.fakes.fake_telegram import TOKEN as TELEGRAM_TOKEN
from tests.fakes.fake_telegram import FakeBotApi
from tests.fakes.wechat_simulator import FakeWeChatApi

# INTAKE_MODEL lets a developer test a model trained elsewhere (default: what make trains).
MODEL = Path(os.environ.get("INTAKE_MODEL") or PROJECT_ROOT / "models" / "intake.tar.gz")
API_TOKEN = "e2e-test-token"
# Failed ticket notices are retried after these waits in the stack (then marked failed).
NOTICE_RETRY_AFTER_S = (1, 1)
# The Telegram channel is on in the stack; its Bot API calls go to the `fake_telegram` fake.
TELEGRAM_SECRET = "e2e-telegram-secret"
# The WeChat channel is on in the stack; its API calls go to the `wechat_api` fake.
WECHAT = {
    "token": "e2e-wechat-token",
    "app_id": "wxe2e0000000000000",
    "aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
}


@pytest.fixture(scope="session")
def wechat_api() -> Iterator[FakeWeChatApi]:
    """WeChat's token and customer-service endpoints, faked on 127.0.0.1 for the stack."""
    api = FakeWeChatApi().start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def fake_telegram() -> Iterator[FakeBotApi]:
    """Telegram's Bot API, faked on 127.0.0.1 for the stack (tests/fake_telegram.py)."""
    fake = FakeBotApi()
    fake.start()
    yield fake
    fake.stop()


def fast_service_config(var_dir: Path) -> Path:
    """config/service.yml with notice retries after 1 s (instead of minutes)."""
    config = yaml.safe_load((PROJECT_ROOT / "config" / "service.yml").read_text(encoding="utf-8"))
    config["notifications"] = {
        "retry_after_seconds": list(NOTICE_RETRY_AFTER_S),
        "check_every_seconds": 0.5,
    }

    path = var_dir / "service.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, wechat_api: FakeWeChatApi, fake_telegram: FakeBotApi
) -> Iterator[Stack]:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` (make test does)")
    var_dir = tmp_path_factory.mktemp("var")
    env = {
        **isolated_env(var_dir),
        "INTAKE_SERVICE_CONFIG": str(fast_service_config(var_dir)),
        "INTAKE_API_TOKEN": API_TOKEN,
        "WECHAT_TOKEN": WECHAT["token"],
        "WECHAT_APP_ID": WECHAT["app_id"],
        "WECHAT_APP_SECRET": "e2e-secret",
        "WECHAT_ENCODING_AES_KEY": WECHAT["aes_key"],
        "WECHAT_API_BASE_URL": wechat_api.base_url,
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "TELEGRAM_API_BASE_URL": fake_telegram.base_url,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reset_settings()
    from bot.core.db import upgrade_database
    from bot.core.seed import seed_default_database

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
        response = requests.post(
            self.url, json={"sender": self.sender, "message": text}, timeout=60
        )
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


class WebCustomer:
    """A customer in the web chat page's shoes: one browser session (its signed conversation
    cookie) talking to the console's /chat/api, channel `webchat`."""

    def __init__(self, stack: Stack, sender: str | None = None) -> None:
        from bot.console.webchat import CHAT_COOKIE, read_chat_sender, sign_chat_sender

        self.stack = stack
        self.http = requests.Session()
        if sender is None:  # a first visit to the page hands out the cookie
            self.http.get(f"{self.base}/chat", timeout=10).raise_for_status()
            sender = read_chat_sender(stack.settings, self.http.cookies[CHAT_COOKIE])
            assert sender is not None
        else:  # the browser of an earlier conversation
            self.http.cookies.set(CHAT_COOKIE, sign_chat_sender(stack.settings, sender))
        self.sender = sender

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.stack.settings.console_port}"

    def say(self, text: str) -> List[Dict[str, Any]]:
        response = self.http.post(
            f"{self.base}/chat/api/messages", json={"message": text}, timeout=60
        )
        response.raise_for_status()
        return response.json()

    def history(self) -> List[Dict[str, Any]]:
        response = self.http.get(f"{self.base}/chat/api/history", timeout=10)
        response.raise_for_status()
        return response.json()


def texts(replies: List[Dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


@dataclass
class Api:
    stack: Stack

    def get(self, path: str, **params: Any) -> Any:
        response = requests.get(
            f"http://127.0.0.1:{self.stack.settings.console_port}/api/v1{path}",
            params=params,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def tickets(self, conversation_id: str) -> List[Dict[str, Any]]:
        return self.get("/tickets", conversation_id=conversation_id)

    def handoffs(self, conversation_id: str) -> List[Dict[str, Any]]:
        return self.get("/handoffs", conversation_id=conversation_id)

    def patch_ticket(self, ticket_no: str, **changes: Any) -> Dict[str, Any]:
        response = requests.patch(
            f"http://127.0.0.1:{self.stack.settings.console_port}/api/v1/tickets/{ticket_no}",
            json=changes,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()


# ---------------------------------------------------------------- browser (Debian's Chromium)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = PROJECT_ROOT / "reports" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Playwright (`make browser` installs it; Playwright's own
    browser download is never used). Module-scoped: Playwright's sync API keeps an event loop
    running in this thread, which later asyncio-based tests must not find."""
    from playwright import sync_api

    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `make browser` (make test does)", pytrace=False
        )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def open_page(browser: Any, timeout_ms: int, **context_options: Any) -> Iterator[Any]:
    """A page in a fresh browser context (own cookies and storage); fails the test on any
    JavaScript error the page raised."""
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **context_options)
    context.set_default_timeout(timeout_ms)
    errors: list = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(error))
    try:
        yield page
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        context.close()


@pytest.fixture
def customer(stack: Stack) -> Customer:
    return Customer(stack)


@pytest.fixture
def api(stack: Stack) -> Api:
    return Api(stack)
