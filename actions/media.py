"""Photos and locations in the conversation (bot/core/media, bot/core/location).

The channels store a photo before the dialogue sees it and send `/send_photo` with the
attachment's id in the message metadata; a location arrives as `/share_location` with
`{"lat", "lon", "label"}`. Where it goes depends on the conversation:

* **No request being collected** (rules `action_receive_photo` / `action_receive_location`):
  a photo goes on the conversation's newest open ticket (「补充照片」), or is held for the
  ticket the customer is about to report; a location goes on that ticket, or waits to be
  offered as the address of the next request.
* **Inside a form** the form's validator calls `form_media_turn`: a photo is held for the
  ticket being collected (an emergency, filed at once, gets it directly) and is the
  description when that is what was asked (「照片已收到」); a location is offered as the
  address (「是这个位置吗：潮南区峡山街道？」, asked by `location_question`), or goes on the
  ticket when the address is known already.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.threads import BlockingAction
from bot.core import intake
from bot.core.catalog import Service, load_catalog
from bot.core.location import InvalidLocation, Place, locate, location_refusal
from bot.core.media.service import Placement, place_photo
from bot.core.settings import get_settings

logger = logging.getLogger(__name__)

PHOTO_INTENT = "send_photo"
LOCATION_INTENT = "share_location"
SHARED_LOCATION_SLOT = "shared_location"  # offered as the address, not confirmed yet
TICKET_LOCATION_SLOT = "ticket_location"  # goes on the ticket being collected
PHOTOS_SLOT = "photos_received"  # photos held for the request being collected
MEDIA_SLOTS = (SHARED_LOCATION_SLOT, TICKET_LOCATION_SLOT, PHOTOS_SLOT)


def _metadata(tracker: Tracker) -> Dict[str, Any]:
    metadata = (tracker.latest_message or {}).get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _say(dispatcher: CollectingDispatcher, key: str, **values: Any) -> None:
    dispatcher.utter_message(text=load_catalog().dialogue_messages[key].format(**values))


def shared_place(dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[Place]:
    """The location of the latest message as a checked place; None when it is not one, and
    the customer is told why."""
    location = _metadata(tracker).get("location")
    try:
        if not isinstance(location, dict):
            raise InvalidLocation("invalid")
        return locate(location.get("lat"), location.get("lon"), location.get("label"))
    except InvalidLocation as refused:
        dispatcher.utter_message(text=location_refusal(refused.reason))
        return None


def _tell_placement(dispatcher: CollectingDispatcher, placed: Placement, in_form: bool) -> None:
    if placed.outcome == "attached":
        _say(dispatcher, "photo_added", ticket_no=placed.ticket_no)
    elif placed.outcome == "held":
        _say(dispatcher, "photo_held_in_form" if in_form else "photo_held")
    elif placed.outcome == "limit":
        _say(dispatcher, "photo_limit", max=get_settings().service.media.max_per_ticket)
    else:
        _say(dispatcher, "photo_missing")


def form_media_turn(
    service: Optional[Service],
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    requested: Optional[str],
    filed_ticket: Optional[str],
) -> List[EventType]:
    """A photo or a location inside a form: the slot events (never empty, so the form goes on
    and asks its question again) and what to say."""
    intent = (tracker.latest_message or {}).get("intent", {}).get("name")
    if intent == PHOTO_INTENT:
        return _photo_in_form(service, dispatcher, tracker, requested, filed_ticket)
    return _location_in_form(service, dispatcher, tracker, requested, filed_ticket)


def _photo_in_form(
    service: Optional[Service],
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    requested: Optional[str],
    filed_ticket: Optional[str],
) -> List[EventType]:
    to_ticket = service is None or bool(filed_ticket)  # a query, or an emergency already filed
    placed = place_photo(_metadata(tracker).get("attachment_id"), tracker.sender_id, to_ticket)
    kept = placed.outcome in ("attached", "held")
    count = int(tracker.get_slot(PHOTOS_SLOT) or 0) + (1 if kept else 0)
    events: List[EventType] = [SlotSet(PHOTOS_SLOT, count)]
    if kept and service is not None and requested == "description":
        _say(dispatcher, "photo_taken_as_description")
        description = load_catalog().dialogue_messages["photo_as_description"]
        return [*events, SlotSet("description", description)]
    _tell_placement(dispatcher, placed, in_form=service is not None)
    return events


def _location_in_form(
    service: Optional[Service],
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    requested: Optional[str],
    filed_ticket: Optional[str],
) -> List[EventType]:
    place = shared_place(dispatcher, tracker)
    if place is None:
        return [SlotSet(SHARED_LOCATION_SLOT, None)]
    asks_address = service is not None and "address" in (*service.all_fields, *service.optional)
    if asks_address and (requested == "address" or not tracker.get_slot("address")):
        if requested != "address":
            _say(dispatcher, "location_later")
        return [SlotSet(SHARED_LOCATION_SLOT, place.as_slot())]  # the address question confirms it
    if filed_ticket:
        intake.add_location(tracker.sender_id, place)
    _say(dispatcher, "location_noted", place=place.text)
    return [SlotSet(TICKET_LOCATION_SLOT, place.as_slot()), SlotSet(SHARED_LOCATION_SLOT, None)]


def location_question(dispatcher: CollectingDispatcher, place: Place) -> None:
    """「是这个位置吗：…？」 with a yes and a no button (payloads need no NLU)."""
    messages = load_catalog().dialogue_messages
    dispatcher.utter_message(
        text=messages["location_confirm"].format(place=place.text),
        buttons=[
            {"title": messages["location_yes_button"], "payload": "/affirm"},
            {"title": messages["location_no_button"], "payload": "/deny"},
        ],
    )


class ActionReceivePhoto(BlockingAction):
    """A photo with no request being collected: on the newest open ticket, or held."""

    def name(self) -> Text:
        return "action_receive_photo"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        attachment_id = _metadata(tracker).get("attachment_id")
        placed = place_photo(attachment_id, tracker.sender_id, to_open_ticket=True)
        _tell_placement(dispatcher, placed, in_form=False)
        if placed.outcome != "held":
            return []
        return [SlotSet(PHOTOS_SLOT, int(tracker.get_slot(PHOTOS_SLOT) or 0) + 1)]


class ActionReceiveLocation(BlockingAction):
    """A location with no request being collected: on the newest open ticket, or kept to be
    offered as the address of the next request."""

    def name(self) -> Text:
        return "action_receive_location"

    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        place = shared_place(dispatcher, tracker)
        if place is None:
            return []
        ticket_no = intake.add_location(tracker.sender_id, place)
        if ticket_no:
            _say(dispatcher, "location_added", ticket_no=ticket_no, place=place.text)
            return []
        _say(dispatcher, "location_held", place=place.text)
        return [SlotSet(SHARED_LOCATION_SLOT, place.as_slot())]
