"""Customers' photos for staff: one route that serves a photo file, and the links to it.

    GET /console/media/{token}      the photo (or its thumbnail) a signed link names

A photo is served only to signed-in staff (the console's session, as every console page) and
only through a valid, unexpired link (`bot.core.media.service.link_token`, signed with the
console's key, good for `media.link_minutes`). Any bad, expired or tampered link, a photo
that no longer exists or a file missing from the store answers the same 404 (one generic line,
catalog `staff_messages.media_not_found`), so nothing tells one case from another. The answer
is never cached (``private, no-store``), never sniffed, shown inline, and sandboxed by its own
Content-Security-Policy.

The ticket page, the hand-over conversation view and the JSON API build their photo links
with the helpers below (`photo_links`, `attachment_json`, `ticket_location`).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Optional

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot.console.auth import Principal, require_role
from bot.core.catalog import load_catalog
from bot.core.clock import iso_local
from bot.core.db import session_scope
from bot.core.location import map_link
from bot.core.media import service as media
from bot.core.media.images import ACCEPTED_FORMATS, THUMBNAIL_TYPE
from bot.core.media.models import Attachment
from bot.core.media.storage import MediaNotFound, MediaStoreError
from bot.core.settings import AreasConfig
from bot.core.tickets.models import Ticket

logger = logging.getLogger(__name__)

# Whoever may open a ticket page (tickets_views.TICKET_ROLES) may open its photos.
MEDIA_ROLES = ("agent", "supervisor", "trainer")
MEDIA_PATH = "/console/media/"
TOKEN_MAX_CHARS = 512  # a real token is under 100 characters
CONVERSATION_PHOTOS_MAX = 30  # the newest ones of a long-lived chat (Telegram, WeChat)
SERVED_TYPES = frozenset({*ACCEPTED_FORMATS.values(), THUMBNAIL_TYPE})

MEDIA_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    # A photo opened in its own tab: nothing runs, nothing loads, nobody frames it.
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox"
    ),
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


def _not_found() -> Response:
    """The one answer for every link that does not lead to a photo (no reason given)."""
    text = load_catalog().staff_messages.get("media_not_found", "")
    return Response(
        text, status_code=404, media_type="text/plain; charset=utf-8", headers=MEDIA_HEADERS
    )


def _lookup(database_url: str, attachment_id: int) -> Optional[Attachment]:
    with session_scope(database_url) as session:
        return session.get(Attachment, attachment_id)


@router.get("/console/media/{token}", name="media_file")
async def media_file(
    request: Request, token: str, user: Principal = Depends(require_role(*MEDIA_ROLES))
) -> Response:
    """The photo or thumbnail a valid, unexpired staff link names; the same 404 otherwise."""
    opened = media.open_link_token(token) if len(token) <= TOKEN_MAX_CHARS else None
    if opened is None:
        return _not_found()
    attachment_id, variant = opened
    attachment = await run_in_threadpool(
        _lookup, request.app.state.settings.database_url, attachment_id
    )
    if attachment is None:
        return _not_found()
    try:
        data, content_type = await run_in_threadpool(media.read_file, attachment, variant)
    except (MediaNotFound, ValueError):
        logger.warning(
            "photo %s: its %s file is missing from the media store", attachment_id, variant
        )
        return _not_found()
    except MediaStoreError as error:
        logger.error("photo %s: media store unavailable: %s", attachment_id, error)
        text = load_catalog().staff_messages.get("media_unavailable", "")
        return Response(
            text, status_code=503, media_type="text/plain; charset=utf-8", headers=MEDIA_HEADERS
        )
    if content_type not in SERVED_TYPES:  # only what the cleaning step writes
        return _not_found()
    extension = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}[content_type]
    suffix = "-thumb" if variant == "thumb" else ""
    headers = {
        **MEDIA_HEADERS,
        "Content-Disposition": f'inline; filename="photo-{attachment_id}{suffix}.{extension}"',
    }
    return Response(data, media_type=content_type, headers=headers)


# ---------------------------------------------------------------- links for pages and the API


def media_path(attachment_id: int, variant: str) -> str:
    """The console-relative signed link to a photo (`variant` full or thumb)."""
    return MEDIA_PATH + media.link_token(attachment_id, variant)


def photo_links(
    attachments: Iterable[Attachment], ticket_numbers: Optional[Dict[int, str]] = None
) -> List[Dict[str, Any]]:
    """What a page shows of each photo: its signed links, size and when it was sent."""
    numbers = ticket_numbers or {}
    return [
        {
            "id": attachment.id,
            "thumb": media_path(attachment.id, "thumb"),
            "full": media_path(attachment.id, "full"),
            "width": attachment.width,
            "height": attachment.height,
            "created_at": attachment.created_at,
            "ticket_no": numbers.get(attachment.ticket_id) if attachment.ticket_id else None,
        }
        for attachment in attachments
    ]


def conversation_photos(session: Session, conversation_id: str) -> List[Dict[str, Any]]:
    """A conversation's photos, oldest first: those on its tickets and those still held for
    it (the newest `CONVERSATION_PHOTOS_MAX`), each with its ticket's number if it has one."""
    its_tickets = select(Ticket.id).where(Ticket.conversation_id == conversation_id)
    newest = list(
        session.scalars(
            select(Attachment)
            .where(
                or_(
                    Attachment.conversation_id == conversation_id,
                    Attachment.ticket_id.in_(its_tickets),
                )
            )
            .order_by(Attachment.id.desc())
            .limit(CONVERSATION_PHOTOS_MAX)
        )
    )
    ticket_ids = {a.ticket_id for a in newest if a.ticket_id is not None}
    numbers: Dict[int, str] = {}
    if ticket_ids:
        rows = session.execute(select(Ticket.id, Ticket.ticket_no).where(Ticket.id.in_(ticket_ids)))
        numbers = {int(ticket_id): str(number) for ticket_id, number in rows}
    return photo_links(reversed(newest), numbers)


