"""Photos and locations in the dialogue (actions/media.py and the forms' validator): where a
photo goes, when a location becomes the address, and what the customer is told."""

from __future__ import annotations

import io
from typing import Any, Dict, Iterator, List, Optional

import pytest
from PIL import Image
from rasa_sdk.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered

from actions.form_validators import ActionAskAddress
from actions.media import ActionReceiveLocation, ActionReceivePhoto
from actions.requests import ActionSubmitRequest
from bot.core import intake
from bot.core.catalog import load_catalog
from bot.core.db import dispose_engines, session_scope, upgrade_database
from bot.core.media import service as media
from bot.core.media.models import Attachment
from bot.core.media.storage import media_store
from bot.core.tickets.models import Ticket
from tests.unit.test_actions import PHONE, form_turn, make_tracker, run, sent, validate

pytestmark = pytest.mark.asyncio

MESSAGES = load_catalog().dialogue_messages
SYSTEM = load_catalog().system_messages
XIASHAN = {"lat": 23.2531, "lon": 116.4992}  # 潮南区峡山街道


@pytest.fixture
def photos(isolated_environment: None) -> Iterator[None]:
    """The per-test SQLite database of conftest.py, migrated and empty; photos go to this
    test's var/media."""
    upgrade_database()
    yield
    dispose_engines()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def received(conversation_id: str = "conv-1") -> int:
    return media.receive_photo(conversation_id, "rest", jpeg())


def with_metadata(tracker: Any, metadata: Dict[str, Any]) -> Any:
    tracker.latest_message = {**tracker.latest_message, "metadata": metadata}
    return tracker


def channel_turn(
    intent: str,
    metadata: Dict[str, Any],
    form: Optional[str],
    requested: Optional[str],
    known: Dict[str, Any],
) -> Any:
    """The tracker of a `/<intent>` turn a channel sent with `metadata`, in `form` (asking
    `requested`) or outside any form."""
    text = f"/{intent}"
    if form is None:
        parse_data = {"text": text, "intent": {"name": intent}, "entities": []}
        events = [ActionExecuted("action_listen"), UserUttered(text, parse_data=parse_data)]
        tracker = make_tracker(events, dict(known))
    else:
        tracker = form_turn(form, str(requested), text, {}, intent=intent, known=known)
    return with_metadata(tracker, metadata)


def photo_turn(
    form: Optional[str], requested: Optional[str], attachment_id: Any, **known: Any
) -> Any:
    return channel_turn("send_photo", {"attachment_id": attachment_id}, form, requested, known)


def location_turn(
    form: Optional[str], requested: Optional[str], location: Dict[str, Any], **known: Any
) -> Any:
    return channel_turn("share_location", {"location": location}, form, requested, known)


def file_ticket(conversation_id: str = "conv-1") -> str:
    filed = intake.file_request(
        "fault_repair",
        {"address": "潮南区峡山街道东山路12号", "phone": PHONE, "description": "家里没电"},
        conversation_id,
        "rest",
    )
    return filed.ticket_no


def attachments() -> List[Attachment]:
    with session_scope() as session:
        rows = session.query(Attachment).order_by(Attachment.id).all()
        session.expunge_all()
        return rows


# ------------------------------------------------------------------ photos outside a form


async def test_a_photo_before_any_request_is_held_and_the_customer_asked_what_happened(
    photos: None,
) -> None:
    events, dispatcher = await run(ActionReceivePhoto(), photo_turn(None, None, received()))
    assert sent(dispatcher) == [{"text": MESSAGES["photo_held"]}]
    assert events == [SlotSet("photos_received", 1)]
    [row] = attachments()
    assert row.ticket_id is None


async def test_a_photo_after_filing_goes_on_the_newest_open_ticket(photos: None) -> None:
    ticket_no = file_ticket()
    events, dispatcher = await run(ActionReceivePhoto(), photo_turn(None, None, received()))
    assert sent(dispatcher) == [{"text": MESSAGES["photo_added"].format(ticket_no=ticket_no)}]
    assert events == []
    with session_scope() as session:
        ticket = session.query(Ticket).filter_by(ticket_no=ticket_no).one()
        assert [a.ticket_id for a in media.for_ticket(session, ticket.id)] == [ticket.id]


async def test_another_conversations_photo_is_never_taken(photos: None) -> None:
    someone_elses = received("conv-2")
    file_ticket("conv-1")
    _, dispatcher = await run(ActionReceivePhoto(), photo_turn(None, None, someone_elses))
    assert sent(dispatcher) == [{"text": MESSAGES["photo_missing"]}]
    [row] = attachments()
    assert row.ticket_id is None and row.conversation_id == "conv-2"


