"""Unit tests of the Rasa actions in actions/: form validators, requests, hand-over, queries.

Each test builds a small rasa_sdk `Tracker` shaped like the one the Rasa server sends to the
action server, runs one action, and asserts on the returned events and on the exact messages
given to the dispatcher (response name + fill-ins, or the catalog's text). Tickets, handoffs
and demo billing/outage data live in the per-test SQLite database of conftest.py.

    .venv/bin/pytest tests/unit/test_actions.py -q
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    ConversationPaused,
    FollowupAction,
    SlotSet,
    UserUttered,
)
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from actions import form_validators, queries
from actions.forms import CatalogFormValidator
from actions.handoff import ActionFallback, ActionHandoff
from actions.queries import (
    ActionAnswerBill,
    ActionAnswerFaq,
    ActionAnswerMaterials,
    ActionAnswerOutage,
    ActionAnswerTicket,
)
from actions.requests import (
    ActionAffirmWithoutRequest,
    ActionAskConfirmSubmission,
    ActionCancelRequest,
    ActionFileEmergency,
    ActionSubmitRequest,
)
from bot.core import intake
from bot.core.catalog import load_catalog
from bot.core.clock import local_zone, utc_now
from bot.core.db import dispose_engines, session_scope, upgrade_database
from bot.core.handoff.repository import HandoffRepository
from bot.core.queries.billing import BillingUnavailable
from bot.core.queries.billing_models import BillRecord
from bot.core.seed import seed_default_database
from bot.core.settings import reset_settings
from bot.core.tickets.repository import TicketRepository

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("fixtures")
CATALOG = load_catalog()
REASK = {name: field.reask for name, field in CATALOG.fields.items()}

PHONE = "13812345678"
ADDRESS = "潮南区峡山街道东山路12号"


# --------------------------------------------------------------------------- domain


def _load_domain() -> Dict[str, Any]:
    """domain/base.yml and domain/catalog.yml merged, as Rasa loads a domain directory."""
    merged: Dict[str, Any] = {}
    for name in ("base.yml", "catalog.yml"):
        part = yaml.safe_load((ROOT / "domain" / name).read_text(encoding="utf-8"))
        for key, value in part.items():
            if isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            elif isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            else:
                merged[key] = value
    return merged


DOMAIN = _load_domain()
EMPTY_SLOTS = {name: None for name in DOMAIN["slots"]}
VALIDATORS = [
    cls
    for cls in vars(form_validators).values()
    if isinstance(cls, type)
    and issubclass(cls, CatalogFormValidator)
    and cls is not CatalogFormValidator
]
VALIDATOR_BY_NAME = {cls().name(): cls for cls in VALIDATORS}


# --------------------------------------------------------------------------- trackers


def entity(name: str, value: Any, text: str = "") -> Dict[str, Any]:
    start = text.find(str(value)) if text else 0
    return {
        "entity": name,
        "value": value,
        "start": max(start, 0),
        "end": max(start, 0) + len(str(value)),
        "extractor": "RegexEntityExtractor",
    }


def user(
    text: str,
    intent: str,
    entities: Sequence[Dict[str, Any]] = (),
    channel: str = "rest",
) -> Dict[str, Any]:
    parse_data = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.97},
        "entities": list(entities),
    }
    return UserUttered(text, parse_data=parse_data, input_channel=channel)


def make_tracker(
    events: List[Dict[str, Any]],
    slots: Optional[Mapping[str, Any]] = None,
    active_loop: Optional[str] = None,
    sender_id: str = "conv-1",
) -> Tracker:
    """A tracker whose latest message is the last user event of `events`."""
    latest = next((e for e in reversed(events) if e["event"] == "user"), None)
    latest_message = dict(latest["parse_data"]) if latest else {}
    latest_action = next((e["name"] for e in reversed(events) if e["event"] == "action"), None)
    return Tracker(
        sender_id,
        {**EMPTY_SLOTS, "requested_slot": None, **(slots or {})},
        latest_message,
        events,
        False,
        None,
        {"name": active_loop} if active_loop else {},
        latest_action,
    )


def form_turn(
    form: str,
    requested: str,
    text: str,
    candidates: Mapping[str, Any],
    intent: str = "inform",
    entities: Sequence[Dict[str, Any]] = (),
    known: Optional[Mapping[str, Any]] = None,
    sender_id: str = "conv-1",
) -> Tracker:
    """What Rasa sends to validate_<form> when the customer answers `requested` with `text`.

    `known` was filled in earlier turns; `candidates` are the slots this message filled.
    Like rasa's FormAction._temporary_tracker, the candidates are appended after an
    ActionExecuted of the form, so `Tracker.slots_to_validate()` returns exactly them.
    """
    known = dict(known or {})
    events: List[Dict[str, Any]] = [
        ActionExecuted("action_listen"),
        user("你好，我有事要办", "greet"),
        ActionExecuted(form),
        ActiveLoop(form),
        *[SlotSet(name, value) for name, value in known.items()],
        SlotSet("requested_slot", requested),
        BotUttered(f"(utter_ask_{requested})"),
        ActionExecuted("action_listen"),
        user(text, intent, entities),
        ActionExecuted("action_extract_slots"),
        *[SlotSet(name, value) for name, value in candidates.items()],
        SlotSet("requested_slot", requested),
        ActionExecuted(form),
        *[SlotSet(name, value) for name, value in candidates.items()],
    ]
    slots = {**known, **candidates, "requested_slot": requested}
    return make_tracker(events, slots, active_loop=form, sender_id=sender_id)


def completed_form(
    form: str,
    slots: Mapping[str, Any],
    sender_id: str = "conv-1",
    channel: str = "rest",
) -> Tracker:
    """The tracker right after `form` completed (the customer confirmed the summary)."""
    events = [
        ActionExecuted("action_listen"),
        user("我要办业务", "inform", channel=channel),
        ActionExecuted(form),
        ActiveLoop(form),
        *[SlotSet(name, value) for name, value in slots.items()],
        SlotSet("requested_slot", "confirm_submission"),
        ActionExecuted("action_listen"),
        user("/affirm", "affirm", channel=channel),
        SlotSet("confirm_submission", "yes"),
        ActionExecuted(form),
        SlotSet("confirm_submission", "yes"),
        ActiveLoop(None),
        SlotSet("requested_slot", None),
    ]
    return make_tracker(
        events, {**slots, "confirm_submission": "yes"}, active_loop=None, sender_id=sender_id
    )


def tracker_from_fixture(name: str) -> Tracker:
    """A tracker snapshot (the JSON Rasa posts to the action server) from fixtures/."""
    state = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return Tracker(
        state["sender_id"],
        {**EMPTY_SLOTS, **state["slots"]},
        state["latest_message"],
        state["events"],
        state["paused"],
        state["followup_action"],
        state["active_loop"],
        state["latest_action_name"],
    )


def sent(dispatcher: CollectingDispatcher) -> List[Dict[str, Any]]:
    """The messages as the channel gets them: text or response name, buttons and fill-ins."""
    return [
        {k: v for k, v in message.items() if k != "template" and v not in (None, [], {})}
        for message in dispatcher.messages
    ]


async def run(action: Any, tracker: Tracker) -> tuple[List[Dict[str, Any]], CollectingDispatcher]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, DOMAIN)
    return events, dispatcher


async def validate(
    form: str, tracker: Tracker
) -> tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    events, dispatcher = await run(VALIDATOR_BY_NAME[f"validate_{form}"](), tracker)
    return events, sent(dispatcher)


# --------------------------------------------------------------------------- database


@pytest.fixture(autouse=True)
def service_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The spec's defaults (§4), whatever config/service.yml of this checkout says."""
    config = {
        "handoff": {"duty_hours": {"start": "00:00", "end": "24:00"}, "claim_wait_minutes": 10},
        "dialogue": {"fallbacks_before_handoff": 2, "validation_failures_before_handoff": 3},
    }
    path = tmp_path / "service.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("INTAKE_SERVICE_CONFIG", str(path))
    return path


@pytest.fixture
def database(isolated_environment: None) -> Iterator[None]:
    """The per-test SQLite DATABASE_URL of conftest.py, migrated and empty."""
    upgrade_database()
    yield
    dispose_engines()


@pytest.fixture
def demo_data(database: None) -> None:
    seed_default_database()


def tickets_of(conversation_id: str) -> List[Dict[str, Any]]:
    with session_scope() as session:
        repository = TicketRepository(session)
        return [repository.to_dict(t, with_history=True) for t in repository.list(conversation_id)]


def handoffs_of(conversation_id: str) -> List[Dict[str, Any]]:
    with session_scope() as session:
        return [
            {
                "reason": h.reason,
                "status": h.status,
                "priority": h.priority,
                "channel": h.channel,
                "details": h.details,
                "ticket_no": h.ticket_no,
            }
            for h in HandoffRepository(session).list(conversation_id=conversation_id)
        ]


