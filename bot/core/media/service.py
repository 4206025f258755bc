"""Receiving, placing and showing customers' photos; every channel goes through here.

    attachment_id = receive_photo(conversation_id, "telegram", raw)   # raises ImageRefused
    placed = place_photo(attachment_id, conversation_id, ticket_no)   # held / attached / limit
    attach_held(session, conversation_id, ticket)                     # when a ticket is filed
    token = link_token(attachment.id, "thumb"); open_link_token(token)

A photo is cleaned (bot/core/media/images.py), both files are written to the media store,
then one row is committed; if the row cannot be written the files are removed again, so
nothing is half-stored. Staff links are signed with the console's key and expire after
`media.link_minutes`; the console serves them only to signed-in staff.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from bot.core.catalog import load_catalog
from bot.core.clock import to_utc_naive, utc_now
from bot.core.db import session_scope
from bot.core.media.images import prepare_image
from bot.core.media.models import Attachment
from bot.core.media.storage import MediaStore, media_store
from bot.core.settings import get_settings
from bot.core.tickets.models import FINAL_STATUSES, Ticket

logger = logging.getLogger(__name__)

VARIANTS = ("full", "thumb")
MAX_ID = 2**31 - 1  # an INTEGER column: a larger id is no attachment (and would not bind)


@dataclass(frozen=True)
class Placement:
    """Where a received photo went: `outcome` is attached, held, limit or missing."""

    outcome: str
    ticket_no: Optional[str] = None


def photo_refusal(reason: str) -> str:
    """The polite line for a photo we do not keep (`ImageRefused.reason`, or "failed" when
    it could not be stored)."""
    max_mb = get_settings().service.media.max_bytes // (1024 * 1024)
    return load_catalog().system_messages[f"photo_{reason}"].format(max_mb=max_mb)


def _store(store: Optional[MediaStore]) -> MediaStore:
    return store or media_store()


def receive_photo(
    conversation_id: str, channel: str, raw: bytes, store: Optional[MediaStore] = None
) -> int:
    """Check, clean and store a photo, held for its conversation; its attachment id.

    Raises `ImageRefused` for a file we do not keep (nothing is stored then)."""
    limits = get_settings().service.media
    prepared = prepare_image(raw, limits)
    store = _store(store)
    now = to_utc_naive(utc_now())
    stem = f"{now:%Y/%m/%d}/{secrets.token_hex(16)}"
    file_key, thumb_key = f"{stem}.{prepared.extension}", f"{stem}-thumb.jpg"
    store.put(file_key, prepared.data, prepared.content_type)
    try:
        store.put(thumb_key, prepared.thumbnail, "image/jpeg")
        with session_scope() as session:
            attachment = Attachment(
                kind="photo",
                conversation_id=conversation_id,
                channel=channel,
                content_type=prepared.content_type,
                size_bytes=len(prepared.data),
                width=prepared.width,
                height=prepared.height,
                sha256=prepared.sha256,
                file_key=file_key,
                thumbnail_key=thumb_key,
                created_at=now,
            )
            session.add(attachment)
            session.flush()
            attachment_id = int(attachment.id)
    except BaseException:
        _remove_files(store, file_key, thumb_key)
        raise
    logger.info("photo %s received in %s (%s)", attachment_id, channel, prepared.content_type)
    return attachment_id


def _remove_files(store: MediaStore, *keys: str) -> None:
    for key in keys:
        try:
            store.delete(key)
        except Exception:
            logger.exception("could not remove media file %s", key)


def delete_attachment(
    session: Session, attachment: Attachment, store: Optional[MediaStore] = None
) -> None:
    """Remove a photo's row (in the caller's transaction) and, once that commits, its files
    (a rolled-back transaction leaves row and files as they were)."""
    keys = (attachment.file_key, attachment.thumbnail_key)
    session.delete(attachment)
    session.flush()
    target = _store(store)
    _files_to_remove(session).append(lambda: _remove_files(target, *keys))


_AFTER_COMMIT = "media_files_to_remove"


def _files_to_remove(session: Session) -> List[Callable[[], None]]:
    """The file removals waiting for this session's commit (listeners added once)."""
    if _AFTER_COMMIT not in session.info:
        session.info[_AFTER_COMMIT] = []
        event.listen(session, "after_commit", _remove_after_commit)
        event.listen(session, "after_rollback", _forget_on_rollback)
    return session.info[_AFTER_COMMIT]


def _remove_after_commit(session: Session) -> None:
    pending, session.info[_AFTER_COMMIT] = session.info[_AFTER_COMMIT], []
    for remove in pending:
        remove()


def _forget_on_rollback(session: Session) -> None:
    session.info[_AFTER_COMMIT] = []


def count_for_ticket(session: Session, ticket_id: int) -> int:
    return int(
        session.scalar(select(func.count(Attachment.id)).where(Attachment.ticket_id == ticket_id))
        or 0
    )


def held(session: Session, conversation_id: str) -> List[Attachment]:
    """Photos of a conversation not attached to a ticket yet, oldest first."""
    return list(
        session.scalars(
            select(Attachment)
            .where(Attachment.conversation_id == conversation_id, Attachment.ticket_id.is_(None))
            .order_by(Attachment.id)
        )
    )


