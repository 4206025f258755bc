"""Actions around a service request: confirm, submit, file an emergency at once, cancel."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.dialogue import (
    DECLINED_SLOT,
    EMERGENCY_TICKET_SLOT,
    FAILURES_SLOT,
    STALL_SLOT,
    hand_over,
    note_stall,
)
from actions.forms import ADDRESS_PARTIAL_SLOT, DUPLICATE_SLOT, KEEP_EXISTING
from actions.media import MEDIA_SLOTS, PHOTOS_SLOT, TICKET_LOCATION_SLOT
from actions.threads import BlockingAction
from actions.tracker_utils import (
    channel_of,
    form_activation_time,
    last_form,
    latest_intent,
    value_before_this_turn,
)
from bot.core import intake
from bot.core.catalog import CONFIRM_SLOT, Service, load_catalog
from bot.core.location import Place

# Details that belong to one request; contact details (name, phone, account, address) are
# kept for the customer's next request in the same conversation (unless declined).
PER_REQUEST_SLOTS = (
    "description",
    "capacity_kw",
    "change_direction",
    "customer_type",
    CONFIRM_SLOT,
    FAILURES_SLOT,
    EMERGENCY_TICKET_SLOT,
    "requested_slot",
    DECLINED_SLOT,
    ADDRESS_PARTIAL_SLOT,
    DUPLICATE_SLOT,
    STALL_SLOT,
    *MEDIA_SLOTS,
)


def _service(tracker: Tracker) -> Service | None:
    return load_catalog().service_for_form(last_form(tracker))


def _reset_request(tracker: Tracker) -> List[EventType]:
    """Forget this request's details (and any detail the customer declined to give)."""
    declined = [n for n in load_catalog().fields if tracker.get_slot(n) == intake.NOT_PROVIDED]
    return [SlotSet(name, None) for name in (*PER_REQUEST_SLOTS, *declined)]


def _submission(tracker: Tracker, service: Service) -> str | None:
    """The identity of this run of the form: a retried action files the same ticket again."""
    started = form_activation_time(tracker, service.form_name)
    return f"{tracker.sender_id}:{service.form_name}:{started}" if started else None


class ActionAskConfirmSubmission(BlockingAction):
    """Show the collected details with 「确认提交」「修改」, or ask which detail to change."""

    def name(self) -> Text:
        return "action_ask_confirm_submission"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        service = _service(tracker)
        if service is None:
            return []
        if (
            tracker.get_slot(DUPLICATE_SLOT)
            and value_before_this_turn(tracker, DUPLICATE_SLOT) is None
        ):
            return [SlotSet("requested_slot", CONFIRM_SLOT)]  # the validator asked about it
        confirming = value_before_this_turn(tracker, "requested_slot") == CONFIRM_SLOT
        details = (*service.required_fields(tracker.slots), *service.optional)
        # 「不对，电话是139…」 reads as a "no", but it carries the correction: show it.
        corrected = any(
            tracker.get_slot(name) != value_before_this_turn(tracker, name) for name in details
        )
        if confirming and latest_intent(tracker) == "deny" and not corrected:
            catalog = load_catalog()
            buttons = [
                {
                    "title": catalog.fields[name].label,
                    "payload": f'/edit_detail{{"detail": "{name}"}}',
                }
                for name in details
            ]
            dispatcher.utter_message(response="utter_ask_which_detail", buttons=buttons)
        else:
            dispatcher.utter_message(
                response="utter_confirm_summary",
                service_name=service.name,
                summary=intake.summary(
                    service,
                    tracker.slots,
                    tracker.get_slot(DECLINED_SLOT) or (),
                    photos=int(tracker.get_slot(PHOTOS_SLOT) or 0),
                ),
            )
        return [SlotSet("requested_slot", CONFIRM_SLOT)]


