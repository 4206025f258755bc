"""Reading the Rasa tracker: what happened in this conversation, independent of business."""

from __future__ import annotations

from typing import Any, Optional

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


def user_turn_number(tracker: Tracker) -> int:
    """How many customer messages the conversation has had, the latest included."""
    return sum(1 for event in tracker.events if event.get("event") == "user")


def form_activation_time(tracker: Tracker, form: str) -> Optional[float]:
    """When `form` was last activated: the identity of one submission of a request."""
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == form:
            return event.get("timestamp")
    return None


def resumed_after_digression(tracker: Tracker, form: str) -> bool:
    """Whether another action answered the latest message before `form` runs again (an FAQ
    answered mid-form): the form then only asks its next question."""
    own = {"action_listen", "action_extract_slots", form, f"validate_{form}"}
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "action" and event.get("name") not in own:
            return True
    return False
