"""Hand-over to a person, and what the bot does when it does not understand."""

from __future__ import annotations

from typing import List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.dialogue import EMERGENCY_TICKET_SLOT, FAILURES_SLOT, hand_over, note_stall
from actions.threads import BlockingAction
from actions.tracker_utils import latest_intent
from bot.core import metrics
from bot.core.catalog import load_catalog
from bot.core.settings import get_settings


def _reason(tracker: Tracker) -> str:
    """Why the customer goes to a person (spec §4 / §5 reasons)."""
    if tracker.get_slot(EMERGENCY_TICKET_SLOT):
        return "emergency"
    if tracker.get_slot("offer_human") and latest_intent(tracker) == "affirm":
        return "complaint"
    failures = tracker.get_slot(FAILURES_SLOT) or {}
    limit = get_settings().service.dialogue.validation_failures_before_handoff
    if any(count >= limit for count in failures.values()):
        return "validation"
    return "request_human"


class ActionHandoff(BlockingAction):
    """「转人工」, an emergency after filing, a complaint offer accepted, failed details."""

    def name(self) -> Text:
        return "action_handoff"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        return hand_over(dispatcher, tracker, _reason(tracker))


def _start_named_business(tracker: Tracker) -> List[EventType]:
    """Details that also name a business (「我家停电了，东山路12号」 read as `inform`):
    start that business's form, with the message as its description. The catalog's keywords
    (entity `business`) decide; emergencies keep their own path (safety advice first)."""
    code = next(tracker.get_latest_entity_values("business"), None)
    service = load_catalog().services.get(code) if code else None
    if service is None or not service.intent or service.files_before_asking:
        return []
    events: List[EventType] = []
    if "description" in service.required:
        events.append(SlotSet("description", (tracker.latest_message or {}).get("text")))
    return events + [FollowupAction(service.form_name)]


class ActionFallback(BlockingAction):
    """Say we did not understand; the second time in a row, hand over to a person.

    Also runs for `inform` outside a form: details that name a business start its form;
    details without entities (「？？？」) are a misunderstanding too; other details get a
    question about the business."""

    def name(self) -> Text:
        return "action_fallback"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if latest_intent(tracker) == "inform":
            started = _start_named_business(tracker)
            if started:
                return started
            if (tracker.latest_message or {}).get("entities"):
                # Details without a request: understood, just out of context.
                dispatcher.utter_message(response="utter_inform_no_context")
                return []
        metrics.count_fallback()  # not understood (the hand-over itself is counted from the DB)
        stall, limit_reached = note_stall(tracker)
        if limit_reached:
            return hand_over(dispatcher, tracker, "fallback")
        dispatcher.utter_message(response="utter_default")
        return [stall]
