"""Long polling for Telegram, for a machine without a public HTTPS address (behind NAT).

    python -m bot telegram poll          (with `make run` running in another terminal)

Asks Telegram for new updates (getUpdates) and forwards each one, with the webhook secret,
to the Telegram channel's webhook on the local Rasa server — the same code path as webhook
mode, so replies, buttons and duplicate handling are identical. An update is acknowledged to
Telegram (the next offset) only after Rasa accepted it, so none is lost while Rasa restarts.

Retries are bounded (config/service.yml, `telegram_poll.forward`): an update the webhook keeps
refusing (an HTTP error answer, a timeout, a dropped connection) is tried `max_attempts` times
with growing waits, then recorded as a dead letter (bot/core/dead_letters.py, `python -m bot
dead-letters`) and acknowledged, so one poisonous update never blocks the ones after it. A 4xx
answer (other than 408/429) refuses the update itself and is dead-lettered at once. While the
Rasa server accepts no connection at all (it is restarting) nothing is counted: updates wait.
Logs name the update id only, never the customer's words.

    python -m bot telegram set-webhook https://intake.example.cn/webhooks/telegram/webhook

registers the public webhook (with the secret) instead; polling stops working while one is set.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Optional

import httpx
from telegram import Bot, Update
from telegram.error import NetworkError

from bot.core import dead_letters
from bot.core.settings import ForwardRetryConfig, get_settings
from bot.plugins.channels.telegram import (
    ALLOWED_UPDATES,
    SECRET_HEADER,
    TelegramSettings,
    quiet_http_log,
)

logger = logging.getLogger(__name__)

POLL_TIMEOUT_S = 30
RETRY_DELAY_S = 2.0  # after a failed getUpdates (polling itself goes on until stopped)
WEBHOOK_PATH = "/webhooks/telegram/webhook"
DEAD_LETTER_SOURCE = "telegram_poll"
# 4xx answers that say "later", not "never".
RETRYABLE_4XX = (408, 429)

sleep = asyncio.sleep  # the one way this module waits (tests replace it)


class ForwardRefused(RuntimeError):
    """The Rasa server will not take updates (channel off or secrets differ)."""


@dataclass(frozen=True)
class Forwarded:
    """What became of one update: delivered, or given up after `attempts` with `error`."""

    delivered: bool
    attempts: int
    error: str = ""


def _refused(status: int) -> bool:
    """An answer that refuses the update itself: trying it again cannot help."""
    return 400 <= status < 500 and status not in RETRYABLE_4XX


async def forward(
    http: httpx.AsyncClient,
    url: str,
    secret: str,
    update: Update,
    retry: Optional[ForwardRetryConfig] = None,
) -> Forwarded:
    """POST one update to the webhook, at most `retry.max_attempts` times.

    Waits (without counting attempts) while the Rasa server accepts no connection; raises
    `ForwardRefused` when it answers 403/404/503 (the channel is off or misconfigured: every
    update would fail, so polling stops and Telegram keeps them)."""
    retry = retry or get_settings().service.telegram_poll.forward
    attempts = 0
    unreachable = 0
    while True:
        try:
            answer = await http.post(url, json=update.to_dict(), headers={SECRET_HEADER: secret})
        except httpx.ConnectError as error:
            unreachable += 1
            wait = retry.wait_before(unreachable + 1)
            logger.warning(
                "Rasa server not reachable at %s (%s); update %s waits %.0f s",
                url,
                type(error).__name__,
                update.update_id,
                wait,
            )
            await sleep(wait)
            continue
        except httpx.TransportError as error:  # timeouts, dropped connections
            attempts += 1
            failure = type(error).__name__
        else:
            if answer.status_code == 200:
                return Forwarded(True, attempts + 1)
            if answer.status_code in (403, 404, 503):
                raise ForwardRefused(
                    f"{url} answered {answer.status_code}: is the Rasa server running with the "
                    "same TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET?"
                )
            attempts += 1
            failure = f"HTTP {answer.status_code}"
            if _refused(answer.status_code):
                return Forwarded(False, attempts, failure)
        unreachable = 0
        if attempts >= retry.max_attempts:
            return Forwarded(False, attempts, failure)
        wait = retry.wait_before(attempts + 1)
        logger.warning(
            "forwarding update %s failed (%s), attempt %d of %d; retrying in %.0f s",
            update.update_id,
            failure,
            attempts,
            retry.max_attempts,
            wait,
        )
        await sleep(wait)


async def _dead_letter(update: Update, outcome: Forwarded) -> None:
    """Record an update given up (its payload in the database, never in the log)."""
    try:
        await asyncio.to_thread(
            dead_letters.record,
            DEAD_LETTER_SOURCE,
            update.update_id,
            attempts=outcome.attempts,
            error=outcome.error,
            payload=update.to_dict(),
        )
    except Exception:
        # Not acknowledged: Telegram gives the update again when polling restarts.
        logger.exception("could not record update %s as a dead letter", update.update_id)
        raise
    logger.error(
        "update %s given up after %d attempt(s) (%s); recorded as a dead letter, polling goes on",
        update.update_id,
        outcome.attempts,
        outcome.error,
    )


async def poll(
    settings: TelegramSettings,
    webhook_url: str,
    *,
    timeout: int = POLL_TIMEOUT_S,
    max_rounds: Optional[int] = None,
    retry: Optional[ForwardRetryConfig] = None,
) -> int:
    """Poll Telegram and forward updates until stopped (or after `max_rounds` getUpdates
    calls); returns the number of updates delivered (dead letters not counted)."""
    quiet_http_log()
    retry = retry or get_settings().service.telegram_poll.forward
    forwarded = 0
    offset: Optional[int] = None
    async with (
        Bot(settings.token, base_url=settings.api_base_url) as bot,
        httpx.AsyncClient(timeout=120) as http,
    ):
        await bot.delete_webhook()  # Telegram refuses getUpdates while a webhook is set
        logger.info("polling Telegram as @%s; forwarding to %s", bot.username, webhook_url)
        rounds = 0
        while max_rounds is None or rounds < max_rounds:
            rounds += 1
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=timeout, allowed_updates=list(ALLOWED_UPDATES)
                )
            except NetworkError as error:  # includes timeouts; RetryAfter etc. are not retried
                logger.warning("getUpdates failed (%s); retrying", error)
                await sleep(RETRY_DELAY_S)
                continue
            for update in updates:
                outcome = await forward(http, webhook_url, settings.webhook_secret, update, retry)
                if outcome.delivered:
                    forwarded += 1
                else:
                    await _dead_letter(update, outcome)
                offset = update.update_id + 1
    return forwarded


async def set_webhook(settings: TelegramSettings, url: str) -> None:
    """Register `url` as the bot's webhook, with the secret token Telegram will send."""
    quiet_http_log()
    async with Bot(settings.token, base_url=settings.api_base_url) as bot:
        await bot.set_webhook(
            url, secret_token=settings.webhook_secret, allowed_updates=list(ALLOWED_UPDATES)
        )
