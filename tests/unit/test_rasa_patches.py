"""The Rasa server's patch points (bot/plugins/rasa_server.py) keep Rasa's behaviour."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from bot.plugins import rasa_server


@pytest.fixture
def action() -> RemoteAction:
    rasa_server.apply_patches()
    return RemoteAction("action_ask_phone", EndpointConfig("http://127.0.0.1:9/webhook"))


GOOD: Dict[str, Any] = {
    "events": [{"event": "slot", "name": "requested_slot", "value": "phone"}],
    "responses": [{"text": "请留一个联系电话。"}],
}


def test_the_patch_replaces_rasas_validation() -> None:
    rasa_server.apply_patches()
    rasa_server.apply_patches()  # idempotent
    assert RemoteAction._validate_action_result is rasa_server.validate_action_result
    from rasa.core.processor import MessageProcessor

    # A failed action ends the turn (behaviour: tests/e2e/test_resilience.py).
    assert MessageProcessor._run_action is rasa_server._run_action_or_end_turn


def test_a_well_formed_answer_passes(action: RemoteAction) -> None:
    assert action._validate_action_result(GOOD) is True


@pytest.mark.parametrize(
    "malformed",
    [
        {"events": "not a list", "responses": []},
        {"events": [{"name": "no event type"}], "responses": []},
        {"events": [], "responses": "not a list"},
    ],
)
def test_a_malformed_answer_is_still_refused_with_rasas_hint(
    action: RemoteAction, malformed: Dict[str, Any]
) -> None:
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result(malformed)


def test_the_validator_is_built_once(action: RemoteAction) -> None:
    rasa_server._validator_for.cache_clear()
    for _ in range(50):
        action._validate_action_result(GOOD)
    info = rasa_server._validator_for.cache_info()
    assert (info.misses, info.hits) == (1, 49)


class BrokenStore:
    """A primary tracker store whose database is down."""

    domain: Any = None
    event_broker: Any = None

    async def retrieve(self, sender_id: str) -> Any:
        raise ConnectionError("server closed the connection unexpectedly")

    async def retrieve_full_tracker(self, sender_id: str) -> Any:
        raise ConnectionError("server closed the connection unexpectedly")

    async def save(self, tracker: Any) -> None:
        raise ConnectionError("server closed the connection unexpectedly")


@pytest.mark.asyncio
async def test_an_unreachable_tracker_store_fails_the_turn_instead_of_starting_over() -> None:
    from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore
    from rasa.shared.core.trackers import DialogueStateTracker

    rasa_server.apply_patches()
    store = FailSafeTrackerStore(BrokenStore())  # type: ignore[arg-type]
    with pytest.raises(rasa_server.TrackerStoreUnavailable):
        await store.retrieve("tg-1")  # stock Rasa: None, i.e. a new conversation
    with pytest.raises(rasa_server.TrackerStoreUnavailable):
        await store.retrieve_full_tracker("tg-1")
    tracker = DialogueStateTracker("tg-1", [])
    with pytest.raises(rasa_server.TrackerStoreUnavailable):
        await store.save(tracker)  # stock Rasa: kept in this process's memory
    fallback = store.fallback_tracker_store
    assert isinstance(fallback, InMemoryTrackerStore) and not fallback.store


def test_postgresql_tracker_connections_are_checked_before_use() -> None:
    from rasa.core import tracker_store

    rasa_server.apply_patches()
    options = tracker_store.create_engine_kwargs("postgresql://postgres@127.0.0.1:5432/x")
    assert options["pool_pre_ping"] is True and "pool_size" in options
    assert tracker_store.create_engine_kwargs("sqlite:///tracker.db") == {}


@pytest.mark.asyncio
async def test_a_turn_longer_than_the_lock_lifetime_keeps_its_lock() -> None:
    """The second turn of a customer waits for the first even when the first outlasts the
    ticket's lifetime (stock Rasa: the ticket expired and both ran at once)."""
    import asyncio

    from rasa.core.lock_store import InMemoryLockStore

    rasa_server.apply_patches()
    store = InMemoryLockStore()
    order: list = []

    async def turn(name: str, seconds: float) -> None:
        async with store.lock("tg-1", lock_lifetime=0.3, wait_time_in_seconds=0.05):
            order.append(f"{name} in")
            await asyncio.sleep(seconds)
            order.append(f"{name} out")

    first = asyncio.create_task(turn("first", 1.0))  # over three lifetimes
    await asyncio.sleep(0.05)
    await asyncio.gather(first, turn("second", 0.0))
    assert order == ["first in", "first out", "second in", "second out"]
    assert store.get_lock("tg-1") is None  # cleaned up


@pytest.mark.asyncio
async def test_the_ticket_of_a_dead_server_still_runs_out() -> None:
    """A ticket nobody refreshes (its server was killed) expires after its lifetime, and the
    next turn of that customer goes ahead."""
    import time

    from rasa.core.lock_store import InMemoryLockStore

    rasa_server.apply_patches()
    store = InMemoryLockStore()
    store.issue_ticket("tg-2", 0.3)  # issued by a server that then died
    started = time.monotonic()
    async with store.lock("tg-2", lock_lifetime=0.3, wait_time_in_seconds=0.05):
        waited = time.monotonic() - started
    assert 0.25 <= waited < 1.5
