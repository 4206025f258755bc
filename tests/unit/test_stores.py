"""The shared stores' claim (Telegram's update ids): in memory and in the real Redis."""

from __future__ import annotations

import time
import uuid
from typing import Iterator

import pytest

from bot.core.stores import MemoryStore, RedisStore, SharedStore

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[SharedStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    redis_store = RedisStore(REDIS_URL, prefix=prefix)
    yield redis_store
    for key in redis_store._redis.scan_iter(f"{prefix}*"):
        redis_store._redis.delete(key)


def test_a_claim_is_one_callers_until_it_expires_or_is_marked_done(store: SharedStore) -> None:
    assert store.claim("tg-update:1", 0.3) is None  # mine
    assert store.claim("tg-update:1", 0.3) == "busy"  # another server's retry
    time.sleep(0.4)  # the claimer died: its claim runs out
    assert store.claim("tg-update:1", 0.3) is None
    store.put("tg-update:1", "done", 60)
    assert store.claim("tg-update:1", 0.3) == "done"
    assert store.first_time("tg-update:2", 60) and not store.first_time("tg-update:2", 60)
