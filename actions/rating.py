"""The satisfaction rating after an agent hands the conversation back (spec §4).

The console starts `rating_form` through Rasa's execute endpoint; the form asks
`utter_ask_satisfaction_rating`, this validator reads the answer (1–5 or words such as
「非常满意」「不满意」) and `action_store_rating` stores it against the agent's handoff.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.threads import BlockingAction
from bot.core import intake
from bot.core.handoff.rating import parse_rating

logger = logging.getLogger(__name__)

RATING_SLOT = "satisfaction_rating"
SKIPPED = "-"  # the customer answered something that is not a rating


class ValidateRatingForm(FormValidationAction):
    """Accept a rating; anything else ends the form without one (never asks forever)."""

    def name(self) -> Text:
        return "validate_rating_form"

    def validate_satisfaction_rating(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        rating = parse_rating(value if isinstance(value, str) else None)
        return {RATING_SLOT: str(rating) if rating is not None else SKIPPED}


class ActionStoreRating(BlockingAction):
    """Store the rating on the conversation's latest closed handoff and thank the customer."""

    def name(self) -> Text:
        return "action_store_rating"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        value = tracker.get_slot(RATING_SLOT)
        rating = int(value) if isinstance(value, str) and value.isdigit() else None
        if rating is None:
            dispatcher.utter_message(response="utter_rating_skipped")
        else:
            agent = intake.record_rating(tracker.sender_id, rating)
            logger.info("rating %s for agent %s in %s", rating, agent, tracker.sender_id)
            dispatcher.utter_message(response="utter_rating_thanks", rating=rating)
        return [SlotSet(RATING_SLOT, None)]
