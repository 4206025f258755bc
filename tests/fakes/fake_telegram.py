"""A local stand-in for Telegram's Bot API (HTTP on 127.0.0.1), and real Update JSON.

python-telegram-bot talks to it through its base URL setting
(TELEGRAM_API_BASE_URL=http://127.0.0.1:<port>/bot). It answers the methods the channel
uses, records every call with its parameters, serves queued updates to getUpdates (long
polling, bounded wait) and can answer one call with "429 retry after N s".
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qsl

TOKEN = "123456789:AAE-fake-token-for-tests"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "供电业务受理助手",
    "username": "intake_test_bot",
}
JSON_PARAMETERS = {"reply_markup", "allowed_updates", "chat_id", "offset", "timeout", "limit"}
MAX_POLL_WAIT_S = 2.0


@dataclass
class Call:
    """One Bot API call: the method name and its decoded parameters."""

    method: str
    params: Dict[str, Any]


class FakeBotApi:
    """The fake server; `start()` returns the base URL to give python-telegram-bot."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: List[Call] = []
        self.pending_updates: List[Dict[str, Any]] = []
        self._rate_limited: Dict[str, int] = {}
        self._failing: Dict[str, int] = {}
        self._changed = threading.Condition()
        self._server: Optional[ThreadingHTTPServer] = None
        self._next_message_id = 1000
        self.base_url = ""  # set by start()

    # ------------------------------------------------------------------ control
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = fake.answer(self.path, self.headers.get("Content-Type", ""), body)
                data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller was killed while we answered (the soak's kills)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/bot"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def queue_update(self, update: Dict[str, Any]) -> None:
        """Make `update` available to getUpdates."""
        with self._changed:
            self.pending_updates.append(update)
            self._changed.notify_all()

    def rate_limit_next(self, method: str, retry_after: int = 1) -> None:
        """Answer the next call of `method` with 429 "retry after `retry_after` s"."""
        self._rate_limited[method] = retry_after

    def fail_next(self, method: str, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with 502 Bad Gateway (not recorded as sent)."""
        with self._changed:
            self._failing[method] = times

    def sent(
        self, method: str = "sendMessage", chat_id: Optional[int] = None
    ) -> List[Dict[str, Any]]:
        """Parameters of the recorded calls of `method` (to one chat if given)."""
        with self._changed:
            return [
                c.params
                for c in self.calls
                if c.method == method and (chat_id is None or c.params.get("chat_id") == chat_id)
            ]

    def wait_for(
        self, method: str, count: int = 1, chat_id: Optional[int] = None, timeout: float = 30
    ) -> List[Dict[str, Any]]:
        """Wait until `count` calls of `method` were recorded; returns them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.sent(method, chat_id)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{method} called {len(self.sent(method, chat_id))} times, "
                        f"expected {count}: {self.calls}"
                    )
                self._changed.wait(remaining)
            return self.sent(method, chat_id)

    # ------------------------------------------------------------------ the Bot API
    def answer(self, path: str, content_type: str, body: bytes) -> tuple:
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method = path[len(prefix) :]
        try:
            params = decode_params(content_type, body)
        except ValueError:  # a body cut short (JSON, or a form field's JSON value)
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: can't parse"}
        if method in ("sendMessage", "sendPhoto") and "chat_id" not in params:
            # What the Bot API answers; in the soak, a request cut short by a kill.
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: chat_id is empty",
            }
        with self._changed:
            if self._failing.get(method, 0) > 0:
                self._failing[method] -= 1
                return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
            self.calls.append(Call(method, params))
            self._changed.notify_all()
            retry_after = self._rate_limited.pop(method, None)
        if retry_after is not None:
            return 429, {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            }
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._updates(params)}
        if method == "getMe":
            return 200, {"ok": True, "result": BOT_USER}
        if method in ("sendMessage", "sendPhoto"):
            return 200, {"ok": True, "result": self._message(params)}
        if method in ("answerCallbackQuery", "deleteWebhook", "setWebhook"):
            return 200, {"ok": True, "result": True}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    def _updates(self, params: Dict[str, Any]) -> List[Dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), MAX_POLL_WAIT_S)
        with self._changed:
            while True:
                self.pending_updates = [u for u in self.pending_updates if u["update_id"] >= offset]
                if self.pending_updates or time.monotonic() >= deadline:
                    return list(self.pending_updates)
                self._changed.wait(max(deadline - time.monotonic(), 0.01))

    def _message(self, params: Dict[str, Any]) -> Dict[str, Any]:
        with self._changed:
            self._next_message_id += 1
            message_id = self._next_message_id
        message = {
            "message_id": message_id,
            "from": BOT_USER,
            "date": int(time.time()),
            "chat": {"id": int(params["chat_id"]), "type": "private"},
        }
        if "text" in params:
            message["text"] = params["text"]
        if (
            isinstance(params.get("reply_markup"), dict)
            and "inline_keyboard" in params["reply_markup"]
        ):
            message["reply_markup"] = params["reply_markup"]
        return message


def decode_params(content_type: str, body: bytes) -> Dict[str, Any]:
    """Bot API parameters as python-telegram-bot sends them (form fields, JSON-valued)."""
    if content_type.startswith("application/json"):
        return json.loads(body or b"{}")
    params: Dict[str, Any] = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for name in JSON_PARAMETERS & params.keys():
        params[name] = json.loads(params[name])
    return params


# ---------------------------------------------------------------------- real Update shapes


def _user(chat_id: int) -> Dict[str, Any]:
    return {
        "id": chat_id,
        "is_bot": False,
        "first_name": "伟明",
        "last_name": "陈",
        "language_code": "zh-hans",
    }


def _chat(chat_id: int) -> Dict[str, Any]:
    return {"id": chat_id, "first_name": "伟明", "last_name": "陈", "type": "private"}


def text_update(update_id: int, chat_id: int, text: str) -> Dict[str, Any]:
    """A customer's text message, as Telegram delivers it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 100000,
            "from": _user(chat_id),
            "chat": _chat(chat_id),
            "date": 1764206400,
            "text": text,
        },
    }


def contact_update(
    update_id: int, chat_id: int, phone_number: str = "8613812345678"
) -> Dict[str, Any]:
    """The customer pressed 「分享手机号」: Telegram sends their own contact."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 100000,
            "from": _user(chat_id),
            "chat": _chat(chat_id),
            "date": 1764206460,
            "reply_to_message": {
                "message_id": 1,
                "from": BOT_USER,
                "chat": _chat(chat_id),
                "date": 1764206450,
                "text": "请留一个联系电话",
            },
            "contact": {
                "phone_number": phone_number,
                "first_name": "伟明",
                "last_name": "陈",
                "user_id": chat_id,
            },
        },
    }


def callback_update(
    update_id: int, chat_id: int, data: str, query_id: str = "4382bfdwdsb323b2d9"
) -> Dict[str, Any]:
    """The customer pressed an inline button whose callback data is `data`."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id,
            "from": _user(chat_id),
            "chat_instance": "-7832740175219283591",
            "data": data,
            "message": {
                "message_id": 1001,
                "from": BOT_USER,
                "chat": _chat(chat_id),
                "date": 1764206500,
                "text": "请核对报装用电的信息",
                "reply_markup": {
                    "inline_keyboard": [
                        [{"text": "确认提交", "callback_data": "/affirm"}],
                        [{"text": "修改", "callback_data": "/deny"}],
                    ]
                },
            },
        },
    }
