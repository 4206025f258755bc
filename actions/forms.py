"""The rules every form of the catalog follows; actions/form_validators.py (generated) has one
`validate_<form>` class per form, whose `validate_<slot>` methods call `check_detail`.

A turn inside a form, in order:
1. **What the message gives.** Values the NLU extracted, values the message names with a cue
   word (「户号写错了，应该是…」: the named detail wins, whatever the digits look like), and
   details it declines (「不方便留电话」). After the opening message bare digits go only into
   the detail just asked or the one the message names; a phone and a 户号 are never told
   apart by their shape alone.
2. **Each value is checked** by bot/core/normalize.py (`check_detail`). A visit address must
   be precise (bot/core/details.py): a partial one is kept and only the missing part asked.
3. **A wrong answer to the question asked** gets a specific re-ask that names the value; the
   second failure explains once more and says a person comes next; the third hands over
   (reason `validation`). An optional detail, or one an emergency must not wait for, is
   recorded as declined instead. A value named in the message that fails is reported too.
4. **Not understood** (「嗯嗯那个」 as the answer): two such turns in a row hand over (reason
   `fallback`), whatever the NLU said.
5. **At the summary** `yes` files (unless the same request was already filed in this
   conversation: then the customer is asked whether it is a new one), a named correction
   shows the corrected summary, 「修改」 asks which detail.
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.dialogue import (
    DECLINED_SLOT,
    EMERGENCY_TICKET_SLOT,
    FAILURES_SLOT,
    hand_over,
    note_stall,
)
from actions.media import (
    SHARED_LOCATION_SLOT,
    TICKET_LOCATION_SLOT,
    form_media_turn,
    location_question,
)
from actions.threads import BlockingAction
from actions.tracker_utils import (
    latest_entity,
    latest_intent,
    resumed_after_digression,
    value_before_this_turn,
)
from bot.core import intake
from bot.core.catalog import CONFIRM_SLOT, Catalog, Query, Service, load_catalog
from bot.core.details import (
    address_gap,
    answer_clause,
    declined_details,
    invalid_text,
    is_attempt,
    join_address,
    named_details,
    place_mention,
    split_joint_answer,
)
from bot.core.location import Place
from bot.core.normalize import InvalidValue, parse_value
from bot.core.privacy import mask_personal_data
from bot.core.settings import get_settings

logger = logging.getLogger(__name__)

ADDRESS_PARTIAL_SLOT = "address_partial"
ASKED_TOGETHER_SLOT = "asked_together"  # the second detail of a joint question just asked
DUPLICATE_SLOT = "duplicate_of"
KEEP_EXISTING = "keep"  # confirm_submission: the customer did not want the same request twice
NOT_UNDERSTOOD = ("nlu_fallback", "unclear")
VERIFY_SLOT = "phone_last4"
# Details that are bare digits: 12 digits fit a landline and an account number alike, so a
# value goes into one of them only when that detail was asked for or named (「户号…」).
DIGITS_ONLY_KINDS = ("phone", "account_no")


class CatalogFormValidator(FormValidationAction):
    """Validates the slots of one catalog form (a service or a query)."""

    entry_code: str  # set by each generated class
    entry_kind: str  # "service" or "query"

    @abstractmethod
    def name(self) -> Text:
        """validate_<form>; abstract here so rasa-sdk registers only the generated classes."""

    # ------------------------------------------------------------ the catalog entry

    @property
    def catalog(self) -> Catalog:
        return load_catalog()

    @property
    def entry(self) -> Service | Query:
        catalog = self.catalog
        return (
            catalog.services[self.entry_code]
            if self.entry_kind == "service"
            else catalog.queries[self.entry_code]
        )

    @property
    def service(self) -> Optional[Service]:
        entry = self.entry
        return entry if isinstance(entry, Service) else None

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        """The catalog's details for what is known so far (e.g. capacity only for 非居民)."""
        return await asyncio.to_thread(self._required, tracker)

    def _required(self, tracker: Tracker) -> List[Text]:
        service = self.service
        if service is None:
            required = list(self.entry.required)
            if VERIFY_SLOT in required and not self._needs_verification(tracker):
                required.remove(VERIFY_SLOT)
            return required
        confirm = [CONFIRM_SLOT] if service.confirms else []
        return [*service.required_fields(self._known(tracker)), *service.optional, *confirm]

    def _needs_verification(self, tracker: Tracker) -> bool:
        """A bill always; a ticket only when it is not this conversation's own (its number
        found elsewhere): the last four digits of the phone it was filed with."""
        if self.entry.code != "ticket":
            return True
        lookup = tracker.get_slot("ticket_lookup")
        if not lookup:
            return True  # asked after the ticket number, which comes first
        return intake.lookup_ticket(tracker.sender_id, str(lookup)).outcome == "verify"

    def _known(self, tracker: Tracker) -> Dict[str, Any]:
        """Slot values with the ones that decide conditional details normalised
        (「我是开工厂的」 counts as 非居民 before its own validation ran)."""
        known = dict(tracker.slots)
        fields = self.catalog.fields
        for condition in self.service.required_when.values() if self.service else ():
            for name in condition:
                try:
                    known[name] = parse_value(fields[name].kind, str(known.get(name)))
                except InvalidValue:
                    pass
        return known

    def _may_decline(self, name: str) -> bool:
        service = self.service
        return service is not None and (name in service.optional or service.files_before_asking)

    # ------------------------------------------------------------ one detail

    def check_detail(self, name: str, value: Any, tracker: Tracker) -> Dict[Text, Any]:
        """`validate_<slot>`: the normalised value, or None when it does not pass."""
        try:
            return {name: parse_value(self.catalog.fields[name].kind, str(value))}
        except InvalidValue:
            return {name: None}

    def _parse(self, name: str, value: Any) -> tuple:
        """(normalised value, None) or (None, the validator's reason)."""
        try:
            return parse_value(self.catalog.fields[name].kind, str(value)), None
        except InvalidValue as invalid:
            return None, invalid.reason

    # ------------------------------------------------------------ one turn

    async def get_validation_events(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[EventType]:
        """Every rule of the module docstring, for the latest message (in a worker thread: the
        rules read the database)."""
        return await asyncio.to_thread(self._validation_events, dispatcher, tracker, domain)

    def _validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        requested = tracker.get_slot("requested_slot")
        # The opening message: Rasa validates what it pre-filled before asking anything.
        opening = requested is None or tracker.active_loop_name != self.form_name()
        if not opening and resumed_after_digression(tracker, self.form_name()):
            return []  # the form resumes after an FAQ answer or the like: nothing new to read
        intent = latest_intent(tracker)
        if not opening and intent in self.catalog.channel_intents:
            # a photo or a location: kept or offered, then the form asks its question again
            return form_media_turn(
                self.service,
                dispatcher,
                tracker,
                requested,
                tracker.get_slot(EMERGENCY_TICKET_SLOT),
            )
        slots = self._required(tracker)
        fields = [s for s in slots if s != CONFIRM_SLOT]
        text = str((tracker.latest_message or {}).get("text") or "")
        turn = _Turn(self, dispatcher, tracker, requested, domain)

        named = named_details(text, fields, self.catalog)
        filled = {k: v for k, v in tracker.slots_to_validate().items() if k in slots}
        location_answer = self._location_answer(turn, intent) if not opening else None
        if location_answer is not None:
            if not location_answer:  # 「不是」: ask for the address in words
                return turn.events()
            filled[str(requested)] = location_answer
        together = tracker.get_slot(ASKED_TOGETHER_SLOT) if not opening else None
        # only a message the mappings took as an answer (「转人工」 is none: the rules take it)
        answered = requested in filled or together in filled
        joint_answer = self._joint_answer(text, requested, together) if answered else {}
        if joint_answer:
            turn.result[ASKED_TOGETHER_SLOT] = None
            address = latest_entity(tracker, "address")
            for name, value in joint_answer.items():
                if address and self.catalog.fields[name].kind == "address":
                    # 「…中华路45号，对了，电费在哪交？」: the clause the NLU found the address in
                    joint_answer[name] = answer_clause(value, str(address))
        for name, value in joint_answer.items():
            if name != requested:
                named.setdefault(name, value)  # the second detail of the question was asked too
        declined_now = declined_details(text, fields, requested, self.catalog)
        if (
            latest_intent(tracker) == "cancel"
        ):  # 「不用了」 cancels a request, but not an optional detail
            declined_now = {n for n in declined_now if self._may_decline(n)}
        if latest_intent(tracker) == "deny" and requested and self._may_decline(requested):
            declined_now.add(requested)  # 「不了」 to an optional detail

        candidates: Dict[str, Any] = {}
        for name, value in filled.items():
            if name == CONFIRM_SLOT:
                continue
            value = named.get(name, joint_answer.get(name, value))
            if (
                name == requested
                and name not in joint_answer
                and self.catalog.fields[name].kind == "address"
                and location_answer is None
            ):
                value = answer_clause(text, str(value))
            if joint_answer and name == requested and name not in joint_answer:
                turn.result[name] = None  # 「13800138000」 to 「姓名和电话」 gives no name yet
                continue
            if (
                opening
                or name == requested
                or name in named
                or self.catalog.fields[name].kind not in DIGITS_ONLY_KINDS
            ):
                candidates[name] = value
            else:  # digits not asked for and not named: a guess from their shape only
                turn.result[name] = value_before_this_turn(tracker, name)
        for name, value in {**joint_answer, **named}.items():
            candidates.setdefault(name, value)
        if opening and "address" in fields and "address" not in candidates and self._visit():
            place = place_mention(text)  # 「我在潮南区陈店镇，想装光伏」: keep the town
            if place and not tracker.get_slot("address"):
                turn.result[ADDRESS_PARTIAL_SLOT] = place

        for name, value in candidates.items():
            self._take(turn, name, value, name in declined_now, opening, named)
        for name in declined_now:
            if name not in candidates and tracker.get_slot(name) in (None, ""):
                self._declined(turn, name)

        if CONFIRM_SLOT in filled:
            turn.result.update(self._confirmation(filled[CONFIRM_SLOT], turn, tracker))
        return turn.events()

    def _location_answer(self, turn: "_Turn", intent: Optional[str]) -> Optional[str]:
        """The answer to 「是这个位置吗」 when it was asked: the place's text for a yes, "" for
        a no (the address is asked in words), None when no location was offered (or the
        customer answered with something else, which is then read as usual)."""
        offered = Place.from_slot(turn.tracker.get_slot(SHARED_LOCATION_SLOT))
        requested = turn.requested
        if offered is None or not requested or self.catalog.fields[requested].kind != "address":
            return None
        turn.result[SHARED_LOCATION_SLOT] = None
        if intent == "affirm":
            turn.result[TICKET_LOCATION_SLOT] = offered.as_slot()
            return offered.text
        if intent == "deny":
            turn.result[requested] = None
            return ""
        return None

    def _joint_answer(
        self, text: str, requested: Optional[str], together: Optional[str]
    ) -> Dict[str, str]:
        """The two details of the answer to a joint question (empty for any other answer)."""
        if not requested or not together:
            return {}
        joint = next(
            (j for j in self.catalog.ask_together if set(j.fields) == {requested, together}),
            None,
        )
        return split_joint_answer(text, joint, self.catalog) if joint else {}

    def _take(
        self,
        turn: "_Turn",
        name: str,
        value: Any,
        declined: bool,
        opening: bool,
        named: Dict[str, str],
    ) -> None:
        """Check one candidate value (its `validate_<slot>`) and record what follows from it."""
        validate = getattr(self, f"validate_{name}")
        normalised = validate(value, turn.dispatcher, turn.tracker, turn.domain).get(name)
        reason = None if normalised is not None else self._parse(name, value)[1]
        if normalised is None and declined:
            self._declined(turn, name)
            return
        if normalised is not None and name == "address" and self._visit():
            normalised = self._visit_address(turn, str(normalised))
            if normalised is None:
                return
        if normalised is not None:
            turn.accept(name, normalised)
            return
        if name == turn.requested:
            if str(value).startswith("/"):
                # a button of an earlier question (「确认提交」 while the form asks for the phone,
                # after a retry): no answer and no failure — say what comes first, ask again
                turn.result[name] = None
                turn.handled = True
                turn.say(
                    self.catalog.dialogue_messages["button_out_of_turn"].format(
                        label=self.catalog.fields[name].label
                    )
                )
            elif not self._is_attempt(name, str(value), turn.tracker) and name not in named:
                self._nothing_given(turn)
            else:
                self._failed(turn, name, reason or "invalid", str(value))
        else:
            # A named value that is wrong (「电话153200174896」 in the opening) is said so.
            if name in named or opening:
                if name in named:
                    turn.say(invalid_text(name, reason or "invalid", str(value), self.catalog))
            turn.result[name] = self._earlier_valid_value(name, turn.tracker)

    def _visit(self) -> bool:
        return bool(self.service and self.service.visit_address)

    def _declined(self, turn: "_Turn", name: str) -> None:
        """「不方便留电话」: recorded for an optional detail; a failed try for a required one."""
        if self._may_decline(name):
            turn.decline(name, skipped=bool(self.service and self.service.files_before_asking))
        elif name == turn.requested:
            self._failed(turn, name, "declined", "")
        # a required detail declined in passing, before it is asked: the form asks it later

    def _visit_address(self, turn: "_Turn", address: str) -> Optional[str]:
        """The address when a crew can find it; else keep the part given and ask the rest."""
        partial = (
            turn.tracker.get_slot(ADDRESS_PARTIAL_SLOT) if turn.requested == "address" else None
        )
        full = join_address(partial, address) if partial else address
        gap = address_gap(full)
        if gap is None or (self.service and self.service.files_before_asking and partial):
            if turn.tracker.get_slot(ADDRESS_PARTIAL_SLOT):
                turn.result[ADDRESS_PARTIAL_SLOT] = None
            return full
        if partial and turn.requested == "address":
            self._failed(turn, "address", "address_too_vague", full, keep_partial=full)
        else:
            turn.result["address"] = None
            turn.result[ADDRESS_PARTIAL_SLOT] = full
            turn.handled = True
        return None

    def _failed(
        self, turn: "_Turn", name: str, reason: str, value: str, keep_partial: Optional[str] = None
    ) -> None:
        """A wrong answer to the question just asked (see step 3 of the module docstring)."""
        failures = turn.failures
        failures[name] = failures.get(name, 0) + 1
        field = self.catalog.fields[name]
        messages = self.catalog.dialogue_messages
        turn.result[name] = None
        turn.handled = True
        if keep_partial is not None:
            turn.result[ADDRESS_PARTIAL_SLOT] = keep_partial
        logger.info("%s rejected (%s): %s", name, reason, mask_personal_data(value))
        service = self.service
        if service is not None and service.files_before_asking:
            turn.decline(name, skipped=True)
            return
        if self._may_decline(name) and failures[name] >= 2:
            turn.decline(name)
            return
        limit = get_settings().service.dialogue.validation_failures_before_handoff
        if failures[name] >= limit:
            turn.hand_over("validation")
        elif failures[name] == limit - 1:
            turn.say(messages["detail_last_try"].format(label=field.label, hint=field.reask))
        elif reason == "declined":
            turn.say(messages["detail_required"].format(label=field.label))
        elif keep_partial is None:
            turn.say(invalid_text(name, reason, value, self.catalog))

    def _is_attempt(self, name: str, value: str, tracker: Tracker) -> bool:
        """Whether the answer tried to give `name` (a wrong number is a try, filler is not)."""
        kind = self.catalog.fields[name].kind
        if kind == "description" and latest_intent(tracker) in NOT_UNDERSTOOD:
            return False
        return is_attempt(kind, value)

    def _nothing_given(self, turn: "_Turn") -> None:
        """The answer to the question gave nothing for it (「嗯嗯那个」): not understood."""
        tracker = turn.tracker
        service = self.service
        if service is not None and service.files_before_asking and turn.requested:
            turn.decline(turn.requested, skipped=True)
            return
        stall, limit_reached = note_stall(tracker)
        turn.result[stall["name"]] = stall["value"]
        if turn.requested:
            turn.result[turn.requested] = (
                None  # what the mapping took from the message is no answer
            )
        turn.handled = True
        if limit_reached:
            turn.hand_over("fallback")
        else:
            turn.say(self.catalog.dialogue_messages["not_understood_in_form"])

    def _earlier_valid_value(self, name: str, tracker: Tracker) -> Optional[Any]:
        earlier = value_before_this_turn(tracker, name)
        if earlier in (None, intake.NOT_PROVIDED):
            return earlier
        return self._parse(name, earlier)[0]

    # ------------------------------------------------------------ the summary

    def _confirmation(self, value: Any, turn: "_Turn", tracker: Tracker) -> Dict[str, Any]:
        """`yes` completes the form; an edit request or a correction shows the summary again."""
        corrected = any(
            v is not None and v != value_before_this_turn(tracker, k)
            for k, v in turn.result.items()
            if k in self.catalog.fields
        )
        if value == "yes" and not corrected:
            return self._confirmed(turn, tracker)
        if value == "edit" and tracker.get_slot(DUPLICATE_SLOT) and not corrected:
            return {CONFIRM_SLOT: KEEP_EXISTING}
        detail = latest_entity(tracker, "detail")
        service = self.service
        if value == "edit" and service and detail in service.all_fields + service.optional:
            # 「修改」→ a detail button: ask that detail again, then confirm again.
            return {detail: None, CONFIRM_SLOT: None}
        return {CONFIRM_SLOT: None}

    def _confirmed(self, turn: "_Turn", tracker: Tracker) -> Dict[str, Any]:
        """File, unless the same request already has a ticket here and nobody asked yet."""
        service = self.service
        if service is None or tracker.get_slot(DUPLICATE_SLOT):
            return {CONFIRM_SLOT: "yes"}
        details = intake.details_from_slots(service, {**tracker.slots, **turn.result})
        earlier = intake.same_request_ticket(tracker.sender_id, service.code, details)
        if earlier is None:
            return {CONFIRM_SLOT: "yes"}
        turn.dispatcher.utter_message(
            response="utter_duplicate_request", service_name=service.name, ticket_no=earlier
        )
        return {CONFIRM_SLOT: None, DUPLICATE_SLOT: earlier}


class _Turn:
    """What one turn of a form decides: slot values, messages, and maybe a hand-over."""

    def __init__(
        self,
        form: CatalogFormValidator,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        requested: Optional[str],
        domain: DomainDict,
    ) -> None:
        self.form = form
        self.dispatcher = dispatcher
        self.tracker = tracker
        self.requested = requested
        self.domain = domain
        self.result: Dict[str, Any] = {}
        self.failures: Dict[str, int] = dict(tracker.get_slot(FAILURES_SLOT) or {})
        self.declined: List[str] = list(tracker.get_slot(DECLINED_SLOT) or [])
        self.progressed = False
        self.handled = False
        self.handover: List[EventType] = []

    def say(self, text: str) -> None:
        self.dispatcher.utter_message(text=text)

    def accept(self, name: str, value: Any) -> None:
        self.result[name] = value
        self.failures.pop(name, None)
        if name in self.declined:
            self.declined.remove(name)
        self.progressed = True

    def decline(self, name: str, skipped: bool = False) -> None:
        """Record a detail as not given (optional, or an emergency that must not wait)."""
        catalog = self.form.catalog
        self.result[name] = intake.NOT_PROVIDED
        if name not in self.declined:
            self.declined.append(name)
        self.failures.pop(name, None)
        key = "emergency_detail_skipped" if skipped else "detail_declined"
        self.say(catalog.dialogue_messages[key].format(label=catalog.fields[name].label))
        self.progressed = True

    def hand_over(self, reason: str) -> None:
        self.handover = hand_over(self.dispatcher, self.tracker, reason)

    def events(self) -> List[EventType]:
        if self.failures != (self.tracker.get_slot(FAILURES_SLOT) or {}):
            self.result[FAILURES_SLOT] = self.failures
        if self.declined != list(self.tracker.get_slot(DECLINED_SLOT) or []):
            self.result[DECLINED_SLOT] = self.declined
        events: List[EventType] = [SlotSet(name, value) for name, value in self.result.items()]
        return events + self.handover


class AskDetail(BlockingAction):
    """`action_ask_<detail>` of a detail the catalog may ask together with another
    (`ask_together`): both in one question while both are missing, else the detail's own
    question — or, for a partial visit address (「潮南区两英镇」), only its missing part."""

    field_name: str  # set by each generated class

    @abstractmethod
    def name(self) -> Text:
        """action_ask_<detail>; abstract here so rasa-sdk registers only the generated classes."""

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        catalog = load_catalog()
        name = self.field_name
        asked = [SlotSet("requested_slot", name)]
        is_address = catalog.fields[name].kind == "address"
        partial = tracker.get_slot(ADDRESS_PARTIAL_SLOT) if is_address else None
        offered = Place.from_slot(tracker.get_slot(SHARED_LOCATION_SLOT)) if is_address else None
        if offered is not None and not partial:
            location_question(dispatcher, offered)  # 「是这个位置吗：潮南区峡山街道？」
            return [*asked, SlotSet(ASKED_TOGETHER_SLOT, None)]
        if partial:
            question = catalog.dialogue_messages[address_gap(partial) or "address_needs_road"]
            dispatcher.utter_message(text=question.format(partial=partial))
            return [*asked, SlotSet(ASKED_TOGETHER_SLOT, None)]
        service = catalog.service_for_form(tracker.active_loop_name)
        known = tracker.slots
        missing = (
            [f for f in service.required_fields(known) if known.get(f) in (None, "")]
            if service
            else []
        )
        joint = catalog.joint_question(service, name, missing)
        if joint is None:
            dispatcher.utter_message(response=f"utter_ask_{name}")
            return [*asked, SlotSet(ASKED_TOGETHER_SLOT, None)]
        dispatcher.utter_message(text=joint.ask)
        return [*asked, SlotSet(ASKED_TOGETHER_SLOT, joint.partner(name))]