def due_text(ticket: Mapping[str, Any]) -> str:
    return intake.format_local_time(intake.parse_iso(ticket["due_at"]))


# --------------------------------------------------------------------------- the validators


async def test_every_form_of_the_domain_has_a_validator() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    assert {f"validate_{form}" for form in DOMAIN["forms"]} <= set(executor.actions)
    # every catalog form is validated by the catalog-driven validator
    assert {f"validate_{form}" for form in load_catalog().forms} == set(VALIDATOR_BY_NAME)


async def test_the_action_server_can_register_the_actions_package() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    assert "validate_complaint_form" in executor.actions


@pytest.mark.parametrize(
    "text, expected",
    [
        ("13812345678", PHONE),
        ("138 1234 5678", PHONE),
        ("138-1234-5678", PHONE),
        ("１３８１２３４５６７８", PHONE),
        ("一三八一二三四五六七八", PHONE),
        ("+86 138 1234 5678", PHONE),
        ("我的电话是138 1234 5678", PHONE),
        ("0754-88881234", "075488881234"),
        ("(0754) 8888 1234", "075488881234"),
    ],
)
async def test_a_phone_in_any_written_form_is_stored_as_digits(text: str, expected: str) -> None:
    tracker = form_turn(
        "complaint_form",
        "phone",
        text,
        {"phone": text},
        known={"description": "抄表员态度很差，还乱收费"},
    )
    events, messages = await validate("complaint_form", tracker)
    assert events == [SlotSet("phone", expected)]
    assert messages == []


async def test_a_valid_answer_clears_that_details_failure_count() -> None:
    tracker = form_turn(
        "complaint_form",
        "phone",
        "13812345678",
        {"phone": "13812345678"},
        known={"validation_failures": {"phone": 2, "description": 1}},
    )
    events, messages = await validate("complaint_form", tracker)
    assert events == [SlotSet("phone", PHONE), SlotSet("validation_failures", {"description": 1})]
    assert messages == []


@pytest.mark.parametrize(
    "text, said",
    [
        ("12345", "您给的电话 12345 是5位，手机号是11位，请再核对一下。"),
        ("1381234567", "您给的电话 1381234567 是10位，手机号是11位，请再核对一下。"),
        ("138123456789", "您给的电话 138123456789 是12位，手机号是11位，请再核对一下。"),
        ("88881234", "座机号 88881234 少了区号，请加上区号（汕头是0754），例如0754-88881234。"),
        ("我不知道", "办理需要联系电话，请提供一下；如果现在不方便，可以回复「转人工」。"),
    ],
)
async def test_an_invalid_phone_just_asked_for_is_reasked_naming_what_was_wrong(
    text: str, said: str
) -> None:
    tracker = form_turn("complaint_form", "phone", text, {"phone": text})
    events, messages = await validate("complaint_form", tracker)
    assert events == [SlotSet("phone", None), SlotSet("validation_failures", {"phone": 1})]
    assert messages == [{"text": said}]


async def test_the_second_failure_explains_once_more_and_says_a_person_comes_next() -> None:
    tracker = form_turn(
        "complaint_form",
        "phone",
        "12345",
        {"phone": "12345"},
        known={"validation_failures": {"phone": 1}},
    )
    events, messages = await validate("complaint_form", tracker)
    assert events == [SlotSet("phone", None), SlotSet("validation_failures", {"phone": 2})]
    assert messages == [
        {"text": "还是没能识别联系电话。" + REASK["phone"] + "再不行的话，我会为您转接人工客服。"}
    ]


async def test_failures_are_counted_per_detail() -> None:
    tracker = form_turn(
        "complaint_form",
        "phone",
        "12345",
        {"phone": "12345"},
        known={"validation_failures": {"description": 2}},
    )
    events, _ = await validate("complaint_form", tracker)
    assert events[-1] == SlotSet("validation_failures", {"description": 2, "phone": 1})


async def test_the_third_failure_on_one_detail_hands_over(database: None) -> None:
    tracker = form_turn(
        "complaint_form",
        "phone",
        "12345",
        {"phone": "12345"},
        known={"validation_failures": {"phone": 2}},
    )
    events, messages = await validate("complaint_form", tracker)
    assert ActiveLoop(None) in events and ConversationPaused() in events
    assert messages == [{"response": "utter_handoff_queued_first"}]
    assert [(h["reason"], h["status"]) for h in handoffs_of("conv-1")] == [
        ("validation", "waiting")
    ]


async def test_an_answer_that_gives_nothing_is_not_understood_and_twice_hands_over(
    database: None,
) -> None:
    first = form_turn(
        "complaint_form", "phone", "嗯嗯那个", {"phone": "嗯嗯那个"}, intent="nlu_fallback"
    )
    events, messages = await validate("complaint_form", first)
    assert SlotSet("phone", None) in events and "validation_failures" not in {
        e["name"] for e in events if e["event"] == "slot"
    }
    assert messages == [{"text": "抱歉，没太明白。"}]
    stall = next(e["value"] for e in events if e.get("name") == "stall")
    second = form_turn(
        "complaint_form",
        "phone",
        "就那个嘛",
        {"phone": "就那个嘛"},
        intent="inform",
        known={"stall": {**stall, "turn": stall["turn"] - 1}},
    )
    events, messages = await validate("complaint_form", second)
    assert ConversationPaused() in events
    assert [(h["reason"], h["status"]) for h in handoffs_of("conv-1")] == [("fallback", "waiting")]


@pytest.mark.parametrize("previous_phone", ["13900001111", None])
async def test_an_invalid_by_product_of_another_answer_keeps_the_previous_value(
    previous_phone: Optional[str],
) -> None:
    text = f"地址是{ADDRESS}，电话1381234567890"
    known = {"phone": previous_phone} if previous_phone else {}
    tracker = form_turn(
        "fault_repair_form",
        "address",
        text,
        {"address": ADDRESS, "phone": "1381234567890"},
        entities=[entity("address", ADDRESS, text), entity("phone", "1381234567890", text)],
        known=known,
    )
    events, messages = await validate("fault_repair_form", tracker)
    assert events == [
        SlotSet("address", ADDRESS),
        SlotSet("phone", previous_phone),
    ]
    # named (电话…) but wrong: said so, without counting a failure for a detail not asked for
    assert messages == [{"text": "您给的电话 1381234567890 是13位，手机号是11位，请再核对一下。"}]


@pytest.mark.parametrize(
    "form, requested, text, slot, expected",
    [
        ("new_connection_form", "customer_name", "我叫陈伟明", "customer_name", "陈伟明"),
        ("solar_pv_form", "capacity_kw", "五十千瓦", "capacity_kw", 50),
        ("solar_pv_form", "capacity_kw", "100 KVA", "capacity_kw", 100),
        ("capacity_change_form", "change_direction", "想加容量", "change_direction", "增容"),
        ("account_closure_form", "account_no", "户号 0301 2345 678", "account_no", "03012345678"),
        ("fault_repair_form", "address", f"地址在{ADDRESS}", "address", ADDRESS),
        ("bill_query_form", "account_no", "用电户号是030123456789", "account_no", "030123456789"),
        (
            "ticket_query_form",
            "ticket_lookup",
            "gd20261127000123",
            "ticket_lookup",
            "GD20261127000123",
        ),
        ("ticket_query_form", "ticket_lookup", "138 1234 5678", "ticket_lookup", PHONE),
        ("outage_query_form", "area", "我家在潮南区峡山", "area", "潮南区峡山"),
    ],
)
async def test_other_details_are_normalised(
    database: None, form: str, requested: str, text: str, slot: str, expected: Any
) -> None:
    events, messages = await validate(form, form_turn(form, requested, text, {slot: text}))
    assert events[:1] == [SlotSet(slot, expected)]
    assert {e["name"] for e in events[1:]} <= {"requested_slot"}  # forms with conditions
    assert messages == []


@pytest.mark.parametrize(
    "form, slot, text, said",
    [
        (
            "bill_query_form",
            "account_no",
            "12345",
            "您给的户号 12345 是5位，户号应为10到16位数字，请对照电费单再发一次。",
        ),
        ("fault_repair_form", "description", "我要报修", REASK["description"]),
        ("ticket_query_form", "ticket_lookup", "GD2026", REASK["ticket_lookup"]),
        ("fault_repair_form", "address", "东山路", REASK["address"]),
    ],
)
async def test_each_detail_has_its_own_reask(
    database: None, form: str, slot: str, text: str, said: str
) -> None:
    events, messages = await validate(form, form_turn(form, slot, text, {slot: text}))
    assert events == [SlotSet(slot, None), SlotSet("validation_failures", {slot: 1})]
    assert messages == [{"text": said}]


@pytest.mark.parametrize(
    "form, slot, text",
    [("solar_pv_form", "capacity_kw", "很大"), ("fault_repair_form", "address", "嗯嗯")],
)
async def test_an_answer_that_tries_nothing_is_not_a_failed_attempt(
    form: str, slot: str, text: str
) -> None:
    events, messages = await validate(form, form_turn(form, slot, text, {slot: text}))
    assert SlotSet(slot, None) in events
    assert "validation_failures" not in {e["name"] for e in events}
    assert messages == [{"text": "抱歉，没太明白。"}]


