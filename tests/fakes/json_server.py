"""A tiny JSON HTTP server on 127.0.0.1 for fakes of other systems (Rasa's API, billing).

def handle(request: Request) -> Tuple[int, Any]:   # (status, JSON body or raw str)
    ...
with json_server(handle) as base_url:
    ...
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Tuple
from urllib.parse import parse_qs, urlparse


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]
    body: bytes


Handle = Callable[[Request], Tuple[int, Any]]


@contextlib.contextmanager
def json_server(handle: Handle) -> Iterator[str]:
    """Serve `handle` in a thread; yields the base URL (no trailing slash)."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlparse(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = handle(
                Request(self.command, url.path, parse_qs(url.query), dict(self.headers), body)
            )
            data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