async def test_a_typed_send_photo_without_a_photo_asks_for_it_again(photos: None) -> None:
    _, dispatcher = await run(ActionReceivePhoto(), photo_turn(None, None, None))
    assert sent(dispatcher) == [{"text": MESSAGES["photo_missing"]}]


# ------------------------------------------------------------------ photos inside a form


async def test_a_photo_answers_the_description_question(photos: None) -> None:
    tracker = photo_turn(
        "fault_repair_form",
        "description",
        received(),
        address="潮南区峡山街道东山路12号",
        phone=PHONE,
    )
    events, messages = await validate("fault_repair_form", tracker)
    assert messages == [{"text": MESSAGES["photo_taken_as_description"]}]
    assert SlotSet("description", MESSAGES["photo_as_description"]) in events


async def test_a_photo_while_another_detail_is_asked_is_held_and_the_form_goes_on(
    photos: None,
) -> None:
    tracker = photo_turn(
        "fault_repair_form", "phone", received(), address="潮南区峡山街道东山路12号"
    )
    events, messages = await validate("fault_repair_form", tracker)
    assert messages == [{"text": MESSAGES["photo_held_in_form"]}]
    # a slot event, so Rasa's form does not reject the turn and asks its question again
    assert events == [SlotSet("photos_received", 1)]


async def test_a_photo_during_a_filed_emergency_goes_on_its_ticket(photos: None) -> None:
    filed = intake.file_request(
        "emergency", {"description": "电线断了冒火花"}, "conv-1", "rest", submission="s1"
    )
    tracker = photo_turn(
        "emergency_form", "address", received(), emergency_ticket_no=filed.ticket_no
    )
    _, messages = await validate("emergency_form", tracker)
    assert messages == [{"text": MESSAGES["photo_added"].format(ticket_no=filed.ticket_no)}]
    [row] = attachments()
    assert row.ticket_id is not None


async def test_the_tenth_photo_is_refused_and_not_kept(photos: None) -> None:
    for _ in range(9):
        await run(ActionReceivePhoto(), photo_turn(None, None, received()))
    _, dispatcher = await run(ActionReceivePhoto(), photo_turn(None, None, received()))
    assert sent(dispatcher) == [{"text": MESSAGES["photo_limit"].format(max=9)}]
    assert len(attachments()) == 9
    assert len(list((media_store().root).rglob("*.jpg"))) == 18  # type: ignore[attr-defined]


# ------------------------------------------------------------------ locations


async def test_a_location_before_any_request_is_kept_to_be_offered_as_the_address(
    photos: None,
) -> None:
    events, dispatcher = await run(ActionReceiveLocation(), location_turn(None, None, XIASHAN))
    assert sent(dispatcher) == [{"text": MESSAGES["location_held"].format(place="潮南区峡山街道")}]
    [event] = events
    assert event["name"] == "shared_location" and event["value"]["text"] == "潮南区峡山街道"


async def test_a_location_after_filing_goes_on_the_ticket(photos: None) -> None:
    ticket_no = file_ticket()
    events, dispatcher = await run(ActionReceiveLocation(), location_turn(None, None, XIASHAN))
    assert events == []
    assert sent(dispatcher) == [
        {"text": MESSAGES["location_added"].format(ticket_no=ticket_no, place="潮南区峡山街道")}
    ]
    with session_scope() as session:
        ticket = session.query(Ticket).filter_by(ticket_no=ticket_no).one()
        assert (ticket.latitude, ticket.longitude, ticket.location_text) == (
            23.2531,
            116.4992,
            "潮南区峡山街道",
        )


@pytest.mark.parametrize(
    "location, key",
    [
        ({"lat": 0, "lon": 0}, "location_invalid"),
        ({"lat": 91, "lon": 116.5}, "location_invalid"),
        ({"lat": "北纬", "lon": 116.5}, "location_invalid"),
        ({"lat": 39.9, "lon": 116.4}, "location_outside"),
    ],
)
async def test_a_location_we_cannot_use_is_explained(
    photos: None, location: Dict[str, Any], key: str
) -> None:
    events, dispatcher = await run(ActionReceiveLocation(), location_turn(None, None, location))
    assert events == []
    assert sent(dispatcher) == [{"text": SYSTEM[key]}]