# -- new connection: capacity only for 非居民


@pytest.mark.parametrize(
    "customer_type, expected",
    [
        (None, ["customer_name", "phone", "address", "customer_type", "confirm_submission"]),
        ("居民", ["customer_name", "phone", "address", "customer_type", "confirm_submission"]),
        (
            "非居民",
            [
                "customer_name",
                "phone",
                "address",
                "customer_type",
                "capacity_kw",
                "confirm_submission",
            ],
        ),
    ],
)
async def test_new_connection_asks_capacity_only_for_non_residential(
    customer_type: Optional[str], expected: List[str]
) -> None:
    validator = VALIDATOR_BY_NAME["validate_new_connection_form"]()
    tracker = make_tracker([], {"customer_type": customer_type}, active_loop="new_connection_form")
    required = await validator.required_slots(
        validator.domain_slots(DOMAIN), CollectingDispatcher(), tracker, DOMAIN
    )
    assert required == expected


NEW_CONNECTION_KNOWN = {"customer_name": "陈伟明", "phone": PHONE, "address": ADDRESS}


async def test_a_residential_answer_goes_straight_to_the_confirmation() -> None:
    text = "家里住宅用电"
    tracker = form_turn(
        "new_connection_form",
        "customer_type",
        text,
        {"customer_type": text},
        known=NEW_CONNECTION_KNOWN,
    )
    events, messages = await validate("new_connection_form", tracker)
    assert events == [
        SlotSet("customer_type", "居民"),
        SlotSet("requested_slot", "confirm_submission"),
    ]
    assert messages == []


async def test_a_non_residential_answer_leaves_the_capacity_question_to_the_form() -> None:
    text = "我是开商铺的"
    tracker = form_turn(
        "new_connection_form",
        "customer_type",
        text,
        {"customer_type": text},
        known=NEW_CONNECTION_KNOWN,
    )
    events, messages = await validate("new_connection_form", tracker)
    # The required slots now equal the domain's, so Rasa's form asks capacity_kw next.
    assert events == [SlotSet("customer_type", "非居民")]
    assert messages == []


async def test_a_capacity_given_with_the_customer_type_is_validated_too() -> None:
    text = "我是开工厂的，要八十千瓦"
    tracker = form_turn(
        "new_connection_form",
        "customer_type",
        text,
        {"customer_type": text, "capacity_kw": "八十千瓦"},
        entities=[entity("capacity_kw", "八十千瓦", text)],
        known=NEW_CONNECTION_KNOWN,
    )
    events, _ = await validate("new_connection_form", tracker)
    assert events == [
        SlotSet("customer_type", "非居民"),
        SlotSet("capacity_kw", 80),
    ]


# -- optional details


@pytest.mark.parametrize(
    "text, intent",
    [
        ("匿名", "inform"),
        ("不留了", "deny"),
        ("电话就不留了", "inform"),
        ("算了吧", "deny"),
        ("no", "deny"),
        ("不方便留电话", "report_violation"),
        ("唔使留电话喇", "cancel"),
    ],
)
async def test_the_optional_phone_of_a_violation_report_can_be_declined(
    text: str, intent: str
) -> None:
    tracker = form_turn(
        "violation_report_form",
        "phone",
        text,
        {"phone": text},
        intent=intent,
        known={"description": "隔壁工厂私拉电线偷电", "address": ADDRESS},
    )
    events, messages = await validate("violation_report_form", tracker)
    assert events == [SlotSet("phone", "-"), SlotSet("declined", ["phone"])]
    assert messages == [{"text": "好的，联系电话不留也可以。"}]


async def test_the_optional_phone_still_takes_a_number() -> None:
    tracker = form_turn(
        "violation_report_form", "phone", "138 1234 5678", {"phone": "138 1234 5678"}
    )
    events, _ = await validate("violation_report_form", tracker)
    assert events == [SlotSet("phone", PHONE)]


async def test_a_required_phone_cannot_be_declined() -> None:
    tracker = form_turn("complaint_form", "phone", "匿名", {"phone": "匿名"})
    events, messages = await validate("complaint_form", tracker)
    assert events == [SlotSet("phone", None), SlotSet("validation_failures", {"phone": 1})]
    assert messages == [
        {"text": "办理需要联系电话，请提供一下；如果现在不方便，可以回复「转人工」。"}
    ]


async def test_an_emergency_never_blocks_on_the_phone() -> None:
    tracker = form_turn(
        "emergency_form",
        "phone",
        "现在不方便留电话",
        {"phone": "现在不方便留电话"},
        known={"address": ADDRESS},
    )
    events, messages = await validate("emergency_form", tracker)
    assert events == [SlotSet("phone", "-"), SlotSet("declined", ["phone"])]
    assert messages == [{"text": "好的，联系电话先不用，抢修人员会尽快处理。"}]


async def test_an_emergency_address_that_mentions_not_knowing_the_number_is_kept() -> None:
    text = "不知道门牌号在潮南区峡山街道东山路口电线杆旁边"
    tracker = form_turn("emergency_form", "address", text, {"address": text})
    events, messages = await validate("emergency_form", tracker)
    assert events == [SlotSet("address", text)]
    assert messages == []


# -- the confirmation


COMPLAINT_KNOWN = {"phone": PHONE, "description": "抄表员态度很差，还乱收费"}


async def test_yes_completes_the_form(database: None) -> None:
    tracker = form_turn(
        "complaint_form",
        "confirm_submission",
        "/affirm",
        {"confirm_submission": "yes"},
        intent="affirm",
        known=COMPLAINT_KNOWN,
    )
    events, messages = await validate("complaint_form", tracker)
    assert events == [SlotSet("confirm_submission", "yes")]
    assert messages == []


async def test_yes_completes_a_form_with_conditional_details(database: None) -> None:
    known = {**NEW_CONNECTION_KNOWN, "customer_type": "居民"}
    tracker = form_turn(
        "new_connection_form",
        "confirm_submission",
        "确认提交",
        {"confirm_submission": "yes"},
        intent="affirm",
        known=known,
    )
    events, _ = await validate("new_connection_form", tracker)
    assert events == [
        SlotSet("confirm_submission", "yes"),
        SlotSet("requested_slot", None),  # nothing left to ask: the form ends
    ]


async def test_edit_without_a_detail_asks_again() -> None:
    tracker = form_turn(
        "complaint_form",
        "confirm_submission",
        "/deny",
        {"confirm_submission": "edit"},
        intent="deny",
        known=COMPLAINT_KNOWN,
    )
    events, messages = await validate("complaint_form", tracker)
    assert events == [SlotSet("confirm_submission", None)]
    assert messages == []


@pytest.mark.parametrize("detail", ["phone", "description"])
async def test_edit_with_a_detail_clears_that_detail_and_the_confirmation(detail: str) -> None:
    text = f'/edit_detail{{"detail": "{detail}"}}'
    tracker = form_turn(
        "complaint_form",
        "confirm_submission",
        text,
        {"confirm_submission": "edit"},
        intent="edit_detail",
        entities=[entity("detail", detail)],
        known=COMPLAINT_KNOWN,
    )
    events, messages = await validate("complaint_form", tracker)
    assert events == [
        SlotSet(detail, None),
        SlotSet("confirm_submission", None),
    ]
    assert messages == []


async def test_edit_of_a_detail_the_service_does_not_have_only_asks_again() -> None:
    text = '/edit_detail{"detail": "account_no"}'
    tracker = form_turn(
        "complaint_form",
        "confirm_submission",
        text,
        {"confirm_submission": "edit"},
        intent="edit_detail",
        entities=[entity("detail", "account_no")],
        known=COMPLAINT_KNOWN,
    )
    events, _ = await validate("complaint_form", tracker)
    assert events == [SlotSet("confirm_submission", None)]


@pytest.mark.parametrize(
    "text, intent, confirm_candidate",
    [
        ("电话改成13912345678", "inform", "电话改成13912345678"),
        ("对，不过电话改成139 1234 5678", "affirm", "yes"),
    ],
)
async def test_a_correction_at_the_confirmation_changes_the_detail_and_shows_it_again(
    text: str, intent: str, confirm_candidate: str
) -> None:
    tracker = form_turn(
        "complaint_form",
        "confirm_submission",
        text,
        {"phone": "13912345678", "confirm_submission": confirm_candidate},
        intent=intent,
        entities=[entity("phone", "13912345678")],
        known=COMPLAINT_KNOWN,
    )
    events, messages = await validate("complaint_form", tracker)
    assert events == [
        SlotSet("phone", "13912345678"),
        SlotSet("confirm_submission", None),
    ]
    assert messages == []


# -- the number echo


