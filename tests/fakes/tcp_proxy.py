"""A TCP proxy that can be cut: the stack talks to PostgreSQL, Redis or RabbitMQ through it,
and a fault test cuts it (every open connection closed, new ones refused) and restores it —
an outage of that service as the stack sees it, without touching the machine's own service."""

from __future__ import annotations

import socket
import threading
from typing import List, Optional, Tuple


class CuttableProxy:
    """127.0.0.1:<port> → `target`, in threads; `cut()` / `restore()`."""

    def __init__(self, target: Tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._open: List[socket.socket] = []
        self._lock = threading.Lock()
        self._up = True
        self._stopped = False
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "CuttableProxy":
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up:
                client.close()  # the service is "down": connection refused at once
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def cut(self) -> None:
        """The service goes away: open connections are reset, new ones refused."""
        self._up = False
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._open.clear()

    def restore(self) -> None:
        self._up = True

    def stop(self) -> None:
        self._stopped = True
        self.cut()
        self._listener.close()