async def test_in_a_form_the_location_is_offered_as_the_address_and_confirmed(
    photos: None,
) -> None:
    events, messages = await validate(
        "fault_repair_form", location_turn("fault_repair_form", "address", XIASHAN)
    )
    assert messages == []  # the address question that follows asks to confirm it
    [offer] = events
    assert offer["name"] == "shared_location"

    ask = make_tracker([], {"shared_location": offer["value"]}, active_loop="fault_repair_form")
    _, dispatcher = await run(ActionAskAddress(), ask)
    [question] = sent(dispatcher)
    assert question["text"] == MESSAGES["location_confirm"].format(place="潮南区峡山街道")
    assert [b["payload"] for b in question["buttons"]] == ["/affirm", "/deny"]

    yes = form_turn(
        "fault_repair_form",
        "address",
        "/affirm",
        {"address": "/affirm"},
        intent="affirm",
        known={"shared_location": offer["value"]},
    )
    events, messages = await validate("fault_repair_form", yes)
    values = {e["name"]: e["value"] for e in events}
    assert values["shared_location"] is None
    assert values["ticket_location"]["lat"] == 23.2531
    # a town is not where the crew goes: the rest of the address is asked next
    assert values["address_partial"] == "潮南区峡山街道"


async def test_a_wechat_label_that_is_a_full_address_fills_the_address(photos: None) -> None:
    labelled = {**XIASHAN, "label": "潮南区峡山街道东山路12号"}
    events, _ = await validate(
        "fault_repair_form", location_turn("fault_repair_form", "address", labelled)
    )
    yes = form_turn(
        "fault_repair_form",
        "address",
        "/affirm",
        {"address": "/affirm"},
        intent="affirm",
        known={"shared_location": events[0]["value"]},
    )
    events, _ = await validate("fault_repair_form", yes)
    assert SlotSet("address", "潮南区峡山街道东山路12号") in events


async def test_no_to_the_offered_location_asks_the_address_in_words(photos: None) -> None:
    offered = {"lat": 23.2531, "lon": 116.4992, "text": "潮南区峡山街道", "district": "潮南区"}
    no = form_turn(
        "fault_repair_form",
        "address",
        "/deny",
        {"address": "/deny"},
        intent="deny",
        known={"shared_location": offered},
    )
    events, messages = await validate("fault_repair_form", no)
    assert messages == []
    assert SlotSet("shared_location", None) in events and SlotSet("address", None) in events


async def test_the_filed_ticket_carries_the_location_and_the_held_photos(photos: None) -> None:
    received()
    received()
    place = {"lat": 23.2531, "lon": 116.4992, "text": "潮南区峡山街道", "district": "潮南区"}
    slots = {
        "address": "潮南区峡山街道东山路12号",
        "phone": PHONE,
        "description": "家里没电",
        "confirm_submission": "yes",
        "ticket_location": place,
        "photos_received": 2,
    }
    events: List[Dict[str, Any]] = [
        ActionExecuted("action_listen"),
        UserUttered(
            "确认", parse_data={"text": "确认", "intent": {"name": "affirm"}, "entities": []}
        ),
        ActionExecuted("fault_repair_form"),
        ActiveLoop("fault_repair_form"),
        *[SlotSet(k, v) for k, v in slots.items()],
        ActiveLoop(None),
    ]
    tracker = make_tracker(events, slots)
    result, _ = await run(ActionSubmitRequest(), tracker)
    assert SlotSet("ticket_location", None) in result and SlotSet("photos_received", None) in result
    with session_scope() as session:
        ticket = session.query(Ticket).one()
        assert ticket.location_text == "潮南区峡山街道" and ticket.latitude == 23.2531
        assert len(media.for_ticket(session, ticket.id)) == 2


async def test_a_location_while_another_detail_is_asked_waits_for_the_address_question(
    photos: None,
) -> None:
    events, messages = await validate(
        "fault_repair_form", location_turn("fault_repair_form", "phone", XIASHAN)
    )
    assert messages == [{"text": MESSAGES["location_later"]}]
    [offer] = events
    assert offer["name"] == "shared_location" and offer["value"]["district"] == "潮南区"


async def test_a_location_once_the_address_is_known_goes_with_the_ticket(photos: None) -> None:
    tracker = location_turn(
        "fault_repair_form", "phone", XIASHAN, address="潮南区峡山街道东山路12号"
    )
    events, messages = await validate("fault_repair_form", tracker)
    assert messages == [{"text": MESSAGES["location_noted"].format(place="潮南区峡山街道")}]
    values = {e["name"]: e["value"] for e in events}
    assert (
        values["ticket_location"]["text"] == "潮南区峡山街道" and values["shared_location"] is None
    )