@pytest.mark.parametrize(
    "requested, text, answer, known, echo_slot, expected_echo",
    [
        # asked the phone; the same digits were also extracted as an account number
        ("phone", "138 1234 5678", PHONE, {"account_no": "0301234567"}, "account_no", "0301234567"),
        ("phone", "13812345678", PHONE, {}, "account_no", None),
        # asked the account; an 11-digit account starting with 0 also reads as a landline
        (
            "account_no",
            "0301 2345 678",
            "03012345678",
            {"phone": "13900001111"},
            "phone",
            "13900001111",
        ),
    ],
)
async def test_a_number_answered_is_not_also_the_other_number(
    requested: str,
    text: str,
    answer: str,
    known: Dict[str, str],
    echo_slot: str,
    expected_echo: Optional[str],
) -> None:
    candidates = {requested: answer, echo_slot: answer}  # both from the NLU's entities
    tracker = form_turn(
        "account_closure_form",
        requested,
        text,
        candidates,
        entities=[entity(requested, answer), entity(echo_slot, answer)],
        known=known,
    )
    events, messages = await validate("account_closure_form", tracker)
    by_name = {e["name"]: e["value"] for e in events}
    assert by_name == {requested: answer, echo_slot: expected_echo}
    assert messages == []


async def test_two_different_numbers_in_one_answer_are_both_kept() -> None:
    text = "户号0301234567，电话13812345678"
    candidates = {"account_no": "0301234567", "phone": PHONE}  # entity mappings come first
    tracker = form_turn(
        "account_closure_form",
        "account_no",
        text,
        candidates,
        entities=[entity("account_no", "0301234567", text), entity("phone", PHONE, text)],
    )
    events, _ = await validate("account_closure_form", tracker)
    assert events == [
        SlotSet("account_no", "0301234567"),
        SlotSet("phone", PHONE),
    ]


# --------------------------------------------------------------------------- confirm / submit


def _summary_tracker(form: str, slots: Mapping[str, Any], text: str, intent: str) -> Tracker:
    """The form asks for confirmation after the customer's `text` (a 'deny' answers the summary)."""
    asked = "confirm_submission" if intent == "deny" else list(slots)[-1]
    events = [
        ActionExecuted("action_listen"),
        user("我要办业务", "inform"),
        ActionExecuted(form),
        ActiveLoop(form),
        *[SlotSet(name, value) for name, value in slots.items()],
        SlotSet("requested_slot", asked),
        ActionExecuted("action_listen"),
        user(text, intent),
        ActionExecuted(form),
        SlotSet("requested_slot", "confirm_submission"),
    ]
    return make_tracker(events, {**slots, "requested_slot": "confirm_submission"}, active_loop=form)


@pytest.mark.parametrize(
    "form, slots, service_name, summary",
    [
        (
            "new_connection_form",
            {**NEW_CONNECTION_KNOWN, "customer_type": "非居民", "capacity_kw": 80},
            "新装用电",
            f"· 姓名：陈伟明\n· 联系电话：{PHONE}\n· 地址：{ADDRESS}\n· 用电类别：非居民\n"
            "· 容量（千瓦）：80 千瓦",
        ),
        (
            "new_connection_form",
            {**NEW_CONNECTION_KNOWN, "customer_type": "居民"},
            "新装用电",
            f"· 姓名：陈伟明\n· 联系电话：{PHONE}\n· 地址：{ADDRESS}\n· 用电类别：居民",
        ),
        (
            "violation_report_form",
            {"description": "隔壁工厂私拉电线偷电", "address": ADDRESS, "phone": "-"},
            "举报",
            f"· 情况说明：隔壁工厂私拉电线偷电\n· 地址：{ADDRESS}\n· 联系电话：未提供",
        ),
    ],
)
async def test_the_confirmation_shows_every_detail_with_its_label(
    form: str, slots: Dict[str, Any], service_name: str, summary: str
) -> None:
    events, dispatcher = await run(
        ActionAskConfirmSubmission(), _summary_tracker(form, slots, "好的", "inform")
    )
    assert events == [SlotSet("requested_slot", "confirm_submission")]
    assert sent(dispatcher) == [
        {"response": "utter_confirm_summary", "service_name": service_name, "summary": summary}
    ]


def _detail_button(label: str, slot: str) -> Dict[str, str]:
    return {"title": label, "payload": f'/edit_detail{{"detail": "{slot}"}}'}


@pytest.mark.parametrize(
    "customer_type, buttons",
    [
        (
            "居民",
            [
                _detail_button("姓名", "customer_name"),
                _detail_button("联系电话", "phone"),
                _detail_button("地址", "address"),
                _detail_button("用电类别", "customer_type"),
            ],
        ),
        (
            "非居民",
            [
                _detail_button("姓名", "customer_name"),
                _detail_button("联系电话", "phone"),
                _detail_button("地址", "address"),
                _detail_button("用电类别", "customer_type"),
                _detail_button("容量（千瓦）", "capacity_kw"),
            ],
        ),
    ],
)
async def test_after_edit_the_customer_picks_the_detail_to_change(
    customer_type: str, buttons: List[Dict[str, str]]
) -> None:
    slots = {**NEW_CONNECTION_KNOWN, "customer_type": customer_type, "capacity_kw": 80}
    tracker = _summary_tracker("new_connection_form", slots, "/deny", "deny")
    events, dispatcher = await run(ActionAskConfirmSubmission(), tracker)
    assert events == [SlotSet("requested_slot", "confirm_submission")]
    assert sent(dispatcher) == [{"response": "utter_ask_which_detail", "buttons": buttons}]


async def test_a_no_that_carries_the_correction_shows_the_corrected_summary() -> None:
    """「不对，电话是139…」: the model may read a "deny", the validator took the new phone."""
    slots = {**NEW_CONNECTION_KNOWN, "customer_type": "居民"}
    tracker = _summary_tracker("new_connection_form", slots, "不对，电话是13987654321", "deny")
    tracker.events.insert(-1, SlotSet("phone", "13987654321"))
    tracker.slots["phone"] = "13987654321"
    _, dispatcher = await run(ActionAskConfirmSubmission(), tracker)
    [message] = sent(dispatcher)
    assert message["response"] == "utter_confirm_summary"
    assert "· 联系电话：13987654321" in message["summary"]


async def test_the_which_detail_buttons_include_optional_details() -> None:
    slots = {"description": "有人偷电", "address": ADDRESS, "phone": PHONE}
    tracker = _summary_tracker("violation_report_form", slots, "/deny", "deny")
    _, dispatcher = await run(ActionAskConfirmSubmission(), tracker)
    assert sent(dispatcher)[0]["buttons"] == [
        _detail_button("情况说明", "description"),
        _detail_button("地址", "address"),
        _detail_button("联系电话", "phone"),
    ]


async def test_declining_the_optional_phone_still_shows_the_summary() -> None:
    form = "violation_report_form"
    known = {"description": "隔壁工厂私拉电线偷电", "address": ADDRESS}
    events = [
        ActionExecuted("action_listen"),
        user("我要举报偷电", "report_violation"),
        ActionExecuted(form),
        ActiveLoop(form),
        *[SlotSet(name, value) for name, value in known.items()],
        SlotSet("requested_slot", "phone"),
        ActionExecuted("action_listen"),
        user("不留了", "deny"),
        ActionExecuted(form),
        SlotSet("phone", "-"),
        SlotSet("requested_slot", "confirm_submission"),
    ]
    tracker = make_tracker(
        events, {**known, "phone": "-", "requested_slot": "confirm_submission"}, active_loop=form
    )
    _, dispatcher = await run(ActionAskConfirmSubmission(), tracker)
    assert [m["response"] for m in sent(dispatcher)] == ["utter_confirm_summary"]


async def test_no_confirmation_outside_a_service_form() -> None:
    tracker = make_tracker([ActionExecuted("action_listen"), user("好的", "affirm")])
    events, dispatcher = await run(ActionAskConfirmSubmission(), tracker)
    assert events == []
    assert dispatcher.messages == []


RESET = [
    SlotSet("description", None),
    SlotSet("capacity_kw", None),
    SlotSet("change_direction", None),
    SlotSet("customer_type", None),
    SlotSet("confirm_submission", None),
    SlotSet("validation_failures", None),
    SlotSet("emergency_ticket_no", None),
    SlotSet("requested_slot", None),
    SlotSet("declined", None),
    SlotSet("address_partial", None),
    SlotSet("duplicate_of", None),
    SlotSet("stall", None),
    SlotSet("shared_location", None),
    SlotSet("ticket_location", None),
    SlotSet("photos_received", None),
]


