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


class SlowParser:
    """A MessageProcessor's parsing parts: the NLU graph takes 0.3 s in C-like code (sleep
    releases the GIL, as the encoder's ctypes call does)."""

    http_interpreter = None

    def __init__(self) -> None:
        self.threads: list = []
        self.running = 0
        self.most_at_once = 0

    def _parse_message_with_graph(self, message: Any, tracker: Any, only: bool) -> Dict[str, Any]:
        import threading
        import time

        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.threads.append(threading.current_thread().name)
        time.sleep(0.3)
        self.running -= 1
        return {"text": message.text, "intent": {"name": "greet", "confidence": 0.9}}

    def _update_full_retrieval_intent(self, parse_data: Dict[str, Any]) -> None:
        parse_data["updated"] = True

    def _check_for_unseen_features(self, parse_data: Dict[str, Any]) -> None:
        pass


@pytest.mark.asyncio
async def test_the_nlu_graph_runs_beside_the_event_loop() -> None:
    import asyncio

    from rasa.core.channels.channel import UserMessage
    from rasa.core.processor import MessageProcessor

    rasa_server.apply_patches()
    parser = SlowParser()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    results = await asyncio.gather(
        MessageProcessor.parse_message(parser, UserMessage("你好", sender_id="a")),  # type: ignore[arg-type]
        MessageProcessor.parse_message(parser, UserMessage("您好", sender_id="b")),  # type: ignore[arg-type]
    )
    ticker.cancel()
    assert [r["text"] for r in results] == ["你好", "您好"]
    assert all(r["updated"] and r["intent"]["name"] == "greet" for r in results)
    assert all(name.startswith("nlu") for name in parser.threads)
    assert parser.most_at_once == 1  # one message at a time in the NLU components
    # the loop kept running while both parses (0.6 s) were under way: ~60 ticks, not 0
    assert ticks >= 30