def for_ticket(session: Session, ticket_id: int) -> List[Attachment]:
    """A ticket's photos, oldest first."""
    return list(
        session.scalars(
            select(Attachment).where(Attachment.ticket_id == ticket_id).order_by(Attachment.id)
        )
    )


def newest_open_ticket(session: Session, conversation_id: str) -> Optional[Ticket]:
    """The conversation's newest ticket that is not resolved, closed or cancelled."""
    return session.scalar(
        select(Ticket)
        .where(Ticket.conversation_id == conversation_id, Ticket.status.not_in(FINAL_STATUSES))
        .order_by(Ticket.id.desc())
        .limit(1)
    )


def place_photo(
    attachment_id: object,
    conversation_id: str,
    to_open_ticket: bool,
    store: Optional[MediaStore] = None,
) -> Placement:
    """Put a received photo where it belongs: on the conversation's newest open ticket when
    `to_open_ticket` (no request being collected, or an emergency already filed), else held
    for the ticket about to be filed. Over `media.max_per_ticket` the photo is deleted."""
    limit = get_settings().service.media.max_per_ticket
    try:
        wanted = int(str(attachment_id))
    except ValueError:
        return Placement("missing")
    if not 1 <= wanted <= MAX_ID:
        return Placement("missing")
    with session_scope() as session:
        attachment = session.get(Attachment, wanted)
        if attachment is None or attachment.conversation_id != conversation_id:
            return Placement("missing")  # never someone else's photo
        if attachment.ticket_id is not None:
            ticket = session.get(Ticket, attachment.ticket_id)
            return Placement("attached", ticket.ticket_no if ticket else None)
        ticket = newest_open_ticket(session, conversation_id) if to_open_ticket else None
        if ticket is not None:
            if count_for_ticket(session, ticket.id) >= limit:
                delete_attachment(session, attachment, store)
                return Placement("limit", ticket.ticket_no)
            attachment.ticket_id = ticket.id
            attachment.attached_at = to_utc_naive(utc_now())
            return Placement("attached", ticket.ticket_no)
        if len(held(session, conversation_id)) > limit:
            delete_attachment(session, attachment, store)
            return Placement("limit")
        return Placement("held")


def attach_held(session: Session, conversation_id: Optional[str], ticket: Ticket) -> int:
    """Attach the conversation's held photos to a ticket just filed (in its transaction);
    how many were attached."""
    if not conversation_id:
        return 0
    room = get_settings().service.media.max_per_ticket - count_for_ticket(session, ticket.id)
    now = to_utc_naive(utc_now())
    attached = 0
    for attachment in held(session, conversation_id)[: max(room, 0)]:
        attachment.ticket_id = ticket.id
        attachment.attached_at = now
        attached += 1
    return attached


def purge_held(
    now: Optional[dt.datetime] = None,
    store: Optional[MediaStore] = None,
    session: Optional[Session] = None,
) -> int:
    """Delete photos never attached to a ticket after `media.held_days` (in `session`'s
    transaction when given); how many."""
    days = get_settings().service.media.held_days
    if not days:
        return 0
    cutoff = to_utc_naive(now or utc_now()) - dt.timedelta(days=days)
    if session is None:
        with session_scope() as own:
            return purge_held(now, store, own)
    old = session.scalars(
        select(Attachment).where(Attachment.ticket_id.is_(None), Attachment.created_at < cutoff)
    ).all()
    for attachment in old:
        delete_attachment(session, attachment, store)
    return len(old)


def purge_conversation_photos(
    session: Session, conversation_id: str, store: Optional[MediaStore] = None
) -> int:
    """Delete every photo a conversation sent (a customer's erasure request); how many."""
    photos = session.scalars(
        select(Attachment).where(Attachment.conversation_id == conversation_id)
    ).all()
    for attachment in photos:
        delete_attachment(session, attachment, store)
    return len(photos)


def purge_ticket_photos(
    session: Session, ticket_id: int, store: Optional[MediaStore] = None
) -> int:
    """Delete a ticket's photos (the retention purge of its personal data); how many."""
    photos = for_ticket(session, ticket_id)
    for attachment in photos:
        delete_attachment(session, attachment, store)
    return len(photos)


# ---------------------------------------------------------------- staff links


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().console_session_key(), salt="intake-media")


def link_token(attachment_id: int, variant: str = "full") -> str:
    """A signed token naming one photo file, valid for `media.link_minutes`."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}")
    return str(_serializer().dumps([int(attachment_id), variant]))


def open_link_token(token: str) -> Optional[Tuple[int, str]]:
    """(attachment id, variant) of a valid, unexpired token; None otherwise."""
    max_age = int(get_settings().service.media.link_minutes * 60)
    try:
        attachment_id, variant = _serializer().loads(token, max_age=max_age)
    except (BadSignature, ValueError, TypeError):
        return None
    if variant not in VARIANTS or not isinstance(attachment_id, int):
        return None
    return attachment_id, variant


def read_file(
    attachment: Attachment, variant: str, store: Optional[MediaStore] = None
) -> Tuple[bytes, str]:
    """(bytes, content type) of a photo or its thumbnail."""
    if variant == "thumb":
        return _store(store).get(attachment.thumbnail_key), "image/jpeg"
    return _store(store).get(attachment.file_key), attachment.content_type