async def test_a_confirmed_complaint_is_filed_and_a_person_is_offered(database: None) -> None:
    tracker = tracker_from_fixture("complaint_confirmed.json")
    events, dispatcher = await run(ActionSubmitRequest(), tracker)

    [ticket] = tickets_of("wx-complaint-1")
    assert {k: ticket[k] for k in ("category", "priority", "status", "department", "channel")} == {
        "category": "complaint",
        "priority": "high",
        "status": "new",
        "department": "客服投诉组",
        "channel": "wechat",
    }
    assert ticket["details"] == {"phone": PHONE, "description": "抄表员态度很差，还上门乱收费"}
    assert sent(dispatcher) == [
        {
            "response": "utter_ticket_created_deadline",
            "service_name": "投诉",
            "ticket_no": ticket["ticket_no"],
            "department": "客服投诉组",
            "due_time": due_text(ticket),
        },
        {"response": "utter_offer_human_after_complaint"},
    ]
    assert events == [SlotSet("offer_human", True), *RESET]


@pytest.mark.parametrize(
    "form, slots, category, response, service_name, department",
    [
        (
            "fault_repair_form",
            {"address": ADDRESS, "phone": PHONE, "description": "整栋楼停电了"},
            "fault_repair",
            "utter_ticket_created_on_site",
            "故障报修",
            "抢修",
        ),
        (
            "new_connection_form",
            {**NEW_CONNECTION_KNOWN, "customer_type": "非居民", "capacity_kw": 80},
            "new_connection",
            "utter_ticket_created_deadline",
            "新装用电",
            "业扩报装",
        ),
        (
            "praise_form",
            {"description": "抢修师傅半夜赶来，非常负责", "phone": "-"},
            "praise",
            "utter_ticket_created_no_due",
            "表扬",
            "客服中心",
        ),
    ],
)
async def test_a_confirmed_request_is_filed_with_its_due_time(
    database: None,
    form: str,
    slots: Dict[str, Any],
    category: str,
    response: str,
    service_name: str,
    department: str,
) -> None:
    events, dispatcher = await run(ActionSubmitRequest(), completed_form(form, slots))

    [ticket] = tickets_of("conv-1")
    assert (ticket["category"], ticket["channel"]) == (category, "rest")
    assert ticket["details"] == {k: v for k, v in slots.items() if v != "-"}
    assert sent(dispatcher) == [
        {
            "response": response,
            "service_name": service_name,
            "ticket_no": ticket["ticket_no"],
            "department": department,
            "due_time": due_text(ticket) if ticket["due_at"] else "",
        }
    ]
    # a detail the customer declined (the praise's phone) is not carried into the next request
    declined = [SlotSet(n, None) for n in ("phone",) if slots.get(n) == "-"]
    assert events == [SlotSet("offer_human", False), *RESET, *declined]
    # contact details the customer gave stay for their next request in this conversation
    kept = {"phone", "customer_name", "address", "account_no"} - {e["name"] for e in declined}
    assert not {e["name"] for e in events} & kept


async def test_submitting_the_same_request_twice_files_one_ticket(database: None) -> None:
    tracker = tracker_from_fixture("complaint_confirmed.json")
    await run(ActionSubmitRequest(), tracker)
    events, dispatcher = await run(
        ActionSubmitRequest(), tracker_from_fixture("complaint_confirmed.json")
    )

    [ticket] = tickets_of("wx-complaint-1")
    assert sent(dispatcher) == [
        {"response": "utter_ticket_already_filed", "ticket_no": ticket["ticket_no"]},
        {"response": "utter_offer_human_after_complaint"},
    ]
    assert events == [SlotSet("offer_human", True), *RESET]


async def test_a_yes_soon_after_a_filing_repeats_its_ticket_number(database: None) -> None:
    """The 「确认提交」 sent again because its answer was lost is told the ticket, not asked
    what the customer wants; later (or in a conversation without a ticket) it is asked."""
    filed = intake.file_request("fault_repair", {"description": "家里停电了"}, "conv-1", "rest")
    yes = make_tracker([ActionExecuted("action_listen"), user("确认提交", "affirm")])

    _, dispatcher = await run(ActionAffirmWithoutRequest(), yes)
    assert sent(dispatcher) == [
        {"response": "utter_affirm_after_filing", "ticket_no": filed.ticket_no}
    ]

    later = utc_now() + timedelta(minutes=31)
    assert intake.just_filed_ticket_no("conv-1", now=later) is None
    stranger = make_tracker(
        [ActionExecuted("action_listen"), user("是的", "affirm")], sender_id="conv-2"
    )
    _, dispatcher = await run(ActionAffirmWithoutRequest(), stranger)
    assert sent(dispatcher) == [{"response": "utter_inform_no_context"}]


async def test_a_completed_emergency_form_adds_the_details_to_the_urgent_ticket(
    database: None,
) -> None:
    filed = intake.file_request("emergency", {"description": "电线断了掉在路上"}, "conv-1", "rest")
    slots = {"address": ADDRESS, "phone": PHONE, "emergency_ticket_no": filed.ticket_no}
    events, dispatcher = await run(ActionSubmitRequest(), completed_form("emergency_form", slots))

    [ticket] = tickets_of("conv-1")
    assert ticket["ticket_no"] == filed.ticket_no
    assert ticket["details"] == {
        "description": "电线断了掉在路上",
        "address": ADDRESS,
        "phone": PHONE,
    }
    assert sent(dispatcher) == [
        {"response": "utter_emergency_updated", "ticket_no": filed.ticket_no}
    ]
    # the ticket number stays for the hand-over that follows
    assert events == [
        SlotSet("offer_human", False),
        *[e for e in RESET if e["name"] != "emergency_ticket_no"],
    ]


async def test_an_emergency_is_filed_at_once_with_the_message_as_description(
    database: None,
) -> None:
    text = f"电线断了掉在马路上，还冒火花，在{ADDRESS}"
    events = [
        ActionExecuted("action_listen"),
        user(text, "report_emergency", [entity("address", ADDRESS, text)], channel="telegram"),
        ActionExecuted("action_extract_slots"),
        SlotSet("address", ADDRESS),
        ActionExecuted("utter_emergency_safety"),
        BotUttered("⚠️ 请先注意安全"),
    ]
    tracker = make_tracker(events, {"address": ADDRESS})
    result, dispatcher = await run(ActionFileEmergency(), tracker)

    [ticket] = tickets_of("conv-1")
    assert {k: ticket[k] for k in ("category", "priority", "department", "channel", "status")} == {
        "category": "emergency",
        "priority": "urgent",
        "department": "抢修",
        "channel": "telegram",
        "status": "new",
    }
    assert ticket["details"] == {"address": ADDRESS, "description": text}
    created, due = (intake.parse_iso(ticket[k]) for k in ("created_at", "due_at"))
    assert due - created == timedelta(minutes=90)  # 潮南区 is rural in config/areas.yml
    assert result == [SlotSet("emergency_ticket_no", ticket["ticket_no"])]
    assert sent(dispatcher) == [
        {
            "response": "utter_emergency_ticket",
            "ticket_no": ticket["ticket_no"],
            "due_time": due_text(ticket),
        }
    ]


@pytest.mark.parametrize(
    "emergency_ticket_no, message",
    [
        (None, {"response": "utter_cancelled"}),
        (
            "GD20261127000007",
            {"response": "utter_cancelled_emergency", "ticket_no": "GD20261127000007"},
        ),
    ],
)
async def test_cancel_ends_the_form_without_a_ticket(
    emergency_ticket_no: Optional[str], message: Dict[str, str]
) -> None:
    form = "emergency_form" if emergency_ticket_no else "complaint_form"
    tracker = form_turn(
        form,
        "phone",
        "算了不办了",
        {},
        intent="cancel",
        known={"emergency_ticket_no": emergency_ticket_no},
    )
    events, dispatcher = await run(ActionCancelRequest(), tracker)
    assert events == [ActiveLoop(None), *RESET]
    assert sent(dispatcher) == [message]


# --------------------------------------------------------------------------- hand-over


def _handoff_tracker(
    slots: Mapping[str, Any],
    intent: str,
    active_loop: Optional[str] = None,
    sender_id: str = "conv-1",
) -> Tracker:
    events = [ActionExecuted("action_listen"), user("转人工", intent, channel="wechat")]
    if active_loop:
        events = [ActiveLoop(active_loop), *events]
    return make_tracker(events, slots, active_loop=active_loop, sender_id=sender_id)


HANDED_OVER = [
    ActiveLoop(None),
    SlotSet("requested_slot", None),
    SlotSet("offer_human", False),
    SlotSet("emergency_ticket_no", None),
    SlotSet("validation_failures", None),
    SlotSet("stall", None),
    ConversationPaused(),
]


@pytest.mark.parametrize(
    "slots, intent, reason, priority",
    [
        ({"phone": PHONE}, "request_human", "request_human", "normal"),
        ({"phone": PHONE, "offer_human": True}, "affirm", "complaint", "high"),
        (
            {"phone": PHONE, "validation_failures": {"account_no": 3}},
            "request_human",
            "validation",
            "normal",
        ),
        ({"phone": PHONE, "offer_human": True}, "request_human", "request_human", "normal"),
    ],
)
async def test_handoff_queues_the_conversation_with_its_reason(
    database: None, slots: Dict[str, Any], intent: str, reason: str, priority: str
) -> None:
    events, dispatcher = await run(ActionHandoff(), _handoff_tracker(slots, intent))

    assert events == HANDED_OVER
    assert sent(dispatcher) == [{"response": "utter_handoff_queued_first"}]
    assert handoffs_of("conv-1") == [
        {
            "reason": reason,
            "status": "waiting",
            "priority": priority,
            "channel": "wechat",
            "details": {"phone": PHONE},
            "ticket_no": None,
        }
    ]


