"""The catalog is the one source: the domain, the rules and the contract must agree with it."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.core.catalog import CONFIRM_SLOT, load_catalog
from bot.core.settings import PROJECT_ROOT
from bot.tools.generate import build_domain, stale_generated

CATALOG = load_catalog()
DOMAIN_BASE = yaml.safe_load((PROJECT_ROOT / "domain" / "base.yml").read_text(encoding="utf-8"))

CONTRACT_SERVICES = {  # spec §1: intent → (code, department, priority)
    "apply_new_connection": ("new_connection", "业扩报装", "normal"),
    "apply_capacity_change": ("capacity_change", "业扩报装", "normal"),
    "apply_transfer": ("transfer", "营业厅", "normal"),
    "apply_account_closure": ("account_closure", "营业厅", "normal"),
    "apply_meter_relocation": ("meter_relocation", "营业厅", "normal"),
    "apply_tariff_change": ("tariff_change", "营业厅", "normal"),
    "apply_ev_charger": ("ev_charger", "业扩报装", "normal"),
    "apply_solar_pv": ("solar_pv", "业扩报装", "normal"),
    "report_fault": ("fault_repair", "抢修", "high"),
    "report_emergency": ("emergency", "抢修", "urgent"),
    "dispute_meter": ("meter_dispute", "计量", "normal"),
    "complaint": ("complaint", "客服投诉组", "high"),
    "report_violation": ("violation_report", "用电稽查", "normal"),
    "suggestion": ("suggestion", "客服中心", "low"),
    "praise": ("praise", "客服中心", "low"),
}
CONTRACT_INTENTS = set(CONTRACT_SERVICES) | {
    "query_bill",
    "query_outage",
    "query_ticket",
    "ask_payment_methods",
    "ask_tariff",
    "ask_materials",
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "cancel",
    "request_human",
    "bot_challenge",
    "ask_capabilities",
    "inform",
    "out_of_scope",
}
CONTRACT_ENTITIES = {
    "phone",
    "account_no",
    "ticket_no",
    "capacity_kw",
    "customer_type",
    "change_direction",
    "month",
    "business",
    "address",
    "customer_name",
}


def test_generated_domain_and_rules_are_up_to_date() -> None:
    assert stale_generated() == [], "run `python -m bot catalog generate`"


def test_catalog_matches_the_contract_table() -> None:
    for intent, (code, department, priority) in CONTRACT_SERVICES.items():
        service = CATALOG.service_for_intent(intent)
        assert service is not None, intent
        assert (service.code, service.department, service.priority) == (code, department, priority)


def test_required_details_follow_the_contract() -> None:
    required = {s.code: set(s.required) for s in CATALOG.requestable}
    assert required["new_connection"] == {"customer_name", "phone", "address", "customer_type"}
    assert (
        CATALOG.services["new_connection"].required_fields({"customer_type": "非居民"})[-1]
        == "capacity_kw"
    )
    assert "capacity_kw" not in CATALOG.services["new_connection"].required_fields(
        {"customer_type": "居民"}
    )
    assert required["capacity_change"] == {"account_no", "phone", "change_direction", "capacity_kw"}
    assert required["violation_report"] == {"description", "address"}
    assert CATALOG.services["violation_report"].optional == ("phone",)
    assert required["suggestion"] == {"description"} and required["praise"] == {"description"}


def test_domain_lists_every_contract_intent_and_entity() -> None:
    domain = build_domain(CATALOG)
    assert CONTRACT_INTENTS <= set(domain["intents"])  # generated from the catalog
    assert "intents" not in DOMAIN_BASE  # … and written nowhere else
    assert CONTRACT_ENTITIES <= set(DOMAIN_BASE["entities"])


def test_every_form_asks_exactly_the_catalog_details() -> None:
    domain = build_domain(CATALOG)
    for service in CATALOG.requestable:
        slots = domain["forms"][service.form_name]["required_slots"]
        confirm = [CONFIRM_SLOT] if service.code != "emergency" else []
        assert slots == [*service.all_fields, *service.optional, *confirm]
        for name in set(slots) - {CONFIRM_SLOT}:
            assert f"utter_ask_{name}" in domain["responses"]
    for query in CATALOG.queries.values():
        assert domain["forms"][query.form_name]["required_slots"] == list(query.required)


def test_every_field_entity_is_a_domain_entity_and_has_a_parser() -> None:
    from bot.core.normalize import PARSERS

    for field in CATALOG.fields.values():
        assert field.kind in PARSERS, field.name
        assert set(field.entities) <= CONTRACT_ENTITIES, field.name


def test_every_service_intent_has_training_data() -> None:
    nlu_files = list((PROJECT_ROOT / "data" / "nlu").glob("*.yml"))
    text = "\n".join(p.read_text(encoding="utf-8") for p in nlu_files)
    for intent in CONTRACT_INTENTS:
        assert f"- intent: {intent}\n" in text, intent
    assert Path(PROJECT_ROOT / "tests" / "nlu" / "holdout.yml").exists()


def test_business_words_name_the_right_service() -> None:
    assert CATALOG.business_for_text("装新电表").code == "new_connection"
    assert CATALOG.business_for_text("过户").code == "transfer"
    assert CATALOG.business_for_text("屋顶光伏").code == "solar_pv"
    assert CATALOG.business_for_text("天气") is None
