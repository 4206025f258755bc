"""Delivering notices: claim one, send it through Rasa into the customer's channel, record how
it went — on the notice, in the ticket's history and in the log.

A claim is one conditional UPDATE (attempts + 1, next try pushed back by a lease), so two
console processes, or the sweep loop and a request's background task, never send one notice
twice; a process that dies mid-send leaves the notice to be retried when the lease ends.
Failed sends are retried after `notifications.retry_after_seconds` (config/service.yml);
when those are used up the notice is marked failed and the ticket's history says so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased

from bot.core.clock import to_utc_naive, utc_now
from bot.core.db import session_scope
from bot.core.notifications.models import RATING_FORM, Notification
from bot.core.rasa_api import RasaClient
from bot.core.settings import Settings
from bot.core.tickets.models import TicketEvent

logger = logging.getLogger(__name__)

ACTOR = "notifier"
DEFAULT_RETRY_AFTER_S = (30, 120, 600, 1800, 7200)
DEFAULT_CHECK_EVERY_S = 10
LEASE_S = 120
MAX_ERROR_CHARS = 500

# Sends one notice; raises when it did not reach the customer's channel.
Sender = Callable[[Notification], None]


class ChannelOff(RuntimeError):
    """The customer's channel cannot be written to from here (its credentials are not set)."""


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again after a failed send, and when to give up."""

    retry_after_s: Tuple[float, ...] = DEFAULT_RETRY_AFTER_S
    check_every_s: float = DEFAULT_CHECK_EVERY_S

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetryPolicy":
        section = settings.service.notifications
        return cls(
            retry_after_s=section.retry_after_seconds, check_every_s=section.check_every_seconds
        )

    @property
    def max_attempts(self) -> int:
        return len(self.retry_after_s) + 1

    def wait_after(self, attempts: int) -> float:
        """Seconds before the next try, after `attempts` failed ones."""
        return self.retry_after_s[min(attempts, len(self.retry_after_s)) - 1]


@dataclass
class DeliveryReport:
    """Notice ids by what happened to them in one pass."""

    sent: List[int] = field(default_factory=list)
    retrying: List[int] = field(default_factory=list)
    failed: List[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sent or self.retrying or self.failed)


def push_problem(settings: Settings, channel: str) -> Optional[str]:
    """Why a message cannot be pushed to a customer of `channel` with these settings.

    None when it can. Telegram and WeChat need their credentials (without them Rasa would
    quietly keep the message in the transcript only); the web chat page reads the transcript
    itself, so anything else is always deliverable."""
    if channel == "telegram":
        missing = [
            name
            for name, value in (
                ("TELEGRAM_BOT_TOKEN", settings.telegram_bot_token),
                ("TELEGRAM_WEBHOOK_SECRET", settings.telegram_webhook_secret),
            )
            if not value
        ]
        return f"Telegram channel off: {missing[0]} not set" if missing else None
    if channel == "wechat" and not (
        settings.wechat_token and settings.wechat_app_id and settings.wechat_app_secret
    ):
        return (
            "WeChat customer-service API off: WECHAT_TOKEN/WECHAT_APP_ID/WECHAT_APP_SECRET not set"
        )
    return None


def rasa_sender(settings: Settings, client: Optional[RasaClient] = None) -> Sender:
    """Send a notice through Rasa, effectively once.

    Every event a notice appends carries the notice's id (and which part it is) in its
    metadata. Before sending, the conversation's tracker is read: the parts already there —
    because an earlier try reached Rasa but its answer, or our record of it, was lost — are
    not sent again. Rasa stores the events (the transcript and the web chat page show them)
    and sends bot messages through the named output channel; a channel that fails makes the
    call fail."""

    def send(notice: Notification) -> None:
        problem = push_problem(settings, notice.channel)
        if problem:
            raise ChannelOff(problem)
        rasa = client or RasaClient(settings)
        events = rasa.events(notice.conversation_id)
        done = delivered_parts(events, notice.id)
        for part in notice_parts(notice):
            if part.name in done:
                continue
            if part.execute and not ran_after(events, notice.id, part.execute):
                rasa.execute(notice.conversation_id, part.execute, notice.channel)
            if part.events:
                rasa.append(notice.conversation_id, part.events, notice.channel)

    return send


@dataclass(frozen=True)
class NoticePart:
    """One step of a notice: events to append and/or an action to run first."""

    name: str
    events: List[Dict[str, Any]]
    execute: Optional[str] = None


def _marked(event: Dict[str, Any], notice: Notification, part: str) -> Dict[str, Any]:
    metadata = {"notification": notice.id, "part": part, "kind": notice.kind}
    if notice.ticket_status:
        metadata["ticket_status"] = notice.ticket_status
    return {**event, "timestamp": time.time(), "metadata": metadata}


def notice_parts(notice: Notification) -> List[NoticePart]:
    """The steps of a notice, in order.

    A status notice is one bot message. A hand-over that timed out resumes the paused
    conversation, then says so. A hand-back resumes it; with a rating it then runs the rating
    form and marks the end with `action_listen` (an executed action is not followed by one as a
    predicted action is; without it the policies would take the customer's answer as arriving
    mid-action)."""
    message = _marked({"event": "bot", "text": notice.text}, notice, "message")
    resume = NoticePart("resume", [_marked({"event": "resume"}, notice, "resume")])
    if notice.kind == "handoff_timeout":  # one call: Rasa appends both or neither
        return [NoticePart("message", [_marked({"event": "resume"}, notice, "message"), message])]
    if notice.kind == "handback":
        return [resume]
    if notice.kind == "handback_rating":
        listen = _marked({"event": "action", "name": "action_listen"}, notice, "rated")
        return [resume, NoticePart("rated", [listen], execute=RATING_FORM)]
    return [NoticePart("message", [message])]


def _marking(event: Any, notice_id: int) -> Optional[Dict[str, Any]]:
    """The event's metadata when the event belongs to notice `notice_id`, else None."""
    metadata = event.get("metadata") if isinstance(event, dict) else None
    if isinstance(metadata, dict) and metadata.get("notification") == notice_id:
        return metadata
    return None


