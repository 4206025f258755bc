# GENERATED from bot/catalog.yml by `python -m bot catalog generate` — do not edit.
"""One validator per form of the catalog: rasa-sdk calls `validate_<slot>` for each detail
the latest message filled; the rules every form shares are in actions/forms.py. Then one
`action_ask_<slot>` per detail asked by an action (joint questions, partial addresses).
"""
from typing import Any, Dict, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.forms import AskDetail, CatalogFormValidator


class ValidateNewConnectionForm(CatalogFormValidator):
    """新装用电（new_connection）: customer_name, phone, address, customer_type, capacity_kw."""

    entry_code = "new_connection"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_new_connection_form"

    def validate_customer_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("customer_name", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)

    def validate_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("address", value, tracker)

    def validate_customer_type(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("customer_type", value, tracker)

    def validate_capacity_kw(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("capacity_kw", value, tracker)


class ValidateCapacityChangeForm(CatalogFormValidator):
    """增容/减容（capacity_change）: account_no, phone, change_direction, capacity_kw."""

    entry_code = "capacity_change"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_capacity_change_form"

    def validate_account_no(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("account_no", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)

    def validate_change_direction(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("change_direction", value, tracker)

    def validate_capacity_kw(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("capacity_kw", value, tracker)


class ValidateTransferForm(CatalogFormValidator):
    """过户/更名（transfer）: account_no, customer_name, phone."""

    entry_code = "transfer"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_transfer_form"

    def validate_account_no(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("account_no", value, tracker)

    def validate_customer_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("customer_name", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)


class ValidateAccountClosureForm(CatalogFormValidator):
    """销户（account_closure）: account_no, phone."""

    entry_code = "account_closure"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_account_closure_form"

    def validate_account_no(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("account_no", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)


class ValidateMeterRelocationForm(CatalogFormValidator):
    """移表/迁址（meter_relocation）: account_no, phone, address."""

    entry_code = "meter_relocation"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_meter_relocation_form"

    def validate_account_no(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("account_no", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)

    def validate_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("address", value, tracker)


class ValidateTariffChangeForm(CatalogFormValidator):
    """电价变更（tariff_change）: account_no, phone."""

    entry_code = "tariff_change"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_tariff_change_form"

    def validate_account_no(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("account_no", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)


class ValidateEvChargerForm(CatalogFormValidator):
    """充电桩报装（ev_charger）: customer_name, phone, address."""

    entry_code = "ev_charger"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_ev_charger_form"

    def validate_customer_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("customer_name", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)

    def validate_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("address", value, tracker)


class ValidateSolarPvForm(CatalogFormValidator):
    """分布式光伏并网（solar_pv）: customer_name, phone, address, capacity_kw."""

    entry_code = "solar_pv"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_solar_pv_form"

    def validate_customer_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("customer_name", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)

    def validate_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("address", value, tracker)

    def validate_capacity_kw(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("capacity_kw", value, tracker)


class ValidateFaultRepairForm(CatalogFormValidator):
    """故障报修（fault_repair）: address, phone, description."""

    entry_code = "fault_repair"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_fault_repair_form"

    def validate_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("address", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("description", value, tracker)


class ValidateEmergencyForm(CatalogFormValidator):
    """紧急安全隐患（emergency）: address, phone."""

    entry_code = "emergency"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_emergency_form"

    def validate_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("address", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)


class ValidateMeterDisputeForm(CatalogFormValidator):
    """计量/电费异议（meter_dispute）: account_no, phone, description."""

    entry_code = "meter_dispute"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_meter_dispute_form"

    def validate_account_no(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("account_no", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("description", value, tracker)


class ValidateComplaintForm(CatalogFormValidator):
    """投诉（complaint）: phone, description."""

    entry_code = "complaint"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_complaint_form"

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("description", value, tracker)


class ValidateViolationReportForm(CatalogFormValidator):
    """举报（violation_report）: description, address, phone."""

    entry_code = "violation_report"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_violation_report_form"

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("description", value, tracker)

    def validate_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("address", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)


class ValidateSuggestionForm(CatalogFormValidator):
    """意见建议（suggestion）: description, phone."""

    entry_code = "suggestion"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_suggestion_form"

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("description", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)


class ValidatePraiseForm(CatalogFormValidator):
    """表扬（praise）: description, phone."""

    entry_code = "praise"
    entry_kind = "service"

    def name(self) -> Text:
        return "validate_praise_form"

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("description", value, tracker)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone", value, tracker)


class ValidateBillQueryForm(CatalogFormValidator):
    """查询 bill: account_no, phone_last4."""

    entry_code = "bill"
    entry_kind = "query"

    def name(self) -> Text:
        return "validate_bill_query_form"

    def validate_account_no(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("account_no", value, tracker)

    def validate_phone_last4(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone_last4", value, tracker)


class ValidateOutageQueryForm(CatalogFormValidator):
    """查询 outage: area."""

    entry_code = "outage"
    entry_kind = "query"

    def name(self) -> Text:
        return "validate_outage_query_form"

    def validate_area(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("area", value, tracker)


class ValidateTicketQueryForm(CatalogFormValidator):
    """查询 ticket: ticket_lookup, phone_last4."""

    entry_code = "ticket"
    entry_kind = "query"

    def name(self) -> Text:
        return "validate_ticket_query_form"

    def validate_ticket_lookup(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("ticket_lookup", value, tracker)

    def validate_phone_last4(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("phone_last4", value, tracker)


class ActionAskCustomerName(AskDetail):
    """Asks customer_name: alone, or with the detail the catalog pairs it with."""

    field_name = "customer_name"

    def name(self) -> Text:
        return "action_ask_customer_name"


class ActionAskPhone(AskDetail):
    """Asks phone: alone, or with the detail the catalog pairs it with."""

    field_name = "phone"

    def name(self) -> Text:
        return "action_ask_phone"


class ActionAskAddress(AskDetail):
    """Asks address: alone, or with the detail the catalog pairs it with."""

    field_name = "address"

    def name(self) -> Text:
        return "action_ask_address"
