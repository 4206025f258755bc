"""The satisfaction rating after a hand-back: reading it and storing it against the agent."""

from __future__ import annotations

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.rating import ActionStoreRating, ValidateRatingForm
from bot.core.db import session_scope
from bot.core.handoff.rating import parse_rating
from bot.core.handoff.repository import HandoffRepository


@pytest.mark.parametrize(
    "text, rating",
    [
        ("5", 5),
        ("１", 1),
        ("五分", 5),
        ("4星", 4),
        ("3分吧", 3),
        ("三", 3),
        ("非常满意", 5),
        ("很满意！", 5),
        ("满意", 4),
        ("一般般", 3),
        ("不满意", 2),
        ("非常不满意", 1),
        ("非常滿意", 5),
    ],
)
def test_reads_ratings(text: str, rating: int) -> None:
    assert parse_rating(text) == rating


@pytest.mark.parametrize("text", ["", "10", "0", "我家又停电了", "好的", "135"])
def test_other_text_is_not_a_rating(text: str) -> None:
    assert parse_rating(text) is None


def _tracker(slots: dict) -> Tracker:
    return Tracker("web-rate", slots, {}, [], False, None, {"name": "rating_form"}, "action_listen")


def test_validator_keeps_ratings_and_marks_other_answers_skipped() -> None:
    validator = ValidateRatingForm()
    assert validator.validate_satisfaction_rating(
        "满意", CollectingDispatcher(), _tracker({}), {}
    ) == {"satisfaction_rating": "4"}
    assert validator.validate_satisfaction_rating(
        "查电费", CollectingDispatcher(), _tracker({}), {}
    ) == {"satisfaction_rating": "-"}


@pytest.mark.asyncio
async def test_store_rating_against_the_agent(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    with session_scope(db_url) as session:
        repository = HandoffRepository(session)
        handoff = repository.open("web-rate", "webchat", "request_human", "normal", {})
        repository.claim(handoff.id, "agent1")
        repository.close(handoff.id)
    dispatcher = CollectingDispatcher()
    events = await ActionStoreRating().run(dispatcher, _tracker({"satisfaction_rating": "5"}), {})
    assert dispatcher.messages[0]["response"] == "utter_rating_thanks"
    assert events == [
        {"event": "slot", "timestamp": None, "name": "satisfaction_rating", "value": None}
    ]
    with session_scope(db_url) as session:
        stored = HandoffRepository(session).get(handoff.id)
        assert (stored.rating, stored.agent) == (5, "agent1")


@pytest.mark.asyncio
async def test_skipped_rating_stores_nothing(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    dispatcher = CollectingDispatcher()
    await ActionStoreRating().run(dispatcher, _tracker({"satisfaction_rating": "-"}), {})
    assert dispatcher.messages[0]["response"] == "utter_rating_skipped"
