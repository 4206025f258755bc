"""Queries answered in the conversation: bill, outages, ticket progress, FAQs, materials."""

from __future__ import annotations

from typing import List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.threads import BlockingAction
from actions.tracker_utils import last_form, latest_intent
from bot.core import intake
from bot.core.catalog import load_catalog
from bot.core.queries.billing import BillingUnavailable, billing_service_from_settings
from bot.core.queries.outages import OutageService


class ActionAnswerFaq(BlockingAction):
    """Answers from the catalog's FAQ section, keyed by intent."""

    def name(self) -> Text:
        return "action_answer_faq"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        answer = load_catalog().faq.get(latest_intent(tracker) or "")
        dispatcher.utter_message(text=answer) if answer else dispatcher.utter_message(
            response="utter_default"
        )
        return []


class ActionAnswerMaterials(BlockingAction):
    """The documents a business needs; the business from the message or the current form."""

    def name(self) -> Text:
        return "action_answer_materials"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        catalog = load_catalog()
        code = next(tracker.get_latest_entity_values("business"), None)
        service = catalog.services.get(code) if code else None
        if service is None and tracker.active_loop_name:
            service = catalog.service_for_form(last_form(tracker))
        if service is None:
            buttons = [
                {"title": s.name, "payload": f'/ask_materials{{"business": "{s.code}"}}'}
                for s in catalog.requestable
                if s.materials
            ]
            dispatcher.utter_message(response="utter_ask_business", buttons=buttons)
            return []
        if service.materials:
            dispatcher.utter_message(
                response="utter_materials",
                service_name=service.name,
                materials="\n".join(f"{i}. {m}" for i, m in enumerate(service.materials, 1)),
            )
        else:
            dispatcher.utter_message(response="utter_materials_none", service_name=service.name)
        return [SlotSet("business", None)]


class ActionAnswerBill(BlockingAction):
    def name(self) -> Text:
        return "action_answer_bill"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        account_no = tracker.get_slot("account_no")
        month = tracker.get_slot("month")
        done = [SlotSet("month", None), SlotSet("phone_last4", None)]
        billing = billing_service_from_settings()
        if intake.verification_locked(tracker.sender_id):
            dispatcher.utter_message(response="utter_verification_locked")
            return done
        try:
            verified = billing.contact_matches(
                account_no, str(tracker.get_slot("phone_last4") or "")
            )
            bill = billing.latest_bill(account_no, month) if verified else None
        except BillingUnavailable:
            dispatcher.utter_message(response="utter_bill_unavailable")
            return done
        if verified is None:  # no such account, or no phone to check against
            dispatcher.utter_message(response="utter_bill_no_phone", account_no=account_no)
            return [*done, SlotSet("account_no", None)]
        if not verified:
            locked = intake.verification_locked(tracker.sender_id, failed_now=True)
            dispatcher.utter_message(
                response="utter_verification_locked" if locked else "utter_bill_verify_failed"
            )
            return done
        if bill is None:
            dispatcher.utter_message(
                response="utter_bill_not_found", account_no=account_no, month=month or ""
            )
            return [*done, SlotSet("account_no", None)]
        dispatcher.utter_message(
            response="utter_bill",
            account_no=bill.account_no,
            month=bill.month,
            usage_kwh=str(bill.usage_kwh),
            amount_yuan=f"{bill.amount_yuan:.2f}",
            due_date=str(bill.due_date),
            arrears_yuan=f"{bill.arrears_yuan:.2f}",
        )
        return done


class ActionAnswerOutage(BlockingAction):
    def name(self) -> Text:
        return "action_answer_outage"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        area = tracker.get_slot("area")
        service = OutageService()
        # The place as the NLU cut it, else the whole message (「明天峡山东山路停电吗」).
        notices = service.find(area) or service.find(
            (tracker.latest_message or {}).get("text") or ""
        )
        if not notices:
            dispatcher.utter_message(response="utter_outage_none", area=area)
        else:
            formats = load_catalog().formats
            lines = [
                formats["outage_line"].format(
                    district=n.district,
                    area=n.area,
                    reason=n.reason,
                    start=intake.format_local_time(n.start_at),
                    end=intake.format_local_time(n.end_at),
                )
                + (formats["outage_ongoing"] if n.ongoing else "")
                for n in notices
            ]
            dispatcher.utter_message(
                response="utter_outage_found", area=area, outages="\n".join(lines)
            )
        return [SlotSet("area", None)]


class ActionAnswerTicket(BlockingAction):
    def name(self) -> Text:
        return "action_answer_ticket"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        catalog = load_catalog()
        lookup = tracker.get_slot("ticket_lookup")
        answer = intake.lookup_ticket(tracker.sender_id, lookup, tracker.get_slot("phone_last4"))
        refusals = {
            "not_found": "utter_ticket_not_found",
            "verify": "utter_ticket_verify_failed",
            "verify_failed": "utter_ticket_verify_failed",
            "locked": "utter_verification_locked",
            "staff_only": "utter_ticket_violation_hidden",
            "other": "utter_ticket_other_conversations",
        }
        if answer.outcome in refusals:
            dispatcher.utter_message(response=refusals[answer.outcome], lookup=lookup)
        for ticket in answer.tickets:
            service = catalog.services.get(ticket["category"])
            due = ticket.get("due_at")
            dispatcher.utter_message(
                response="utter_ticket_status",
                ticket_no=ticket["ticket_no"],
                service_name=service.name if service else ticket["category"],
                status=catalog.statuses.get(ticket["status"], ticket["status"]),
                department=ticket["department"],
                due_text=catalog.formats["due_text"].format(
                    due_time=intake.format_local_time(intake.parse_iso(due))
                )
                if due
                else "",
                updated_at=intake.format_local_time(intake.parse_iso(ticket["updated_at"])),
            )
        return [SlotSet("ticket_lookup", None), SlotSet("phone_last4", None)]
