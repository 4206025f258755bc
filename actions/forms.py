"""Form validation for every form of the catalog — one class, one validator per form.

Each `validate_<form>` action is a `CatalogFormValidator` bound to one catalog entry, created
at import time from bot/catalog.yml; adding a business adds its validator automatically.
Every detail is normalised and checked by bot/core/normalize.py; a wrong answer to the question
just asked gets the catalog's specific re-ask, and after N failures a person is offered.
"""
from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.tracker_utils import latest_entity, latest_intent, value_before_this_turn
from bot.core.catalog import CONFIRM_SLOT, Query, Service, load_catalog
from bot.core.settings import get_settings
from bot.core.intake import NOT_PROVIDED
from bot.core.normalize import InvalidValue, digits_of, mask_personal_data, normalize_text, parse_value

logger = logging.getLogger(__name__)

FAILURES_SLOT = "validation_failures"
# Answers that decline an optional detail (or one an emergency must not wait for).
SKIP_WORDS = ("不留", "匿名", "跳过", "不用", "不需要", "没有", "冇", "不方便", "不知道", "唔知", "算了", "不想")


def _failure_limit() -> int:
    return get_settings().service.dialogue.validation_failures_before_handoff


class CatalogFormValidator(FormValidationAction):
    """Validates the slots of one catalog form (a service or a query)."""

    entry: Service | Query  # set on each generated subclass, with its `name`

    @abstractmethod
    def name(self) -> Text:
        """validate_<form>; abstract here so rasa-sdk registers only the generated classes."""

    @property
    def service(self) -> Optional[Service]:
        return self.entry if isinstance(self.entry, Service) else None

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        """The catalog's details for what is known so far (e.g. capacity only for 非居民)."""
        if self.service is None:
            return list(self.entry.required)
        confirm = [CONFIRM_SLOT] if self.service.confirms else []
        return [*self.service.required_fields(self._known(tracker)), *self.service.optional, *confirm]

    def _known(self, tracker: Tracker) -> Dict[str, Any]:
        """Slot values with the ones that decide conditional details normalised
        (「我是开工厂的」 counts as 非居民 before its own validation ran)."""
        known = dict(tracker.slots)
        fields = load_catalog().fields
        for condition in self.service.required_when.values() if self.service else ():
            for name in condition:
                try:
                    known[name] = parse_value(fields[name].kind, str(known.get(name)))
                except InvalidValue:
                    pass
        return known

    async def get_validation_events(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[EventType]:
        """Normalise and check each slot the latest message filled."""
        slots = await self.required_slots([], dispatcher, tracker, domain)
        changed = {k: v for k, v in tracker.slots_to_validate().items() if k in slots}
        requested = tracker.get_slot("requested_slot")
        failures: Dict[str, int] = dict(tracker.get_slot(FAILURES_SLOT) or {})
        result: Dict[str, Any] = {}

        for name, value in changed.items():
            if name == CONFIRM_SLOT:
                continue
            outcome = self._validate_detail(name, value, name == requested, tracker)
            if outcome is not None:
                result[name] = outcome
                failures.pop(name, None)
            elif name == requested:
                failures[name] = failures.get(name, 0) + 1
                dispatcher.utter_message(text=load_catalog().fields[name].reask)
                if failures[name] == _failure_limit():
                    dispatcher.utter_message(response="utter_validation_offer_human")
                result[name] = None
            else:
                # A by-product of extraction (or a value carried over from an earlier
                # request) that is not valid: keep the earlier value if that one is valid.
                result[name] = self._earlier_valid_value(name, tracker)
        self._drop_number_echoes(result, requested, tracker)

        if CONFIRM_SLOT in changed:
            result.update(self._confirmation(changed[CONFIRM_SLOT], result, tracker))
        if failures != (tracker.get_slot(FAILURES_SLOT) or {}):
            result[FAILURES_SLOT] = failures
        # Nothing to report when nothing was filled: Rasa then lets the rules handle the
        # message (FAQ, cancel, 转人工 mid-form) instead of asking the same question again.
        return [SlotSet(name, value) for name, value in result.items()]

    def _validate_detail(
        self, name: str, value: Any, is_requested: bool, tracker: Tracker
    ) -> Optional[Any]:
        """The normalised value, NOT_PROVIDED for a declined optional detail, or None."""
        field = load_catalog().fields[name]
        text = str(value)
        try:
            return parse_value(field.kind, text)
        except InvalidValue as invalid:
            declined = any(w in normalize_text(text) for w in SKIP_WORDS) or latest_intent(tracker) == "deny"
            if is_requested and self._may_skip(name) and declined:
                return NOT_PROVIDED
            logger.info("%s rejected (%s): %s", name, invalid.reason, mask_personal_data(text))
            return None

    def _earlier_valid_value(self, name: str, tracker: Tracker) -> Optional[Any]:
        earlier = value_before_this_turn(tracker, name)
        if earlier in (None, NOT_PROVIDED):
            return earlier
        return self._validate_detail(name, earlier, False, tracker)

    def _may_skip(self, name: str) -> bool:
        service = self.service
        if service is None:
            return False
        return name in service.optional or service.files_before_asking

    @staticmethod
    def _drop_number_echoes(result: Dict[str, Any], requested: Optional[str], tracker: Tracker) -> None:
        """A phone typed as the answer is not also an account number (and vice versa)."""
        answer = result.get(requested) if requested else None
        answer_digits = digits_of(str(answer)) if answer else ""
        if len(answer_digits) < 7:
            return
        for other, value in list(result.items()):
            if other != requested and value and digits_of(str(value)) == answer_digits:
                result[other] = value_before_this_turn(tracker, other)

    def _confirmation(
        self, value: Any, result: Dict[str, Any], tracker: Tracker
    ) -> Dict[str, Any]:
        """`yes` completes the form; an edit request or a correction shows the summary again."""
        corrected = any(
            v is not None and v != value_before_this_turn(tracker, k) for k, v in result.items()
        )
        if value == "yes" and not corrected:
            return {CONFIRM_SLOT: "yes"}
        detail = latest_entity(tracker, "detail")
        if value == "edit" and self.service and detail in self.service.all_fields + self.service.optional:
            # 「修改」→ a detail button: ask that detail again, then confirm again.
            return {detail: None, CONFIRM_SLOT: None}
        return {CONFIRM_SLOT: None}


def _validator_for(entry: Service | Query) -> type:
    """A concrete validator class for one catalog entry (the base class stays abstract,
    so rasa-sdk registers only these)."""
    name = f"Validate{''.join(p.title() for p in entry.form_name.split('_'))}"
    members = {"entry": entry, "name": lambda self: f"validate_{entry.form_name}", "__module__": __name__}
    return type(name, (CatalogFormValidator,), members)


CATALOG = load_catalog()
VALIDATORS = [_validator_for(e) for e in (*CATALOG.requestable, *CATALOG.queries.values())]
