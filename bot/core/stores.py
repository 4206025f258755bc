"""Small shared stores: "seen before?", counters in a time window, values that expire.

The channels' de-duplication (Telegram `update_id`, WeChat `MsgId`), WeChat's nonces and
numbered menus, and the rate limits all use one of these, so several Rasa servers behind a
load balancer agree: Redis when INTAKE_REDIS_URL is set, else this process's memory (the
embedded profile, one Rasa server).

    store = shared_store()
    store.first_time("tg-update:123", ttl_s=86400)   # True once, False afterwards
    store.claim("tg-update:123", ttl_s=30)            # None: yours; else "busy" / "done"
    store.hit("rate:ip:1.2.3.4", window_s=60)        # hits in the current window
    store.put("menu:openid", "[...]", ttl_s=3600); store.get("menu:openid")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from functools import lru_cache
from typing import AsyncIterator, Callable, Dict, Optional, Protocol, Tuple

from bot.core.settings import get_settings

logger = logging.getLogger(__name__)

PREFIX = "intake:"
MAX_MEMORY_KEYS = 100_000


class SharedStore(Protocol):
    """What the channels and the rate limits need from a store."""

    def first_time(self, key: str, ttl_s: float) -> bool:
        """Remember `key` for `ttl_s`; False when it was already there."""

    def claim(self, key: str, ttl_s: float, value: str = "busy") -> Optional[str]:
        """Set `key` to `value` for `ttl_s` unless it is set: None when this call set it, else
        the value already there (one atomic step: two processes never both get None)."""

    def hit(self, key: str, window_s: float) -> int:
        """Count one hit of `key` in the current fixed window; the count so far."""

    def put(self, key: str, value: str, ttl_s: float) -> None:
        """Store `value` under `key` for `ttl_s`."""

    def get(self, key: str) -> Optional[str]:
        """The value under `key`, or None when unset or expired."""

    def delete(self, key: str) -> None:
        """Forget `key`."""


class MemoryStore:
    """One process's memory, bounded (the oldest entries go first)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: "OrderedDict[str, Tuple[float, str]]" = OrderedDict()
        self._lock = threading.Lock()

    def _live(self, key: str) -> Optional[Tuple[float, str]]:
        entry = self._entries.get(key)
        if entry is not None and entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry

    def _set(self, key: str, value: str, ttl_s: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + ttl_s, value)
        while len(self._entries) > MAX_MEMORY_KEYS:
            self._entries.popitem(last=False)

    def first_time(self, key: str, ttl_s: float) -> bool:
        return self.claim(key, ttl_s, "1") is None

    def claim(self, key: str, ttl_s: float, value: str = "busy") -> Optional[str]:
        with self._lock:
            entry = self._live(key)
            if entry is not None:
                return entry[1]
            self._set(key, value, ttl_s)
            return None

    def hit(self, key: str, window_s: float) -> int:
        window = int(self._clock() // window_s)
        full = f"{key}:{window}"
        with self._lock:
            entry = self._live(full)
            count = int(entry[1]) + 1 if entry else 1
            self._set(full, str(count), window_s)
            return count

    def put(self, key: str, value: str, ttl_s: float) -> None:
        with self._lock:
            self._set(key, value, ttl_s)

    def get(self, key: str) -> Optional[str]:
        with self._lock:
            entry = self._live(key)
            return entry[1] if entry else None

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


class RedisStore:
    """Redis, shared by every process that points at it (redis-py, short timeouts)."""

    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        import redis

        self.prefix = prefix
        self._redis = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
        )

    def first_time(self, key: str, ttl_s: float) -> bool:
        return bool(self._redis.set(self.prefix + key, "1", nx=True, px=int(ttl_s * 1000)))

    def claim(self, key: str, ttl_s: float, value: str = "busy") -> Optional[str]:
        for _ in range(3):  # the key may expire between the SET and the GET: try again
            if self._redis.set(self.prefix + key, value, nx=True, px=int(ttl_s * 1000)):
                return None
            current = self._redis.get(self.prefix + key)
            if current is not None:
                return str(current)
        return "busy"  # it keeps coming and going: let the caller try later

    def hit(self, key: str, window_s: float) -> int:
        full = f"{self.prefix}{key}:{int(time.time() // window_s)}"
        pipe = self._redis.pipeline()
        pipe.incr(full)
        pipe.pexpire(full, int(window_s * 1000))
        count, _ = pipe.execute()
        return int(count)

    def put(self, key: str, value: str, ttl_s: float) -> None:
        self._redis.set(self.prefix + key, value, px=int(ttl_s * 1000))

    def get(self, key: str) -> Optional[str]:
        value = self._redis.get(self.prefix + key)
        return str(value) if value is not None else None

    def delete(self, key: str) -> None:
        self._redis.delete(self.prefix + key)


_memory: Dict[str, MemoryStore] = {}


@lru_cache(maxsize=4)
def _redis_store(url: str, prefix: str) -> RedisStore:
    return RedisStore(url, prefix)


def reset_memory_store() -> None:
    """Forget everything this process's memory store holds (tests)."""
    _memory.clear()


def shared_store() -> SharedStore:
    """Redis when INTAKE_REDIS_URL is set, else this process's memory."""
    url = get_settings().redis_url
    if url:
        return _redis_store(url, get_settings().redis_prefix)
    return _memory.setdefault("default", MemoryStore())


# ------------------------------------------------------------------ claims held while work runs


async def await_claim(
    key: str,
    ttl_s: float,
    budget_s: float,
    poll_s: float = 0.25,
    give_up: Callable[[], bool] = lambda: False,
) -> Optional[str]:
    """Claim `key` ("busy" for `ttl_s`), waiting up to `budget_s` while another holder has it:
    None when it is this caller's now (free, or the holder's claim ran out: it died), else what
    is there when the wait ends — "done", or "busy" when the holder is still at work after the
    budget (or `give_up()` says to stop waiting)."""
    deadline = time.monotonic() + budget_s
    while True:
        state = shared_store().claim(key, ttl_s)
        if state is None or state != "busy" or give_up() or time.monotonic() >= deadline:
            return state
        await asyncio.sleep(poll_s)


@contextlib.asynccontextmanager
async def holding_claim(key: str, ttl_s: float, done_ttl_s: float) -> AsyncIterator[None]:
    """Hold the claim of `key` while the block runs: refreshed every third of `ttl_s` (so a
    slow holder keeps it and only a dead one's runs out), then "done" for `done_ttl_s`, however
    the block ended."""

    async def keep_alive() -> None:
        while True:
            await asyncio.sleep(ttl_s / 3)
            try:
                shared_store().put(key, "busy", ttl_s)
            except Exception:  # the store is down: the work goes on, the claim may run out
                logger.warning("could not refresh the claim of %s", key.split(":")[0])

    keeper = asyncio.ensure_future(keep_alive())
    try:
        yield
    finally:
        keeper.cancel()
        shared_store().put(key, "done", done_ttl_s)
