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
from typing import Any, Callable, Dict, List, Optional, Tuple

from sqlalchemy import select, update

from bot.core.clock import to_utc_naive, utc_now
from bot.core.db import session_scope
from bot.core.notifications.models import Notification
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


def rasa_sender(settings: Settings) -> Sender:
    """Send a notice as a bot message appended to the customer's conversation in Rasa.

    Rasa stores the message in the tracker (the transcript and the web chat page show it) and
    sends it through the named output channel; a channel that fails makes the call fail."""

    def send(notice: Notification) -> None:
        problem = push_problem(settings, notice.channel)
        if problem:
            raise ChannelOff(problem)
        RasaClient(settings).append(notice.conversation_id, notice_events(notice), notice.channel)

    return send


def notice_events(notice: Notification) -> List[Dict[str, Any]]:
    """The tracker events of a notice: the bot message (a hand-over that timed out first
    resumes the paused conversation, so the bot answers the customer again)."""
    message = {
        "event": "bot",
        "text": notice.text,
        "timestamp": time.time(),
        "metadata": {
            "notification": notice.id,
            "kind": notice.kind,
            "ticket_status": notice.ticket_status,
        },
    }
    return [{"event": "resume"}, message] if notice.kind == "handoff_timeout" else [message]


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
        """Ids of the pending notices whose time has come, oldest first."""
        with session_scope(self.database_url) as session:
            return list(
                session.execute(
                    select(Notification.id)
                    .where(
                        Notification.state == "pending", Notification.next_attempt_at <= self._now()
                    )
                    .order_by(Notification.id)
                    .limit(limit)
                ).scalars()
            )

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Try every notice that is due now."""
        report = DeliveryReport()
        for notice_id in self.due(limit):
            outcome = self.deliver(notice_id)
            if outcome is not None:
                getattr(report, outcome).append(notice_id)
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
            session.add(
                TicketEvent(
                    ticket_id=notice.ticket_id,
                    at=now,
                    actor=ACTOR,
                    action="notified",
                    note=f"已通过{notice.channel}通知客户（第{notice.attempts}次尝试）：{notice.text}",
                )
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
            if gave_up:
                stored.state = "failed"
                session.add(
                    TicketEvent(
                        ticket_id=notice.ticket_id,
                        at=now,
                        actor=ACTOR,
                        action="notify_failed",
                        note=f"通知客户失败（已尝试{notice.attempts}次，请电话联系客户）：{error}",
                    )
                )
            elif stored.state == "pending":  # not superseded meanwhile
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


def describe(error: BaseException) -> str:
    """A short, secret-free account of a failed send for the record."""
    text = f"{type(error).__name__}: {error}".strip()
    return text[:MAX_ERROR_CHARS]