async def test_an_emergency_handoff_is_urgent_and_carries_the_ticket(database: None) -> None:
    filed = intake.file_request("emergency", {"address": ADDRESS}, "conv-1", "wechat")
    with session_scope() as session:  # someone already waiting with a normal request
        HandoffRepository(session).open("other", "rest", "request_human", "normal", {})
    slots = {"address": ADDRESS, "emergency_ticket_no": filed.ticket_no}
    events, dispatcher = await run(ActionHandoff(), _handoff_tracker(slots, "affirm"))

    assert events == HANDED_OVER
    assert sent(dispatcher) == [{"response": "utter_handoff_queued_first"}]  # jumps the queue
    [handoff] = handoffs_of("conv-1")
    assert (handoff["reason"], handoff["priority"], handoff["ticket_no"]) == (
        "emergency",
        "urgent",
        filed.ticket_no,
    )


async def test_handoff_tells_how_many_are_waiting_ahead(database: None) -> None:
    with session_scope() as session:
        for other in ("a", "b"):
            HandoffRepository(session).open(other, "rest", "request_human", "normal", {})
    events, dispatcher = await run(
        ActionHandoff(), _handoff_tracker({}, "request_human", active_loop="fault_repair_form")
    )
    assert events == HANDED_OVER  # mid-form: the form ends too (ActiveLoop(None) is in it)
    assert sent(dispatcher) == [{"response": "utter_handoff_queued", "ahead": 2}]


def _fallback_tracker(turns: Sequence[Sequence[str]]) -> Tracker:
    """Earlier turns as (text, intent, action…); the last turn is the current message. An
    earlier action_fallback left its `stall` slot, as the real action does."""
    events: List[Dict[str, Any]] = [ActionExecuted("action_listen")]
    stall: Optional[Dict[str, int]] = None
    for number, (text, intent, *actions) in enumerate(turns, start=1):
        events.append(user(text, intent))
        for name in actions:
            events.append(ActionExecuted(name))
            events.append(BotUttered(f"({name})"))
            if name == "action_fallback":
                chained = stall is not None and stall["turn"] == number - 1
                stall = {"turn": number, "count": stall["count"] + 1 if chained else 1}
                events.append(SlotSet("stall", stall))
        if actions:
            events.append(ActionExecuted("action_listen"))
    return make_tracker(events, {"phone": PHONE, "stall": stall})


@pytest.mark.parametrize(
    "turns",
    [
        [("啊啊啊", "nlu_fallback")],
        [("你好", "greet", "utter_greet"), ("啊啊啊", "nlu_fallback")],
        # not in a row: an understood turn in between
        [
            ("啊啊啊", "nlu_fallback", "action_fallback"),
            ("你好", "greet", "utter_greet"),
            ("哦哦", "nlu_fallback"),
        ],
    ],
)
async def test_the_first_misunderstanding_asks_to_rephrase(database: None, turns: List) -> None:
    events, dispatcher = await run(ActionFallback(), _fallback_tracker(turns))
    assert events == [SlotSet("stall", {"turn": len(turns), "count": 1})]
    assert sent(dispatcher) == [{"response": "utter_default"}]
    assert handoffs_of("conv-1") == []


async def test_the_second_misunderstanding_in_a_row_hands_over(database: None) -> None:
    turns = [
        ("你好", "greet", "utter_greet"),
        ("啊啊啊", "nlu_fallback", "action_fallback"),
        ("哦哦", "nlu_fallback"),
    ]
    events, dispatcher = await run(ActionFallback(), _fallback_tracker(turns))
    assert events == HANDED_OVER
    assert sent(dispatcher) == [{"response": "utter_handoff_queued_first"}]
    [handoff] = handoffs_of("conv-1")
    assert (handoff["reason"], handoff["status"]) == ("fallback", "waiting")


@pytest.fixture
def off_duty(service_config: Path) -> None:
    """Agents on duty for one hour starting two hours from now: now is outside duty hours."""
    hour = datetime.now(local_zone()).hour
    config = yaml.safe_load(service_config.read_text(encoding="utf-8"))
    config["handoff"]["duty_hours"] = {
        "start": f"{(hour + 2) % 24:02d}:00",
        "end": f"{(hour + 3) % 24:02d}:00",
    }
    service_config.write_text(yaml.safe_dump(config), encoding="utf-8")
    reset_settings()  # configuration is read once per process
    assert not intake.within_duty_hours()


async def test_outside_duty_hours_a_call_back_ticket_is_filed_instead(
    database: None, off_duty: None
) -> None:
    turns = [("啊啊啊", "nlu_fallback", "action_fallback"), ("哦哦", "nlu_fallback")]
    events, dispatcher = await run(ActionFallback(), _fallback_tracker(turns))

    [ticket] = tickets_of("conv-1")
    assert (ticket["category"], ticket["details"]) == (
        "callback",
        {"phone": PHONE, "description": "客户在非值班时间请求人工服务（连续未理解），请回电。"},
    )
    assert sent(dispatcher) == [
        {"response": "utter_handoff_callback", "ticket_no": ticket["ticket_no"]}
    ]
    assert events == HANDED_OVER[:-1]  # not paused: nobody is there to answer
    [handoff] = handoffs_of("conv-1")
    assert (handoff["reason"], handoff["status"], handoff["ticket_no"]) == (
        "callback",
        "closed",
        ticket["ticket_no"],
    )


# --------------------------------------------------------------------------- queries


@pytest.mark.parametrize("intent", ["ask_payment_methods", "ask_tariff"])
async def test_faq_answers_come_from_the_catalog(intent: str) -> None:
    tracker = make_tracker([ActionExecuted("action_listen"), user("怎么交电费", intent)])
    events, dispatcher = await run(ActionAnswerFaq(), tracker)
    assert events == []
    assert sent(dispatcher) == [{"text": CATALOG.faq[intent]}]


async def test_faq_without_an_answer_falls_back() -> None:
    tracker = make_tracker([ActionExecuted("action_listen"), user("讲个笑话", "out_of_scope")])
    _, dispatcher = await run(ActionAnswerFaq(), tracker)
    assert sent(dispatcher) == [{"response": "utter_default"}]


TRANSFER_MATERIALS = (
    "1. 新户主有效身份证明\n2. 新的房屋产权证明（不动产权证）\n3. 结清电费的证明或最近一期电费单"
)
NEW_CONNECTION_MATERIALS = (
    "1. 用电人有效身份证明（身份证等）\n2. 房屋产权证明或购房合同、租赁合同\n"
    "3. 非居民另需营业执照及用电设备清单"
)


@pytest.mark.parametrize(
    "business, active_loop, message",
    [
        (
            "transfer",
            None,
            {
                "response": "utter_materials",
                "service_name": "过户/更名",
                "materials": TRANSFER_MATERIALS,
            },
        ),
        (
            None,
            "new_connection_form",
            {
                "response": "utter_materials",
                "service_name": "新装用电",
                "materials": NEW_CONNECTION_MATERIALS,
            },
        ),
        (
            "transfer",
            "new_connection_form",
            {
                "response": "utter_materials",
                "service_name": "过户/更名",
                "materials": TRANSFER_MATERIALS,
            },
        ),
        ("fault_repair", None, {"response": "utter_materials_none", "service_name": "故障报修"}),
    ],
)
async def test_materials_for_the_business_named_or_the_current_form(
    business: Optional[str], active_loop: Optional[str], message: Dict[str, str]
) -> None:
    entities = [entity("business", business)] if business else []
    events = [
        ActionExecuted("action_listen"),
        user("办这个要带什么材料", "ask_materials", entities),
    ]
    if active_loop:
        events = [ActiveLoop(active_loop), *events]
    tracker = make_tracker(events, {"business": business}, active_loop=active_loop)
    result, dispatcher = await run(ActionAnswerMaterials(), tracker)
    assert result == [SlotSet("business", None)]
    assert sent(dispatcher) == [message]


async def test_materials_without_a_business_asks_which_one() -> None:
    tracker = make_tracker([ActionExecuted("action_listen"), user("要带什么材料", "ask_materials")])
    events, dispatcher = await run(ActionAnswerMaterials(), tracker)
    assert events == []
    codes = [
        "new_connection",
        "capacity_change",
        "transfer",
        "account_closure",
        "meter_relocation",
        "tariff_change",
        "ev_charger",
        "solar_pv",
        "meter_dispute",
    ]
    assert sent(dispatcher) == [
        {
            "response": "utter_ask_business",
            "buttons": [
                {
                    "title": CATALOG.services[code].name,
                    "payload": f'/ask_materials{{"business": "{code}"}}',
                }
                for code in codes
            ],
        }
    ]