def ran_after(events: List[Dict[str, Any]], notice_id: int, action: str) -> bool:
    """Whether `action` ran after the first event of notice `notice_id` (a retry whose earlier
    try ran it but did not get to mark the end must not ask the customer twice)."""
    seen_notice = False
    for event in events:
        if _marking(event, notice_id) is not None:
            seen_notice = True
        elif seen_notice and event.get("event") == "action" and event.get("name") == action:
            return True
    return False


def delivered_parts(events: List[Dict[str, Any]], notice_id: int) -> Set[str]:
    """Which parts of notice `notice_id` the tracker already holds."""
    marks = (_marking(event, notice_id) for event in events)
    return {str(mark.get("part", "message")) for mark in marks if mark is not None}


class NoticeDelivery:
    """Sends what is due; `send` and `clock` are replaceable for tests."""

    def __init__(
        self,
        settings: Settings,
        send: Optional[Sender] = None,
        clock: Callable[[], datetime] = utc_now,
        policy: Optional[RetryPolicy] = None,
    ) -> None:
        self.database_url = settings.database_url
        self.send = send or rasa_sender(settings)
        self.clock = clock
        self.policy = policy or RetryPolicy.from_settings(settings)

    def _now(self) -> datetime:
        return to_utc_naive(self.clock())

    def due(self, limit: int = 100) -> List[int]:
        """Ids of the pending notices whose time has come, oldest first — only the oldest
        pending one of each conversation, so a customer reads notices in the order they were
        written (a later one waits while an earlier one is being retried)."""
        earlier = aliased(Notification)
        with session_scope(self.database_url) as session:
            return list(
                session.execute(
                    select(Notification.id)
                    .where(
                        Notification.state == "pending",
                        Notification.next_attempt_at <= self._now(),
                        ~exists().where(
                            earlier.conversation_id == Notification.conversation_id,
                            earlier.state == "pending",
                            earlier.id < Notification.id,
                        ),
                    )
                    .order_by(Notification.id)
                    .limit(limit)
                ).scalars()
            )

    def deliver_due(self, limit: int = 100, max_rounds: int = 10) -> DeliveryReport:
        """Try every notice that is due now (a conversation's next one in the next round)."""
        report = DeliveryReport()
        for _ in range(max_rounds):
            progressed = False
            for notice_id in self.due(limit):
                outcome = self.deliver(notice_id)
                if outcome is not None:
                    getattr(report, outcome).append(notice_id)
                    progressed = progressed or outcome == "sent"
            if not progressed:
                break
        return report

    def deliver(self, notice_id: int) -> Optional[str]:
        """Try one notice: "sent", "retrying", "failed", or None when it was not ours to try."""
        notice = self._claim(notice_id)
        if notice is None:
            return None
        try:
            self.send(notice)
        except Exception as error:  # every failure is recorded and retried, never dropped
            return self._record_failure(notice, describe(error))
        self._record_success(notice)
        return "sent"

    def _claim(self, notice_id: int) -> Optional[Notification]:
        now = self._now()
        with session_scope(self.database_url) as session:
            claimed = session.execute(
                update(Notification)
                .where(
                    Notification.id == notice_id,
                    Notification.state == "pending",
                    Notification.next_attempt_at <= now,
                )
                .values(
                    attempts=Notification.attempts + 1,
                    last_attempt_at=now,
                    next_attempt_at=now + timedelta(seconds=LEASE_S),
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                return None
            return session.get(Notification, notice_id)

    def _record_success(self, notice: Notification) -> None:
        now = self._now()
        with session_scope(self.database_url) as session:
            stored = session.get(Notification, notice.id)
            stored.state, stored.sent_at = "sent", now
            _add_to_history(
                session,
                notice,
                now,
                "notified",
                f"已通过{notice.channel}通知客户（第{notice.attempts}次尝试）：{notice.text}",
            )
        logger.info(
            "notice %s delivered to %s via %s (attempt %s)",
            notice.id,
            notice.conversation_id,
            notice.channel,
            notice.attempts,
        )

    def _record_failure(self, notice: Notification, error: str) -> str:
        now = self._now()
        gave_up = notice.attempts >= self.policy.max_attempts
        with session_scope(self.database_url) as session:
            stored = session.get(Notification, notice.id)
            stored.last_error = error
            if stored.state != "pending":  # superseded meanwhile: that outcome stands
                return "failed" if gave_up else "retrying"
            if gave_up:
                stored.state = "failed"
                _add_to_history(
                    session,
                    notice,
                    now,
                    "notify_failed",
                    f"通知客户失败（已尝试{notice.attempts}次，请电话联系客户）：{error}",
                )
            else:
                wait = self.policy.wait_after(notice.attempts)
                stored.next_attempt_at = now + timedelta(seconds=wait)
        if gave_up:
            logger.error(
                "notice %s to %s via %s failed for good after %s attempts: %s",
                notice.id,
                notice.conversation_id,
                notice.channel,
                notice.attempts,
                error,
            )
            return "failed"
        logger.warning(
            "notice %s to %s via %s failed (attempt %s of %s), will retry: %s",
            notice.id,
            notice.conversation_id,
            notice.channel,
            notice.attempts,
            self.policy.max_attempts,
            error,
        )
        return "retrying"


def _add_to_history(
    session: Any, notice: Notification, now: datetime, action: str, note: str
) -> None:
    """Record a delivery outcome in the ticket's history (hand-back notices have no ticket)."""
    if notice.ticket_id is not None:
        session.add(
            TicketEvent(ticket_id=notice.ticket_id, at=now, actor=ACTOR, action=action, note=note)
        )


def describe(error: BaseException) -> str:
    """A short, secret-free account of a failed send for the record."""
    text = f"{type(error).__name__}: {error}".strip()
    return text[:MAX_ERROR_CHARS]