def attachments_by_ticket(
    session: Session, ticket_ids: Iterable[int]
) -> Dict[int, List[Attachment]]:
    """The photos of many tickets in one query per 500 tickets, oldest first per ticket."""
    wanted = sorted({int(i) for i in ticket_ids})
    found: Dict[int, List[Attachment]] = {i: [] for i in wanted}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for attachment in session.scalars(
            select(Attachment).where(Attachment.ticket_id.in_(chunk)).order_by(Attachment.id)
        ):
            found[attachment.ticket_id].append(attachment)
    return found


def attachment_json(attachment: Attachment, url: Callable[[str], str]) -> Dict[str, Any]:
    """A photo in the JSON API; `url` turns a console-relative path into the link to give."""
    return {
        "id": attachment.id,
        "content_type": attachment.content_type,
        "width": attachment.width,
        "height": attachment.height,
        "size_bytes": attachment.size_bytes,
        "created_at": iso_local(attachment.created_at),
        "url": url(media_path(attachment.id, "full")),
        "thumbnail_url": url(media_path(attachment.id, "thumb")),
    }


def ticket_location(
    ticket: Ticket, areas: Optional[AreasConfig] = None
) -> Optional[Dict[str, Any]]:
    """The location the customer shared with a ticket ({lat, lon, text, map_link}), or None."""
    lat, lon, text = ticket.latitude, ticket.longitude, ticket.location_text
    if lat is None or lon is None:
        if not text:
            return None
        return {"lat": None, "lon": None, "text": text, "map_link": None}
    link = map_link(lat, lon, areas)
    if link and not link.lower().startswith(("https://", "http://")):
        link = None  # a staff page links to web maps only
    return {"lat": lat, "lon": lon, "text": text, "map_link": link}


def media_labels(settings: Any) -> Dict[str, str]:
    """The pages' photo and location labels (catalog `labels.media`), the link hint filled in."""
    labels = dict(load_catalog().labels.get("media", {}))
    minutes = f"{float(settings.service.media.link_minutes):g}"
    labels["link_hint"] = labels.get("link_hint", "").format(minutes=minutes)
    return labels