class ActionSubmitRequest(BlockingAction):
    """File the confirmed request and tell the ticket number and the due time."""

    def name(self) -> Text:
        return "action_submit_request"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        service = _service(tracker)
        if service is None:
            dispatcher.utter_message(response="utter_default")
            return _reset_request(tracker)
        if tracker.get_slot(CONFIRM_SLOT) == KEEP_EXISTING:
            dispatcher.utter_message(
                text=load_catalog()
                .dialogue_messages["duplicate_kept"]
                .format(ticket_no=tracker.get_slot(DUPLICATE_SLOT))
            )
            return [SlotSet("offer_human", False), *_reset_request(tracker)]
        details = intake.details_from_slots(
            service, tracker.slots, tracker.get_slot(DECLINED_SLOT) or ()
        )
        events: List[EventType] = []
        emergency_ticket = tracker.get_slot(EMERGENCY_TICKET_SLOT)
        location = Place.from_slot(tracker.get_slot(TICKET_LOCATION_SLOT))
        if service.files_before_asking and emergency_ticket:
            intake.update_request_details(emergency_ticket, details, location=location)
            dispatcher.utter_message(response="utter_emergency_updated", ticket_no=emergency_ticket)
            events.append(SlotSet("offer_human", False))
        else:
            filed = intake.file_request(
                service.code,
                details,
                tracker.sender_id,
                channel_of(tracker),
                submission=_submission(tracker, service),
                location=location,
            )
            if filed.created:
                response, due_time = intake.due_response(service, filed.due_at)
                dispatcher.utter_message(
                    response=response,
                    service_name=service.name,
                    ticket_no=filed.ticket_no,
                    department=service.department,
                    due_time=due_time,
                )
            else:
                dispatcher.utter_message(
                    response="utter_ticket_already_filed", ticket_no=filed.ticket_no
                )
            if service.offers_human:
                dispatcher.utter_message(response="utter_offer_human_after_complaint")
            events.append(SlotSet("offer_human", service.offers_human))
        # An emergency keeps its ticket number for the hand-over that follows.
        reset = [
            e
            for e in _reset_request(tracker)
            if not (service.hands_over and e["name"] == EMERGENCY_TICKET_SLOT)
        ]
        return events + reset


class ActionFileEmergency(BlockingAction):
    """File the urgent ticket at once, with whatever the first message said."""

    def name(self) -> Text:
        return "action_file_emergency"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        service = next(s for s in load_catalog().requestable if s.files_before_asking)
        details: Dict[str, Any] = intake.details_from_slots(service, tracker.slots)
        details["description"] = (tracker.latest_message or {}).get("text", "")
        filed = intake.file_request(
            service.code,
            details,
            tracker.sender_id,
            channel_of(tracker),
            submission=_submission(tracker, service),
        )
        dispatcher.utter_message(
            response="utter_emergency_ticket",
            ticket_no=filed.ticket_no,
            due_time=intake.format_local_time(filed.due_at),
        )
        return [SlotSet(EMERGENCY_TICKET_SLOT, filed.ticket_no)]


class ActionCancelRequest(BlockingAction):
    """End the form without a ticket (an emergency ticket, already filed, stays)."""

    def name(self) -> Text:
        return "action_cancel_request"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        emergency_ticket = tracker.get_slot(EMERGENCY_TICKET_SLOT)
        if emergency_ticket:
            dispatcher.utter_message(
                response="utter_cancelled_emergency", ticket_no=emergency_ticket
            )
        else:
            dispatcher.utter_message(response="utter_cancelled")
        return [ActiveLoop(None), *_reset_request(tracker)]


class ActionContinueRequest(BlockingAction):
    """The request said again in the middle of its own form (「快啲派人啊」), or any request in
    the middle of an emergency: carry on, but never in circles. An emergency skips the detail it
    was asking (it never waits, and it is never replaced by a lesser request); any other form
    says 「我们接着来」 once, and a second such turn in a row hands over (reason `fallback`)."""

    def name(self) -> Text:
        return "action_continue_request"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        catalog = load_catalog()
        service = catalog.service_for_form(tracker.active_loop_name)
        requested = tracker.get_slot("requested_slot")
        if service and service.files_before_asking and requested in catalog.fields:
            label = catalog.fields[requested].label
            dispatcher.utter_message(
                text=catalog.dialogue_messages["emergency_detail_skipped"].format(label=label)
            )
            declined = [*(tracker.get_slot(DECLINED_SLOT) or []), requested]
            return [SlotSet(requested, intake.NOT_PROVIDED), SlotSet(DECLINED_SLOT, declined)]
        stall, limit_reached = note_stall(tracker)
        if limit_reached:
            return [stall, *hand_over(dispatcher, tracker, "fallback")]
        dispatcher.utter_message(response="utter_continue_request")
        return [stall]


class ActionAffirmWithoutRequest(BlockingAction):
    """A 「是」/「确认提交」 with no request open. Soon after a filing it is most likely the
    confirmation sent again because its answer never arrived: repeat the ticket number (nothing
    is filed twice). Otherwise ask what the customer wants to do."""

    def name(self) -> Text:
        return "action_affirm_without_request"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        ticket_no = intake.just_filed_ticket_no(tracker.sender_id)
        if ticket_no:
            dispatcher.utter_message(response="utter_affirm_after_filing", ticket_no=ticket_no)
        else:
            dispatcher.utter_message(response="utter_inform_no_context")
        return []