def _query_tracker(slots: Mapping[str, Any], text: str, intent: str) -> Tracker:
    events = [
        ActionExecuted("action_listen"),
        user(text, intent),
        ActiveLoop(None),
        SlotSet("requested_slot", None),
    ]
    return make_tracker(events, slots)


def _latest_bill(account_no: str) -> BillRecord:
    with session_scope() as session:
        records = session.query(BillRecord).filter_by(account_no=account_no).all()
        session.expunge_all()
    return max(records, key=lambda r: r.month)


def _rendered(message: Mapping[str, Any]) -> Dict[str, str]:
    """Fill-ins as the response template shows them (str.format)."""
    return {k: str(v) for k, v in message.items()}


async def test_the_latest_bill_of_an_account(demo_data: None) -> None:
    record = _latest_bill("0301234567890")  # one unpaid month in the demo data
    tracker = _query_tracker(
        {"account_no": "0301234567890", "phone_last4": "6781"}, "查电费", "query_bill"
    )
    events, dispatcher = await run(ActionAnswerBill(), tracker)

    today = datetime.now(local_zone()).date()
    previous_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    amount = f"{record.amount_fen / 100:.2f}"
    assert record.month == previous_month
    assert [_rendered(m) for m in sent(dispatcher)] == [
        {
            "response": "utter_bill",
            "account_no": "0301234567890",
            "month": previous_month,
            "usage_kwh": str(record.usage_kwh),
            "amount_yuan": amount,
            "due_date": record.due_date.isoformat(),
            "arrears_yuan": amount,
        }
    ]
    assert events == [SlotSet("month", None), SlotSet("phone_last4", None)]


@pytest.mark.parametrize("last4", ["1234", "5678x", ""])
async def test_a_bill_is_told_only_to_who_knows_the_phone_on_file(
    demo_data: None, last4: str
) -> None:
    tracker = _query_tracker(
        {"account_no": "0301234567890", "phone_last4": last4}, "查电费", "query_bill"
    )
    events, dispatcher = await run(ActionAnswerBill(), tracker)
    assert sent(dispatcher) == [{"response": "utter_bill_verify_failed"}]
    assert events == [SlotSet("month", None), SlotSet("phone_last4", None)]
    assert "157" not in json.dumps(dispatcher.messages, ensure_ascii=False)


async def test_wrong_last_four_digits_three_times_lock_the_look_ups(demo_data: None) -> None:
    tracker = _query_tracker(
        {"account_no": "0301234567890", "phone_last4": "0000"}, "查电费", "query_bill"
    )
    said = [sent((await run(ActionAnswerBill(), tracker))[1])[0]["response"] for _ in range(4)]
    assert said == [
        "utter_bill_verify_failed",
        "utter_bill_verify_failed",
        "utter_verification_locked",
        "utter_verification_locked",
    ]
    right = _query_tracker(
        {"account_no": "0301234567890", "phone_last4": "6781"}, "查电费", "query_bill"
    )
    assert sent((await run(ActionAnswerBill(), right))[1]) == [
        {"response": "utter_verification_locked"}
    ]


async def test_the_bill_message_can_be_sent_as_json(demo_data: None) -> None:
    tracker = _query_tracker(
        {"account_no": "0301234567", "phone_last4": "5678"}, "查电费", "query_bill"
    )
    _, dispatcher = await run(ActionAnswerBill(), tracker)
    json.dumps(dispatcher.messages)


async def test_the_bill_of_a_given_month(demo_data: None) -> None:
    today = datetime.now(local_zone()).date()
    month = (today.replace(day=1) - timedelta(days=70)).strftime("%Y-%m")
    tracker = _query_tracker(
        {"account_no": "0301234567", "month": month, "phone_last4": "5678"}, "查电费", "query_bill"
    )
    events, dispatcher = await run(ActionAnswerBill(), tracker)
    [message] = sent(dispatcher)
    assert (message["response"], message["month"], message["arrears_yuan"]) == (
        "utter_bill",
        month,
        "0.00",
    )
    assert events == [SlotSet("month", None), SlotSet("phone_last4", None)]


async def test_no_bill_found(demo_data: None) -> None:
    tracker = _query_tracker(
        {"account_no": "0301234567", "month": "2001-01", "phone_last4": "5678"},
        "查电费",
        "query_bill",
    )
    events, dispatcher = await run(ActionAnswerBill(), tracker)
    assert sent(dispatcher) == [
        {"response": "utter_bill_not_found", "account_no": "0301234567", "month": "2001-01"}
    ]
    assert events == [
        SlotSet("month", None),
        SlotSet("phone_last4", None),
        SlotSet("account_no", None),
    ]


async def test_an_unknown_account_cannot_be_verified(demo_data: None) -> None:
    tracker = _query_tracker(
        {"account_no": "9999888877", "phone_last4": "5678"}, "查电费", "query_bill"
    )
    events, dispatcher = await run(ActionAnswerBill(), tracker)
    assert sent(dispatcher) == [{"response": "utter_bill_no_phone", "account_no": "9999888877"}]
    assert SlotSet("account_no", None) in events  # the customer can send the right number


async def test_the_billing_system_being_down_is_said_plainly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Down:
        def latest_bill(self, account_no: str, month: Optional[str] = None) -> None:
            raise BillingUnavailable("timed out")

        def contact_matches(self, account_no: str, phone_last4: str) -> None:
            raise BillingUnavailable("timed out")

    monkeypatch.setattr(queries, "billing_service_from_settings", Down)
    tracker = _query_tracker(
        {"account_no": "0301234567", "phone_last4": "5678"}, "查电费", "query_bill"
    )
    events, dispatcher = await run(ActionAnswerBill(), tracker)
    assert sent(dispatcher) == [{"response": "utter_bill_unavailable"}]
    assert events == [SlotSet("month", None), SlotSet("phone_last4", None)]


def _day_text(day: Any, clock: time) -> str:
    return f"{day.month}月{day.day}日（周{'一二三四五六日'[day.weekday()]}） {clock:%H:%M}"


async def test_planned_outage_found_for_an_area(demo_data: None) -> None:
    tracker = _query_tracker({"area": "潮南区峡山"}, "潮南区峡山最近有没有计划停电", "query_outage")
    events, dispatcher = await run(ActionAnswerOutage(), tracker)

    tomorrow = datetime.now(local_zone()).date() + timedelta(days=1)
    line = (
        f"· 潮南区峡山街道东山路、西山路：{_day_text(tomorrow, time(8))} 至 "
        f"{_day_text(tomorrow, time(17))}，10kV线路检修"
    )
    assert sent(dispatcher) == [
        {"response": "utter_outage_found", "area": "潮南区峡山", "outages": line}
    ]
    assert events == [SlotSet("area", None)]


async def test_an_ongoing_outage_says_it_is_under_way(demo_data: None) -> None:
    tracker = _query_tracker({"area": "金平区金砂路"}, "金砂路停电了吗", "query_outage")
    _, dispatcher = await run(ActionAnswerOutage(), tracker)
    [message] = sent(dispatcher)
    assert message["response"] == "utter_outage_found"
    assert message["outages"].startswith("· 金平区金砂街道金砂路、东厦路：")
    assert message["outages"].endswith("，电缆故障抢修（正在停电，预计上述时间恢复供电）")


async def test_no_outage_for_an_area(demo_data: None) -> None:
    tracker = _query_tracker({"area": "南澳县云澳镇"}, "云澳镇有停电吗", "query_outage")
    events, dispatcher = await run(ActionAnswerOutage(), tracker)
    assert sent(dispatcher) == [{"response": "utter_outage_none", "area": "南澳县云澳镇"}]
    assert events == [SlotSet("area", None)]


def _status_message(ticket: Mapping[str, Any], service_name: str) -> Dict[str, str]:
    return {
        "response": "utter_ticket_status",
        "ticket_no": ticket["ticket_no"],
        "service_name": service_name,
        "status": "已受理，待派单",
        "department": ticket["department"],
        "due_text": f"，承诺{due_text(ticket)}前完成" if ticket["due_at"] else "",
        "updated_at": intake.format_local_time(intake.parse_iso(ticket["updated_at"])),
    }


async def test_ticket_status_by_number(database: None) -> None:
    filed = intake.file_request(
        "fault_repair", {"address": ADDRESS, "phone": PHONE, "description": "停电"}, "c1", "rest"
    )
    [ticket] = tickets_of("c1")
    own = _query_tracker(
        {"ticket_lookup": filed.ticket_no}, f"查工单{filed.ticket_no.lower()}", "query_ticket"
    )
    own = make_tracker(own.events, own.slots, sender_id="c1")  # the conversation that filed it
    events, dispatcher = await run(ActionAnswerTicket(), own)
    assert sent(dispatcher) == [_status_message(ticket, "故障报修")]
    assert events == [SlotSet("ticket_lookup", None), SlotSet("phone_last4", None)]


