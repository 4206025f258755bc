"""A local stand-in for Telegram's Bot API (HTTP on 127.0.0.1), and real Update JSON.

python-telegram-bot talks to it through its base URL setting
(TELEGRAM_API_BASE_URL=http://127.0.0.1:<port>/bot). It answers the methods the channel
uses, records every call with its parameters, serves queued updates to getUpdates (long
polling, bounded wait) and can answer one call with "429 retry after N s".

Files customers send (photos, documents) are registered with `add_file(file_id, data)`;
`getFile` answers with their `file_path` and GET /file/bot<token>/<file_path> serves the
bytes, as Telegram's file server does (`downloads` records what was fetched).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, unquote, urlparse

TOKEN = "123456789:AAE-fake-token-for-tests"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "供电业务受理助手",
    "username": "intake_test_bot",
}
JSON_PARAMETERS = {"reply_markup", "allowed_updates", "chat_id", "offset", "timeout", "limit"}
MAX_POLL_WAIT_S = 2.0
GET_FILE_MAX_BYTES = 20 * 1024 * 1024  # the Bot API lets bots download files up to 20 MB


@dataclass(frozen=True)
class StoredFile:
    """A file on the fake's file server: what getFile says of it and its bytes."""

    file_id: str
    file_path: str
    data: bytes
    file_size: int


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
        self.files: Dict[str, StoredFile] = {}
        self.downloads: List[str] = []  # file paths fetched from the file server
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

            def do_GET(self) -> None:
                if not self.path.startswith("/file/"):
                    return self.do_POST()  # the Bot API answers GET requests as well
                status, data, content_type = fake.download(self.path)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

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

    def add_file(
        self,
        file_id: str,
        data: bytes,
        file_path: Optional[str] = None,
        file_size: Optional[int] = None,
    ) -> StoredFile:
        """Put `data` on the file server under `file_id` (getFile then finds it). `file_size`
        is what getFile says, the real size unless given."""
        with self._changed:
            number = len(self.files)
            stored = StoredFile(
                file_id=file_id,
                file_path=file_path or f"photos/file_{number}.jpg",
                data=data,
                file_size=len(data) if file_size is None else file_size,
            )
            self.files[file_id] = stored
            return stored

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
        if method == "getFile":
            return self._get_file(str(params.get("file_id", "")))
        if method in ("answerCallbackQuery", "deleteWebhook", "setWebhook"):
            return 200, {"ok": True, "result": True}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    def _get_file(self, file_id: str) -> tuple:
        """getFile: the file's path on the file server, as the Bot API answers it."""
        with self._changed:
            stored = self.files.get(file_id)
        if stored is None:
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: invalid file_id",
            }
        if stored.file_size > GET_FILE_MAX_BYTES:
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: file is too big",
            }
        return 200, {
            "ok": True,
            "result": {
                "file_id": stored.file_id,
                "file_unique_id": unique_id(stored.file_id),
                "file_size": stored.file_size,
                "file_path": stored.file_path,
            },
        }

    def download(self, path: str) -> Tuple[int, bytes, str]:
        """GET /file/bot<token>/<file_path>: (status, body, content type)."""
        not_found = json.dumps({"ok": False, "error_code": 404, "description": "Not Found"})
        prefix = f"/file/bot{self.token}/"
        wanted = unquote(urlparse(path).path)
        if not wanted.startswith(prefix):
            return 404, not_found.encode(), "application/json"
        file_path = wanted[len(prefix) :]
        with self._changed:
            stored = next((f for f in self.files.values() if f.file_path == file_path), None)
            if stored is None:
                return 404, not_found.encode(), "application/json"
            self.downloads.append(file_path)
            self._changed.notify_all()
        return 200, stored.data, "application/octet-stream"

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


def unique_id(file_id: str) -> str:
    """A file's `file_unique_id` (Telegram's is the same for every bot; here derived)."""
    return "AQAD" + hashlib.sha1(file_id.encode()).hexdigest()[:12]


def photo_size_id(file_id: str, width: int, height: int) -> str:
    """The file id `photo_update` gives a smaller size of the photo `file_id`."""
    return f"{file_id}-{width}x{height}"


# A phone photo as Telegram delivers it: thumbnails first, the full picture last
# (width, height, file_size).
PHOTO_SIZES: Tuple[Tuple[int, int, int], ...] = (
    (90, 67, 1_402),
    (320, 240, 15_377),
    (800, 600, 61_529),
)


def _message(update_id: int, chat_id: int, **content: Any) -> Dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 100000,
            "from": _user(chat_id),
            "chat": _chat(chat_id),
            "date": 1764206520,
            **content,
        },
    }


def photo_update(
    update_id: int,
    chat_id: int,
    file_id: str,
    sizes: Sequence[Tuple[int, int, int]] = PHOTO_SIZES,
    caption: Optional[str] = None,
) -> Dict[str, Any]:
    """A photo, as Telegram delivers it: one PhotoSize per (width, height, file_size) in
    `sizes`, in the given order. The last is the full picture and has `file_id`; the others
    have `photo_size_id(file_id, width, height)`."""
    photo = []
    for number, (width, height, file_size) in enumerate(sizes):
        size_id = file_id if number == len(sizes) - 1 else photo_size_id(file_id, width, height)
        photo.append(
            {
                "file_id": size_id,
                "file_unique_id": unique_id(size_id),
                "file_size": file_size,
                "width": width,
                "height": height,
            }
        )
    content: Dict[str, Any] = {"photo": photo}
    if caption is not None:
        content["caption"] = caption
    return _message(update_id, chat_id, **content)


def document_update(
    update_id: int,
    chat_id: int,
    file_id: str,
    file_name: str,
    mime_type: str,
    file_size: int,
) -> Dict[str, Any]:
    """A file sent as a document (「文件」, not compressed as a photo)."""
    return _message(
        update_id,
        chat_id,
        document={
            "file_name": file_name,
            "mime_type": mime_type,
            "file_id": file_id,
            "file_unique_id": unique_id(file_id),
            "file_size": file_size,
        },
    )


def location_update(update_id: int, chat_id: int, lat: float, lon: float) -> Dict[str, Any]:
    """The customer shared their location (📎 → 位置)."""
    return _message(update_id, chat_id, location={"latitude": lat, "longitude": lon})


def venue_update(
    update_id: int, chat_id: int, lat: float, lon: float, title: str, address: str
) -> Dict[str, Any]:
    """The customer shared a place picked on the map: a venue, with its location."""
    location = {"latitude": lat, "longitude": lon}
    return _message(
        update_id,
        chat_id,
        location=location,
        venue={"location": location, "title": title, "address": address},
    )
