"""The console's background task: every 30 s (CONSOLE_SWEEP_SECONDS; 0 turns it off),
conversations nobody claimed within `handoff.claim_wait_minutes` become call-back tickets."""

from __future__ import annotations

import asyncio
import logging
import os

from starlette.concurrency import run_in_threadpool

from bot.config import Settings
from bot.console.handover import sweep_unclaimed

logger = logging.getLogger(__name__)


def sweep_interval_s() -> float:
    return float(os.environ.get("CONSOLE_SWEEP_SECONDS", "").strip() or 30)


async def sweep_forever(settings: Settings, interval_s: float) -> None:
    """Sweep, sleep, repeat until cancelled; one failed sweep never stops the loop."""
    while True:
        try:
            filed = await run_in_threadpool(sweep_unclaimed, settings)
            if filed:
                logger.info("unclaimed handovers turned into call-backs: %s", ", ".join(filed))
        except Exception:
            logger.exception("handover sweep failed")
        await asyncio.sleep(interval_s)
