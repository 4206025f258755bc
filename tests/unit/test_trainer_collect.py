"""Inbox collection from a tracker store written by Rasa's own SQLTrackerStore."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from bot.core.db import session_scope
from bot.core.training.inbox import collect_candidates, open_items, sync_inbox, text_key

Turn = Tuple[
    str, str, float, Optional[str], List[str]
]  # text, intent, confidence, bot reply, actions


def _events(turns: List[Turn]) -> list:
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered

    events: list = [ActionExecuted("action_listen")]
    for text, intent, confidence, reply, actions in turns:
        ranking = [{"name": intent, "confidence": confidence}]
        if intent == "nlu_fallback":
            ranking = [
                {"name": "nlu_fallback", "confidence": 0.3},
                {"name": "greet", "confidence": confidence},
            ]
        parse = {
            "intent": {"name": intent, "confidence": confidence},
            "intent_ranking": ranking,
            "entities": [],
            "text": text,
        }
        events.append(UserUttered(text, parse["intent"], parse_data=parse))
        events.extend(ActionExecuted(a) for a in actions)
        if reply:
            events.append(BotUttered(reply))
        events.append(ActionExecuted("action_listen"))
    return events


def fill_tracker_store(path: Path, conversations: Dict[str, List[Turn]]) -> str:
    """A SQLite tracker store holding `conversations`, written by Rasa itself."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
    for sender, turns in conversations.items():
        tracker = DialogueStateTracker.from_events(sender, _events(turns))
        asyncio.run(store.save(tracker))
    store.engine.dispose()
    return f"sqlite:///{path}"


@pytest.fixture
def tracker_url(tmp_path: Path) -> str:
    return fill_tracker_store(
        tmp_path / "tracker.db",
        {
            "fallback-1": [
                ("你好", "greet", 0.99, "您好！", []),
                ("电表在唱歌！！", "nlu_fallback", 0.2, "抱歉没听懂", ["action_fallback"]),
            ],
            "fallback-2": [("电表在唱歌", "nlu_fallback", 0.25, "抱歉没听懂", ["action_fallback"])],
            "unsure": [("鱼塘想拉根线过去", "report_violation", 0.41, "请问是举报哪里？", [])],
            "cancelled": [
                ("我要改户名", "apply_transfer", 0.95, "请提供户号", []),
                ("13812345678", "inform", 0.9, "请提供户号", []),
                ("算了", "cancel", 0.99, "好的，已取消", []),
            ],
            "corrected": [
                ("查下我的单", "query_bill", 0.9, "请提供户号", []),
                ("不是，我说的是工单", "inform", 0.7, "请提供工单号", []),
            ],
            "human": [
                ("我的电费扣了两次", "query_bill", 0.88, "请提供户号", []),
                ("转人工", "request_human", 0.99, "正在为您转接", []),
            ],
            "long-affirm": [
                ("户外那个电表一直在滴滴滴报警", "affirm", 0.89, "好的", []),
                ("不是这个意思", "deny", 0.8, "抱歉", []),
            ],
            "short-affirm": [
                ("好的", "affirm", 0.99, "请留电话", []),
                ("不是", "deny", 0.9, "抱歉", []),
            ],
            "fine": [
                ("家里停电了", "report_fault", 0.98, "请告诉我地址", []),
                ("龙湖区长平路88号", "inform", 0.93, "请留电话", []),
                ("/affirm", "affirm", 1.0, None, []),
            ],
        },
    )


def _by_text(url: str) -> Dict[str, object]:
    return {c.text: c for c in collect_candidates(url)}


def test_each_rule_collects_its_messages_and_nothing_else(tracker_url: str) -> None:
    found = _by_text(tracker_url)
    # 13812345678 (inform) was cancelled after too, but a bare number has no words to learn.
    # 好的 (affirm) followed by 不是 is a stock phrase, not a misunderstanding; a long message
    # read as affirm is.
    assert set(found) == {
        "电表在唱歌！！",
        "鱼塘想拉根线过去",
        "我要改户名",
        "查下我的单",
        "我的电费扣了两次",
        "户外那个电表一直在滴滴滴报警",
    }
    assert found["户外那个电表一直在滴滴滴报警"].reasons == ["corrected"]
    assert found["鱼塘想拉根线过去"].reasons == ["low_confidence"]
    assert found["我要改户名"].reasons == ["cancelled"]
    assert found["查下我的单"].reasons == ["corrected"]
    assert found["我的电费扣了两次"].reasons == ["asked_for_human"]


def test_near_identical_texts_are_one_item_with_a_count_and_context(tracker_url: str) -> None:
    item = _by_text(tracker_url)["电表在唱歌！！"]
    assert item.count == 2 and item.reasons == ["fallback", "low_confidence"]
    assert item.predicted_intent == "nlu_fallback" and item.confidence == 0.2
    assert item.context["previous_bot"] == "您好！"
    assert item.context["variants"] == ["电表在唱歌", "电表在唱歌！！"]
    assert _by_text(tracker_url)["我要改户名"].context["next_user"] == "13812345678"


def test_text_key_folds_width_script_punctuation_digits_and_emoji() -> None:
    assert text_key("電表在唱歌！！👀 123") == text_key("电表在唱歌") == "电表在唱歌"
    assert text_key("ＯＫ") == "ok"


def test_sync_is_idempotent_and_keeps_decisions(tracker_url: str, db_url: str) -> None:
    candidates = collect_candidates(tracker_url)
    with session_scope(db_url) as session:
        assert sync_inbox(session, candidates) == 6
    with session_scope(db_url) as session:
        assert sync_inbox(session, candidates) == 0
        items = open_items(session)
        assert items[0].count == 2 and len(items) == 6
        items[-1].status = "discarded"
    with session_scope(db_url) as session:
        sync_inbox(session, candidates)
        assert len(open_items(session)) == 5
