"""Reading the Rasa tracker: what happened in this conversation, independent of business."""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional

from rasa_sdk import Tracker

FORM_SUFFIX = "_form"


def channel_of(tracker: Tracker) -> str:
    """The input channel of the latest message (rest, telegram, wechat, socketio …)."""
    return tracker.get_latest_input_channel() or "rest"


def last_form(tracker: Tracker) -> Optional[str]:
    """The form active now, or else the one that was active most recently."""
    if tracker.active_loop_name:
        return tracker.active_loop_name
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and (event.get("name") or "").endswith(FORM_SUFFIX):
            return event["name"]
    return None


def _turns(events: List[Dict[str, Any]]) -> Iterator[List[Dict[str, Any]]]:
    """The events of each user turn, newest turn first (a turn starts with a user event)."""
    turn: List[Dict[str, Any]] = []
    for event in reversed(events):
        turn.insert(0, event)
        if event.get("event") == "user":
            yield turn
            turn = []


def consecutive_turns_with(tracker: Tracker, action_name: str) -> int:
    """How many user turns in a row, before the current one, ran `action_name`."""
    count = 0
    turns = _turns(tracker.events)
    next(turns, None)  # the current turn
    for turn in turns:
        if not any(e.get("event") == "action" and e.get("name") == action_name for e in turn):
            break
        count += 1
    return count


def value_before_this_turn(tracker: Tracker, slot: str) -> Any:
    """The slot's value before the latest user message (extraction may have changed it)."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


def latest_intent(tracker: Tracker) -> Optional[str]:
    return (tracker.latest_message or {}).get("intent", {}).get("name")


def latest_entity(tracker: Tracker, entity: str) -> Optional[Any]:
    return next(tracker.get_latest_entity_values(entity), None)
