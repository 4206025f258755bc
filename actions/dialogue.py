"""The conversation rules every action shares (spec §4): when the bot hands over, and how it
notices that a conversation is not moving forward.

* `note_stall` — a turn in which the bot did not understand (a fallback, or 「嗯嗯那个」 as the
  answer to a question). Two such turns in a row hand over with reason `fallback`, whatever
  the NLU said; the count is kept in the `stall` slot as (user turn, count), so a turn that
  moved the conversation forward breaks the chain without anything having to reset it.
* `hand_over` — queue the conversation for an agent and pause the bot (or file a call-back
  outside duty hours), recording the contract's reason.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.tracker_utils import channel_of, user_turn_number
from bot.core import intake
from bot.core.catalog import load_catalog
from bot.core.settings import get_settings
from bot.core.stores import shared_store

FAILURES_SLOT = "validation_failures"
STALL_SLOT = "stall"
DECLINED_SLOT = "declined"
EMERGENCY_TICKET_SLOT = "emergency_ticket_no"
HANDOFF_REASONS = ("request_human", "emergency", "fallback", "validation", "complaint", "callback")


def note_stall(tracker: Tracker) -> Tuple[SlotSet, bool]:
    """Record that this turn did not move the conversation forward: (the slot event, whether
    the limit of consecutive such turns is reached)."""
    turn = user_turn_number(tracker)
    previous = tracker.get_slot(STALL_SLOT) or {}
    count = int(previous.get("count", 0)) + 1 if previous.get("turn") == turn - 1 else 1
    if previous.get("turn") == turn:  # already counted in this turn
        count = int(previous.get("count", 1))
    limit = get_settings().service.dialogue.fallbacks_before_handoff
    return SlotSet(STALL_SLOT, {"turn": turn, "count": count}), count >= limit


def collected_details(tracker: Tracker) -> Dict[str, Any]:
    """The details given so far (what an agent sees with the hand-over)."""
    return {
        name: tracker.get_slot(name)
        for name in load_catalog().fields
        if tracker.get_slot(name) not in (None, "", intake.NOT_PROVIDED)
    }


def too_many_handoffs(tracker: Tracker) -> bool:
    """More hand-overs from this conversation, or this address, than the limits allow
    (config/service.yml `limits`; INTAKE_RATE_LIMITS=off turns them off)."""
    settings = get_settings()
    if not settings.rate_limits_on:
        return False
    limits, store = settings.service.limits, shared_store()
    ip = ((tracker.latest_message or {}).get("metadata") or {}).get("client_ip")
    over = (
        store.hit(f"handoff:sender:{tracker.sender_id}", 3600) > limits.handoffs_per_sender_per_hour
    )
    if ip and ip not in limits.trusted_proxies:
        over = store.hit(f"handoff:ip:{ip}", 3600) > limits.handoffs_per_ip_per_hour or over
    return over


def hand_over(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    reason: str,
    priority: Optional[str] = None,
) -> List[EventType]:
    """Queue the conversation for an agent and pause the bot (or file a call-back)."""
    if reason not in HANDOFF_REASONS:
        raise ValueError(f"not a contract hand-over reason: {reason}")
    if too_many_handoffs(tracker):
        dispatcher.utter_message(text=load_catalog().system_messages["handoff_rate_limited"])
        return [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet(STALL_SLOT, None)]
    ticket_no = tracker.get_slot(EMERGENCY_TICKET_SLOT) or intake.latest_ticket_no(
        tracker.sender_id
    )
    result = intake.request_handoff(
        tracker.sender_id,
        channel_of(tracker),
        reason,
        collected_details(tracker),
        ticket_no,
        priority=priority,
    )
    events: List[EventType] = [
        ActiveLoop(None),
        SlotSet("requested_slot", None),
        SlotSet("offer_human", False),
        SlotSet(EMERGENCY_TICKET_SLOT, None),
        SlotSet(FAILURES_SLOT, None),
        SlotSet(STALL_SLOT, None),
    ]
    if not result.queued:
        dispatcher.utter_message(response="utter_handoff_callback", ticket_no=result.ticket_no)
        return events
    if result.ahead:
        dispatcher.utter_message(response="utter_handoff_queued", ahead=result.ahead)
    else:
        dispatcher.utter_message(response="utter_handoff_queued_first")
    return events + [ConversationPaused()]
