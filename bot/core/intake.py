"""Intake services the Rasa actions call: file and update tickets, hand over, describe.

Each function opens its own database session, so an action is one short transaction.
Texts customers see come from the domain responses and the catalog; this module returns
values to fill them with.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from bot.core.catalog import Service, load_catalog
from bot.core.clock import local_zone, to_local, to_utc_naive, utc_now
from bot.core.db import session_scope
from bot.core.handoff.repository import HandoffRepository
from bot.core.location import Place
from bot.core.media.service import attach_held, newest_open_ticket
from bot.core.privacy import mask_personal_data
from bot.core.settings import get_settings
from bot.core.stores import shared_store
from bot.core.tickets.models import Ticket
from bot.core.tickets.repository import TicketRepository

logger = logging.getLogger(__name__)

CALLBACK_SERVICE = "callback"  # catalog category of call-back tickets (no intent of its own)
NOT_PROVIDED = "-"  # an optional detail the customer chose not to give
DECLINED_KEY = "declined"  # ticket detail: the details the customer declined to give (匿名)


@dataclass(frozen=True)
class FiledTicket:
    """What the customer is told after filing."""

    ticket_no: str
    service: Service
    due_at: Optional[dt.datetime]  # aware, local
    created: bool


def details_from_slots(
    service: Service, slots: Mapping[str, Any], declined: Sequence[str] = ()
) -> Dict[str, Any]:
    """The ticket details: the catalog's fields of `service` that have a value, and the
    details the customer declined to give (``declined``: ["phone"] for an anonymous report)."""
    fields = (*service.all_fields, *service.optional)
    details: Dict[str, Any] = {
        name: slots[name] for name in fields if slots.get(name) not in (None, "", NOT_PROVIDED)
    }
    refused = [name for name in declined if name in fields and name not in details]
    if refused:
        details[DECLINED_KEY] = refused
    return details


def summary(
    service: Service, slots: Mapping[str, Any], declined: Sequence[str] = (), photos: int = 0
) -> str:
    """One line per detail, with the catalog's labels, for the confirmation message (and the
    number of photos that go with the request)."""
    catalog = load_catalog()
    formats = catalog.formats
    lines = []
    for name in (*service.required_fields(slots), *service.optional):
        value = slots.get(name)
        if value in (None, "", NOT_PROVIDED):
            shown = formats["declined"] if name in declined else formats["not_provided"]
        elif name == "capacity_kw":
            shown = formats["capacity_kw"].format(value=value)
        else:
            shown = str(value)
        lines.append(f"· {catalog.fields[name].label}：{shown}")
    if photos:
        lines.append(catalog.dialogue_messages["summary_photos"].format(count=photos))
    return "\n".join(lines)


def format_local_time(value: Optional[dt.datetime]) -> str:
    """11月30日（周一）17:45 — how a due time reads to a customer (catalog `formats`)."""
    if value is None:
        return ""
    formats = load_catalog().formats
    local = to_local(value)
    today = dt.datetime.now(local_zone()).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return formats["today"].format(clock=clock)
    day = formats["date"].format(
        month=local.month, day=local.day, weekday=formats["weekdays"][local.weekday()]
    )
    return day if clock == "23:59" else f"{day} {clock}"


def parse_iso(value: Optional[str]) -> Optional[dt.datetime]:
    """An ISO 8601 time from the API dictionaries back into a datetime."""
    return dt.datetime.fromisoformat(value) if value else None


def due_response(service: Service, due_at: Optional[dt.datetime]) -> Tuple[str, str]:
    """(response name, due time text) for the ticket-created message."""
    if due_at is None:
        return "utter_ticket_created_no_due", ""
    if service.time_limit.get("kind") == "on_site_minutes_by_area":
        return "utter_ticket_created_on_site", format_local_time(due_at)
    return "utter_ticket_created_deadline", format_local_time(due_at)


def _set_location(ticket: Ticket, place: Optional[Place]) -> None:
    if place is not None:
        ticket.latitude, ticket.longitude, ticket.location_text = place.lat, place.lon, place.text


def file_request(
    service_code: str,
    details: Mapping[str, Any],
    conversation_id: str,
    channel: str,
    submission: Optional[str] = None,
    location: Optional[Place] = None,
) -> FiledTicket:
    """File a ticket: one per submission (a form run), or per conversation and details.

    A new ticket takes the photos held for the conversation and the location the customer
    shared, in the same transaction."""
    service = load_catalog().services[service_code]
    with session_scope() as session:
        ticket, created = TicketRepository(session).create(
            service_code, details, conversation_id, channel, submission=submission
        )
        if created:
            attach_held(session, conversation_id, ticket)
            _set_location(ticket, location)
        filed = FiledTicket(
            ticket_no=ticket.ticket_no,
            service=service,
            due_at=to_local(ticket.due_at) if ticket.due_at else None,
            created=created,
        )
    logger.info(
        "ticket %s %s for %s (%s)",
        filed.ticket_no,
        "filed" if created else "reused",
        conversation_id,
        service_code,
    )
    return filed


def update_request_details(
    ticket_no: str, details: Mapping[str, Any], location: Optional[Place] = None
) -> None:
    """Add details to a filed ticket (emergencies are filed before the details come), with the
    photos held for its conversation and a shared location."""
    with session_scope() as session:
        repository = TicketRepository(session)
        ticket = repository.get(ticket_no)
        merged = {**(ticket.details or {}), **details} if ticket else dict(details)
        repository.update(ticket_no, actor="bot", details=merged)
        if ticket is not None:
            attach_held(session, ticket.conversation_id, ticket)
            _set_location(ticket, location)


def add_location(conversation_id: str, place: Place) -> Optional[str]:
    """Put a shared location on the conversation's newest open ticket; its number, or None
    when the conversation has no open ticket."""
    with session_scope() as session:
        ticket = newest_open_ticket(session, conversation_id)
        if ticket is None:
            return None
        _set_location(ticket, place)
        return str(ticket.ticket_no)


def staff_text(key: str, reason: str = "", **values: Any) -> str:
    """A catalog `staff_messages` text; a hand-over reason reads as its label."""
    catalog = load_catalog()
    label = catalog.labels.get("handoff_reasons", {}).get(reason, reason)
    return catalog.staff_messages[key].format(reason=label, **values)


def same_request_ticket(
    conversation_id: str, service_code: str, details: Mapping[str, Any]
) -> Optional[str]:
    """The open ticket this conversation already filed with the same details, if any."""
    with session_scope() as session:
        ticket = TicketRepository(session).same_request(conversation_id, service_code, details)
        return ticket.ticket_no if ticket else None


# Tickets never shown in the conversation, whoever asks (a whistle-blower's report).
STAFF_ONLY_CATEGORIES = ("violation_report",)
VERIFICATION_FAILURES_PER_HOUR = 3


@dataclass(frozen=True)
class TicketAnswer:
    """What a customer may be told about a ticket look-up (spec §1 query_ticket, guarded).

    `outcome`: shown, not_found, verify (ask the phone's last four digits), verify_failed,
    locked (too many failed verifications), staff_only (a violation report), other (a phone
    look-up that matches nothing of this conversation)."""

    outcome: str
    tickets: List[Dict[str, Any]]


def _is_ticket_no(lookup: str) -> bool:
    return lookup.upper().startswith("GD")


def verification_locked(conversation_id: str, failed_now: bool = False) -> bool:
    """Too many wrong last-four digits from this conversation within an hour (a failure now
    is counted first): 10,000 guesses are not to be had one message at a time."""
    key, store = f"verify-fail:{conversation_id}", shared_store()
    count = int(store.get(key) or 0) + (1 if failed_now else 0)
    if failed_now:
        store.put(key, str(count), 3600)
    return count >= VERIFICATION_FAILURES_PER_HOUR


def lookup_ticket(
    conversation_id: str, lookup: str, phone_last4: Optional[str] = None
) -> TicketAnswer:
    """Tickets this conversation may see: its own; another one only with the ticket number and
    the last four digits of the phone it was filed with; a violation report never."""
    with session_scope() as session:
        repository = TicketRepository(session)
        if _is_ticket_no(lookup):
            ticket = repository.get(lookup.upper())
            if ticket is None:
                return TicketAnswer("not_found", [])
            if ticket.category in STAFF_ONLY_CATEGORIES:
                return TicketAnswer("staff_only", [])
            shown = [repository.to_dict(ticket, with_history=True)]
            if ticket.conversation_id == conversation_id:
                return TicketAnswer("shown", shown)
            if verification_locked(conversation_id):
                return TicketAnswer("locked", [])
            if phone_last4 is None:
                return TicketAnswer("verify", [])
            phone = str(ticket.contact_phone or "")
            if phone and secrets.compare_digest(phone[-4:], phone_last4):
                return TicketAnswer("shown", shown)
            locked = verification_locked(conversation_id, failed_now=True)
            return TicketAnswer("locked" if locked else "verify_failed", [])
        own = [
            t
            for t in repository.list(phone=lookup, conversation_id=conversation_id, limit=3)
            if t.category not in STAFF_ONLY_CATEGORIES
        ]
        if own:
            return TicketAnswer("shown", [repository.to_dict(t, with_history=True) for t in own])
        return TicketAnswer("other", [])


def _newest_ticket(conversation_id: str) -> Optional[Tuple[str, dt.datetime]]:
    """(ticket number, when it was filed, naive UTC) of a conversation's newest ticket."""
    with session_scope() as session:
        tickets = TicketRepository(session).list(conversation_id=conversation_id, limit=1)
        return (tickets[0].ticket_no, to_utc_naive(tickets[0].created_at)) if tickets else None


def latest_ticket_no(conversation_id: str) -> Optional[str]:
    """The newest ticket filed in a conversation."""
    newest = _newest_ticket(conversation_id)
    return newest[0] if newest else None


def just_filed_ticket_no(conversation_id: str, now: Optional[dt.datetime] = None) -> Optional[str]:
    """The conversation's newest ticket if it was filed within the last
    `dialogue.just_filed_minutes` (a 「确认提交」 sent again after its answer was lost)."""
    window = dt.timedelta(minutes=get_settings().service.dialogue.just_filed_minutes)
    newest = _newest_ticket(conversation_id)
    if newest is None:
        return None
    ticket_no, filed_at = newest
    return ticket_no if to_utc_naive(now or utc_now()) - filed_at <= window else None


@dataclass(frozen=True)
class HandoffResult:
    queued: bool  # False: outside duty hours, a call-back ticket was filed instead
    ahead: int  # customers waiting before this one
    ticket_no: Optional[str]


def within_duty_hours(now: Optional[dt.datetime] = None) -> bool:
    """Whether agents are on duty now (config/service.yml, default around the clock)."""
    hours = get_settings().service.handoff.duty_hours
    start, end = hours.start, hours.end
    local = to_local(now or utc_now()).strftime("%H:%M")
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # a night shift over midnight


def request_handoff(
    conversation_id: str,
    channel: str,
    reason: str,
    details: Mapping[str, Any],
    ticket_no: Optional[str] = None,
    priority: Optional[str] = None,
) -> HandoffResult:
    """Queue the conversation for an agent, or file a call-back ticket outside duty hours."""
    priority = priority or {"emergency": "urgent", "complaint": "high"}.get(reason, "normal")
    if not within_duty_hours():
        callback = file_request(
            CALLBACK_SERVICE,
            {**details, "description": staff_text("callback_off_duty", reason=reason)},
            conversation_id,
            channel,
        )
        with session_scope() as session:
            repository = HandoffRepository(session)
            handoff = repository.open(
                conversation_id, channel, "callback", priority, details, callback.ticket_no
            )
            repository.close(handoff.id)
        return HandoffResult(queued=False, ahead=0, ticket_no=callback.ticket_no)
    with session_scope() as session:
        repository = HandoffRepository(session)
        handoff = repository.open(conversation_id, channel, reason, priority, details, ticket_no)
        position = repository.queue_position(handoff) or 1
    logger.info(
        "handoff %s for %s (%s, %s): %s",
        reason,
        conversation_id,
        priority,
        position,
        mask_personal_data(str(details)),
    )
    return HandoffResult(queued=True, ahead=max(position - 1, 0), ticket_no=ticket_no)


def record_rating(conversation_id: str, rating: int) -> Optional[str]:
    """Store the customer's 1–5 rating on the latest closed handoff; the rated agent's name."""
    with session_scope() as session:
        handoff = HandoffRepository(session).record_rating(conversation_id, rating)
        return handoff.agent if handoff is not None else None
