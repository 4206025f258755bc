"""Personal data (PIPL): masked in logs, kept no longer than configured, exported or erased on
a customer's request — every export and erasure recorded in an audit log.

* `install_log_masking()` — a logging filter, installed by every process at start, that masks
  phones, account numbers, names after their cue words and house numbers in every record.
* `purge(settings)` — the retention policy (config/service.yml `retention`): Rasa's tracker
  events, the personal details of long-closed tickets and hand-overs, old inbox items.
  Run by the console's background loop and `python -m bot privacy purge`.
* `export_customer(phone)` / `erase_customer(phone)` — `python -m bot privacy export|erase
  --phone …`: everything filed with that phone, and its conversations.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

from sqlalchemy import JSON, Column, DateTime, Integer, String, create_engine, delete, select, text
from sqlalchemy.engine import Engine

from bot.core.catalog import load_catalog
from bot.core.clock import to_utc_naive, utc_now
from bot.core.db import Base, session_scope
from bot.core.normalize import digits_of, mask_phone
from bot.core.settings import Settings, get_settings

logger = logging.getLogger(__name__)

PERSONAL_DETAILS = ("phone", "customer_name", "address", "account_no")
ERASED = "（已删除）"

# --------------------------------------------------------------------------- masking

_PHONE = re.compile(r"(?<![\dA-Za-z])(1[3-9]\d)[\s-]?\d{4}[\s-]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<![\dA-Za-z])(0\d{2,3})[\s-]?\d{3,4}[\s-]?(\d{2})\d{2}(?!\d)")
_LONG_NUMBER = re.compile(r"(?<![\dA-Za-z])(\d{4})(?:[\s-]?\d){3,}(\d{3})(?!\d)")
_HOUSE_NUMBER = re.compile(r"\d+(?=\s*(?:号|號|栋|幢|座|单元|室|楼|层|房|巷|弄|组))")


def _name_cues() -> List[str]:
    return list(get_settings().trainer.pii.name_cues) + list(
        load_catalog().fields["customer_name"].cues
    )


def mask_personal_data(text: str) -> str:
    """Phones, account numbers, names after 我叫/联系人…, and house numbers masked."""
    text = _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    text = _LANDLINE.sub(lambda m: f"{m.group(1)}****{m.group(2)}**", text)
    text = _LONG_NUMBER.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    cues = "|".join(re.escape(c) for c in sorted(set(_name_cues()), key=len, reverse=True))
    if cues:
        text = re.sub(
            f"({cues})[是叫为:：\\s]*([\\u4e00-\\u9fa5]{{2,4}})",
            lambda m: m.group(1) + m.group(2)[0] + "*" * (len(m.group(2)) - 1),
            text,
        )
    return _HOUSE_NUMBER.sub(lambda m: "*" * len(m.group(0)), text)


class MaskingFilter(logging.Filter):
    """Masks personal data in the formatted message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is left as it is
            return True
        masked = mask_personal_data(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def install_log_masking() -> None:
    """Mask personal data in every log record this process creates, whichever logger (Rasa's,
    Sanic's, ours) and handler it goes to: the record factory masks it when it is made."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "masks_personal_data", False):
        return
    masking = MaskingFilter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        masking.filter(record)
        return record

    factory.masks_personal_data = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


# --------------------------------------------------------------------------- audit log


class PrivacyAudit(Base):
    """Who exported or erased whose data, and what was affected (kept for accountability)."""

    __tablename__ = "privacy_audit"

    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False)
    actor = Column(String(64), nullable=False)
    action = Column(String(16), nullable=False)  # export, erase, purge
    subject = Column(String(32), nullable=False)  # the masked phone, or "retention"
    counts = Column(JSON, nullable=False)


def _audit(actor: str, action: str, subject: str, counts: Dict[str, int]) -> None:
    with session_scope() as session:
        session.add(
            PrivacyAudit(
                at=to_utc_naive(utc_now()),
                actor=actor,
                action=action,
                subject=subject,
                counts=counts,
            )
        )
    logger.info("privacy %s of %s by %s: %s", action, subject, actor, counts)


# --------------------------------------------------------------------------- tracker store


def _tracker_engine(settings: Settings) -> Optional[Engine]:
    if settings.rasa_tracker_url:
        return create_engine(settings.rasa_tracker_url, future=True)
    path = settings.tracker_db_path
    return create_engine(f"sqlite:///{path}", future=True) if path.exists() else None


def _delete_tracker_events(settings: Settings, where: str, params: Dict[str, Any]) -> int:
    engine = _tracker_engine(settings)
    if engine is None:
        return 0
    try:
        with engine.begin() as connection:
            exists = connection.execute(
                text(
                    "SELECT 1 FROM information_schema.tables WHERE table_name = 'events'"
                    if engine.dialect.name == "postgresql"
                    else "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
                )
            ).first()
            if not exists:
                return 0
            return int(
                connection.execute(text(f"DELETE FROM events WHERE {where}"), params).rowcount or 0
            )
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- retention


@dataclass
class PurgeReport:
    tracker_events: int = 0
    tickets: int = 0
    handoffs: int = 0
    inbox_items: int = 0
    dead_letters: int = 0
    photos: int = 0

    def as_dict(self) -> Dict[str, int]:
        return dict(self.__dict__)


def _forget_location(ticket: Any) -> None:
    """A shared location is personal data too (where the customer lives)."""
    ticket.latitude = ticket.longitude = ticket.location_text = None


def _erase_details(details: Dict[str, Any]) -> Dict[str, Any]:
    return {k: (ERASED if k in PERSONAL_DETAILS and v else v) for k, v in (details or {}).items()}


def purge(
    settings: Optional[Settings] = None, now: Optional[dt.datetime] = None, actor: str = "retention"
) -> PurgeReport:
    """Apply the retention policy once (idempotent)."""
    from bot.core import dead_letters
    from bot.core.handoff.models import Handoff
    from bot.core.media.service import purge_held, purge_ticket_photos
    from bot.core.tickets.models import FINAL_STATUSES, Ticket, TicketEvent
    from bot.core.training.models import InboxItem

    settings = settings or get_settings()
    policy = settings.service.retention
    now = to_utc_naive(now or utc_now())
    report = PurgeReport()
    if policy.tracker_days:
        cutoff = (now - dt.timedelta(days=policy.tracker_days)).replace(tzinfo=dt.timezone.utc)
        report.tracker_events = _delete_tracker_events(
            settings, "timestamp < :cutoff", {"cutoff": cutoff.timestamp()}
        )
        # Dead letters hold customers' messages as they arrived: kept as long as the trackers.
        report.dead_letters = dead_letters.delete_before(cutoff, settings.database_url)
    with session_scope(settings.database_url) as session:
        if policy.closed_ticket_personal_data_days:
            cutoff = now - dt.timedelta(days=policy.closed_ticket_personal_data_days)
            old = session.execute(
                select(Ticket).where(Ticket.status.in_(FINAL_STATUSES), Ticket.updated_at < cutoff)
            ).scalars()
            for ticket in old:
                erased = _erase_details(dict(ticket.details or {}))
                photos = purge_ticket_photos(session, ticket.id)
                report.photos += photos
                if (
                    erased == ticket.details
                    and ticket.contact_phone is None
                    and ticket.latitude is None
                    and not photos
                ):
                    continue
                ticket.details, ticket.contact_phone = erased, None
                _forget_location(ticket)
                ticket.events.append(
                    TicketEvent(
                        at=now,
                        actor=actor,
                        action="personal_data_removed",
                        note="保存期限已过，已删除个人信息",
                    )
                )
                report.tickets += 1
            for handoff in session.execute(
                select(Handoff).where(Handoff.status == "closed", Handoff.closed_at < cutoff)
            ).scalars():
                erased = _erase_details(dict(handoff.details or {}))
                if erased != handoff.details:
                    handoff.details = erased
                    report.handoffs += 1
        # Photos never attached to a ticket (`media.held_days`).
        report.photos += purge_held(now, session=session)
        if policy.inbox_days:
            cutoff = now - dt.timedelta(days=policy.inbox_days)
            report.inbox_items = int(
                session.execute(
                    delete(InboxItem)
                    .where(InboxItem.last_seen < cutoff)
                    .execution_options(synchronize_session=False)
                ).rowcount
                or 0
            )
    if any(report.as_dict().values()):
        _audit(actor, "purge", "retention", report.as_dict())
    return report


# --------------------------------------------------------------------------- a customer's request


@dataclass
class CustomerData:
    phone: str
    tickets: List[Dict[str, Any]] = field(default_factory=list)
    handoffs: List[Dict[str, Any]] = field(default_factory=list)
    conversations: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def _conversation_events(
    settings: Settings, conversation_ids: Iterable[str]
) -> Dict[str, List[Dict[str, Any]]]:
    engine = _tracker_engine(settings)
    found: Dict[str, List[Dict[str, Any]]] = {}
    if engine is None:
        return found
    try:
        with engine.connect() as connection:
            for conversation in conversation_ids:
                rows = connection.execute(
                    text("SELECT data FROM events WHERE sender_id = :sender ORDER BY id"),
                    {"sender": conversation},
                ).scalars()
                found[conversation] = [json.loads(row) for row in rows]
    except Exception as error:  # no tracker store yet: nothing to export from it
        logger.warning("tracker store not readable for a privacy request: %s", type(error).__name__)
    finally:
        engine.dispose()
    return found


def _customer(session: Any, phone: str) -> tuple:
    from bot.core.handoff.models import Handoff
    from bot.core.tickets.models import Ticket

    tickets = list(session.execute(select(Ticket).where(Ticket.contact_phone == phone)).scalars())
    conversations = {t.conversation_id for t in tickets if t.conversation_id}
    handoffs = [
        h
        for h in session.execute(select(Handoff)).scalars()
        if h.conversation_id in conversations
        or digits_of(str((h.details or {}).get("phone", ""))) == phone
    ]
    return tickets, handoffs, conversations


def export_customer(phone: str, actor: str, settings: Optional[Settings] = None) -> CustomerData:
    """Everything filed with `phone`: tickets (with history), hand-overs, their conversations."""
    from bot.core.tickets.repository import TicketRepository

    settings = settings or get_settings()
    phone = digits_of(phone)
    with session_scope(settings.database_url) as session:
        tickets, handoffs, conversations = _customer(session, phone)
        data = CustomerData(
            phone=phone,
            tickets=[TicketRepository.to_dict(t, with_history=True) for t in tickets],
            handoffs=[
                {
                    "id": h.id,
                    "conversation_id": h.conversation_id,
                    "reason": h.reason,
                    "status": h.status,
                    "details": h.details,
                }
                for h in handoffs
            ],
        )
    data.conversations = _conversation_events(settings, sorted(conversations))
    _audit(
        actor,
        "export",
        mask_phone(phone),
        {
            "tickets": len(data.tickets),
            "handoffs": len(data.handoffs),
            "conversations": len(data.conversations),
        },
    )
    return data


def erase_customer(phone: str, actor: str, settings: Optional[Settings] = None) -> Dict[str, int]:
    """Remove the personal data filed with `phone`: ticket details, locations and photos (the
    tickets stay, for the bureau's figures), hand-over details, the photos its conversations
    sent, and the conversations in Rasa's tracker store."""
    from bot.core.media.service import purge_conversation_photos, purge_ticket_photos
    from bot.core.tickets.models import TicketEvent

    settings = settings or get_settings()
    phone = digits_of(phone)
    now = to_utc_naive(utc_now())
    photos = 0
    with session_scope(settings.database_url) as session:
        tickets, handoffs, conversations = _customer(session, phone)
        for conversation in sorted(conversations):
            photos += purge_conversation_photos(session, conversation)
        for ticket in tickets:
            photos += purge_ticket_photos(session, ticket.id)
            ticket.details, ticket.contact_phone = _erase_details(dict(ticket.details or {})), None
            _forget_location(ticket)
            ticket.events.append(
                TicketEvent(
                    at=now,
                    actor=actor,
                    action="personal_data_removed",
                    note="应客户要求删除个人信息",
                )
            )
        for handoff in handoffs:
            handoff.details = _erase_details(dict(handoff.details or {}))
    events = 0
    for conversation in sorted(conversations):
        events += _delete_tracker_events(settings, "sender_id = :sender", {"sender": conversation})
    counts = {
        "tickets": len(tickets),
        "handoffs": len(handoffs),
        "tracker_events": events,
        "photos": photos,
    }
    _audit(actor, "erase", mask_phone(phone), counts)
    return counts
