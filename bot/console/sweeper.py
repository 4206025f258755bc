"""The console's background tasks.

* every 30 s (CONSOLE_SWEEP_SECONDS; 0 turns both tasks off), conversations nobody claimed
  within `handoff.claim_wait_minutes` become call-back tickets;
* every `notifications.check_every_seconds` (config/service.yml), notices to customers that
  are due — new ones, and failed ones whose retry time has come — are delivered;
* every CONSOLE_SWEEP_SECONDS too, tickets not resolved on time are escalated (config/service.yml
  `escalation`; exactly once each level, whichever console process gets there first);
* every `retention.purge_every_hours`, personal data past its retention is removed
  (bot/core/privacy.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, List

from starlette.concurrency import run_in_threadpool

from bot.core.clock import utc_now
from bot.core.db import session_scope
from bot.core.handoff.service import sweep_unclaimed
from bot.core.notifications.delivery import NoticeDelivery, RetryPolicy
from bot.core.privacy import purge
from bot.core.settings import Settings
from bot.core.tickets.escalation import escalate_due

logger = logging.getLogger(__name__)


async def repeat_forever(name: str, step: Callable[[], Any], interval_s: float) -> None:
    """Run `step` in a worker thread, sleep, repeat until cancelled; a failed step is logged
    and never stops the loop."""
    while True:
        try:
            await run_in_threadpool(step)
        except Exception:
            logger.exception("%s failed", name)
        await asyncio.sleep(interval_s)


def sweep_handovers(settings: Settings) -> None:
    filed = sweep_unclaimed(settings)
    if filed:
        logger.info("unclaimed handovers turned into call-backs: %s", ", ".join(filed))


def deliver_notices(settings: Settings) -> None:
    """Deliver every notice that is due now (also called right after a status change)."""
    NoticeDelivery(settings).deliver_due()


def escalate_tickets(settings: Settings) -> int:
    """Escalate the tickets whose next level is due now; how many escalations this made."""
    with session_scope(settings.database_url) as session:
        done = escalate_due(session, utc_now(), settings.service.escalation)
    return len(done)


def background_tasks(settings: Settings) -> List[Awaitable[None]]:
    """The loops the console runs while it is up (none when CONSOLE_SWEEP_SECONDS is 0)."""
    interval = settings.console_sweep_seconds
    if interval <= 0:
        return []
    return [
        repeat_forever("handover sweep", lambda: sweep_handovers(settings), interval),
        repeat_forever("escalation", lambda: escalate_tickets(settings), interval),
        repeat_forever(
            "notice delivery",
            lambda: deliver_notices(settings),
            RetryPolicy.from_settings(settings).check_every_s,
        ),
        repeat_forever(
            "privacy purge",
            lambda: purge(settings),
            settings.service.retention.purge_every_hours * 3600,
        ),
    ]