@pytest.mark.parametrize("last4, shown", [("5678", True), ("1111", False), (None, False)])
async def test_another_conversations_ticket_needs_the_last_four_digits(
    database: None, last4: Optional[str], shown: bool
) -> None:
    filed = intake.file_request(
        "fault_repair", {"address": ADDRESS, "phone": PHONE, "description": "停电"}, "c1", "rest"
    )
    [ticket] = tickets_of("c1")
    tracker = _query_tracker(
        {"ticket_lookup": filed.ticket_no, "phone_last4": last4}, "查工单", "query_ticket"
    )
    _, dispatcher = await run(ActionAnswerTicket(), tracker)  # asked from conversation conv-1
    expected = (
        [_status_message(ticket, "故障报修")]
        if shown
        else [{"response": "utter_ticket_verify_failed", "lookup": filed.ticket_no}]
    )
    assert sent(dispatcher) == expected


async def test_a_violation_report_is_never_shown(database: None) -> None:
    filed = intake.file_request(
        "violation_report",
        {"address": ADDRESS, "phone": PHONE, "description": "偷电"},
        "c1",
        "rest",
    )
    for sender in ("c1", "conv-1"):
        tracker = _query_tracker(
            {"ticket_lookup": filed.ticket_no, "phone_last4": "5678"}, "查", "query_ticket"
        )
        tracker = make_tracker(tracker.events, tracker.slots, sender_id=sender)
        _, dispatcher = await run(ActionAnswerTicket(), tracker)
        assert sent(dispatcher) == [
            {"response": "utter_ticket_violation_hidden", "lookup": filed.ticket_no}
        ]


async def test_ticket_status_by_phone_lists_that_phones_tickets_newest_first(
    database: None,
) -> None:
    intake.file_request(
        "fault_repair", {"address": ADDRESS, "phone": PHONE, "description": "停电"}, "c1", "rest"
    )
    intake.file_request("praise", {"phone": PHONE, "description": "师傅很负责"}, "c2", "rest")
    intake.file_request(
        "complaint", {"phone": "13900001111", "description": "乱收费"}, "c3", "rest"
    )
    [fault], [praise] = tickets_of("c1"), tickets_of("c2")
    tracker = _query_tracker({"ticket_lookup": PHONE}, "我的工单到哪了", "query_ticket")
    in_c1 = make_tracker(tracker.events, tracker.slots, sender_id="c1")
    events, dispatcher = await run(ActionAnswerTicket(), in_c1)
    assert sent(dispatcher) == [_status_message(fault, "故障报修")]  # only this conversation's
    assert events == [SlotSet("ticket_lookup", None), SlotSet("phone_last4", None)]
    _, dispatcher = await run(ActionAnswerTicket(), tracker)  # anyone else: nothing listed
    assert sent(dispatcher) == [{"response": "utter_ticket_other_conversations", "lookup": PHONE}]
    assert praise  # filed, but in c2


async def test_ticket_not_found(database: None) -> None:
    lookup = "GD20991231000001"
    tracker = _query_tracker({"ticket_lookup": lookup}, lookup, "query_ticket")
    events, dispatcher = await run(ActionAnswerTicket(), tracker)
    assert sent(dispatcher) == [{"response": "utter_ticket_not_found", "lookup": lookup}]
    assert events == [SlotSet("ticket_lookup", None), SlotSet("phone_last4", None)]


async def test_details_that_name_a_business_start_its_form(database: None) -> None:
    text = "我家停电了，潮南区峡山街道东山路12号"
    business = {
        "entity": "business",
        "value": "fault_repair",
        "start": 3,
        "end": 5,
        "extractor": "RegexEntityExtractor",
    }
    tracker = make_tracker([ActionExecuted("action_listen"), user(text, "inform", [business])])
    events, dispatcher = await run(ActionFallback(), tracker)
    assert events == [SlotSet("description", text), FollowupAction("fault_repair_form")]
    assert sent(dispatcher) == []


async def test_details_naming_an_emergency_do_not_skip_the_safety_advice(database: None) -> None:
    business = {
        "entity": "business",
        "value": "emergency",
        "start": 0,
        "end": 2,
        "extractor": "RegexEntityExtractor",
    }
    tracker = make_tracker(
        [ActionExecuted("action_listen"), user("触电 龙湖区", "inform", [business])]
    )
    events, dispatcher = await run(ActionFallback(), tracker)
    assert events == []
    assert sent(dispatcher) == [{"response": "utter_inform_no_context"}]


# --------------------------------------------------------------------------- joint questions


async def test_a_joint_question_is_asked_while_both_details_are_missing(database: None) -> None:
    joint = next(j for j in CATALOG.ask_together if j.fields == ("customer_name", "phone"))
    ask = form_validators.ActionAskCustomerName()
    tracker = make_tracker([], {"requested_slot": "customer_name"}, active_loop="ev_charger_form")
    events, dispatcher = await run(ask, tracker)
    assert sent(dispatcher) == [{"text": joint.ask}]
    assert SlotSet("asked_together", "phone") in events
    # the phone known already: the name alone
    known = make_tracker(
        [], {"requested_slot": "customer_name", "phone": PHONE}, active_loop="ev_charger_form"
    )
    events, dispatcher = await run(ask, known)
    assert sent(dispatcher) == [{"response": "utter_ask_customer_name"}]
    assert SlotSet("asked_together", None) in events


async def test_both_halves_of_a_joint_answer_are_taken(database: None) -> None:
    text = "陈伟明，13812345678"
    tracker = form_turn(
        "ev_charger_form",
        "customer_name",
        text,
        {"customer_name": text, "phone": PHONE},
        entities=[entity("phone", PHONE, text)],
        known={"asked_together": "phone"},
    )
    events, messages = await validate("ev_charger_form", tracker)
    assert SlotSet("customer_name", "陈伟明") in events
    assert SlotSet("phone", PHONE) in events
    assert messages == []


async def test_a_digression_during_a_joint_question_is_left_to_the_rules(database: None) -> None:
    """「转人工」 fills nothing: the validator must not answer with events (Rasa would then
    keep the form running instead of letting the hand-over rule in)."""
    tracker = form_turn(
        "new_connection_form",
        "customer_name",
        "转人工，转人工",
        {},
        intent="request_human",
        known={"asked_together": "phone"},
    )
    events, messages = await validate("new_connection_form", tracker)
    # rasa-sdk always adds the requested slot; Rasa ignores that one when deciding
    assert [e for e in events if e["name"] != "requested_slot"] == [] and messages == []


# --------------------------------------------------------------------------- the request again


def _said_again_tracker(form: str, requested: str, stalled_before: bool) -> Tracker:
    events: List[Dict[str, Any]] = [
        ActionExecuted("action_listen"),
        user("我要报修", "report_fault"),
    ]
    stall = None
    if stalled_before:  # turn 2 was the request again already
        events += [user("快点派人来啊", "report_fault"), ActionExecuted("action_continue_request")]
        stall = {"turn": 2, "count": 1}
    events.append(user("快点派人来啊", "report_fault"))
    return make_tracker(events, {"requested_slot": requested, "stall": stall}, active_loop=form)


async def test_the_request_said_again_carries_on_once_then_hands_over(database: None) -> None:
    from actions.requests import ActionContinueRequest

    events, dispatcher = await run(
        ActionContinueRequest(), _said_again_tracker("fault_repair_form", "phone", False)
    )
    assert sent(dispatcher) == [{"response": "utter_continue_request"}]
    assert events == [SlotSet("stall", {"turn": 2, "count": 1})]
    events, dispatcher = await run(
        ActionContinueRequest(), _said_again_tracker("fault_repair_form", "phone", True)
    )
    assert ConversationPaused() in events
    [handoff] = handoffs_of("conv-1")
    assert handoff["reason"] == "fallback"


async def test_an_emergency_said_again_skips_the_detail_it_asked(database: None) -> None:
    from actions.requests import ActionContinueRequest

    events, dispatcher = await run(
        ActionContinueRequest(), _said_again_tracker("emergency_form", "phone", False)
    )
    assert SlotSet("phone", intake.NOT_PROVIDED) in events
    assert SlotSet("declined", ["phone"]) in events
    skipped = CATALOG.dialogue_messages["emergency_detail_skipped"].format(label="联系电话")
    assert sent(dispatcher) == [{"text": skipped}]


async def test_a_button_of_an_earlier_question_is_no_failed_answer() -> None:
    """「确认提交」 (/affirm) pressed again while the form asks for the phone: the form says
    what comes first and asks again, and counts no failure (two would hand over)."""
    tracker = form_turn("complaint_form", "phone", "/affirm", {"phone": "/affirm"})
    events, messages = await validate("complaint_form", tracker)
    assert events == [SlotSet("phone", None)]
    assert messages == [{"text": "那个按钮是上一步的，我们先把联系电话填好。"}]
