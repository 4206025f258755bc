"""Long polling for Telegram, for a machine without a public HTTPS address (behind NAT).

    python -m bot telegram poll          (with `make run` running in another terminal)

Asks Telegram for new updates (getUpdates) and forwards each one, with the webhook secret,
to the Telegram channel's webhook on the local Rasa server — the same code path as webhook
mode, so replies, buttons and duplicate handling are identical. An update is acknowledged to
Telegram (the next offset) only after Rasa accepted it, so none is lost while Rasa restarts.

    python -m bot telegram set-webhook https://intake.example.cn/webhooks/telegram/webhook

registers the public webhook (with the secret) instead; polling stops working while one is set.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Optional

import httpx
from telegram import Bot, Update
from telegram.error import NetworkError

from bot.plugins.channels.telegram import (
    ALLOWED_UPDATES,
    SECRET_HEADER,
    TelegramSettings,
    quiet_http_log,
)

logger = logging.getLogger(__name__)

POLL_TIMEOUT_S = 30
RETRY_DELAY_S = 2.0
WEBHOOK_PATH = "/webhooks/telegram/webhook"


class ForwardRefused(RuntimeError):
    """The Rasa server will not take updates (channel off or secrets differ)."""


async def forward(http: httpx.AsyncClient, url: str, secret: str, update: Update) -> None:
    """POST one update to the webhook; wait and retry while the Rasa server is not up."""
    while True:
        try:
            answer = await http.post(url, json=update.to_dict(), headers={SECRET_HEADER: secret})
        except httpx.TransportError as error:
            logger.warning("Rasa server not reachable at %s (%s); retrying", url, error)
        else:
            if answer.status_code == 200:
                return
            if answer.status_code in (403, 404, 503):
                raise ForwardRefused(
                    f"{url} answered {answer.status_code}: is the Rasa server running with the "
                    "same TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET?"
                )
            logger.warning(
                "webhook answered %s for update %s; retrying", answer.status_code, update.update_id
            )
        await asyncio.sleep(RETRY_DELAY_S)


async def poll(
    settings: TelegramSettings,
    webhook_url: str,
    *,
    timeout: int = POLL_TIMEOUT_S,
    max_rounds: Optional[int] = None,
) -> int:
    """Poll Telegram and forward updates until stopped (or after `max_rounds` getUpdates
    calls); returns the number of updates forwarded."""
    quiet_http_log()
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
                await asyncio.sleep(RETRY_DELAY_S)
                continue
            for update in updates:
                await forward(http, webhook_url, settings.webhook_secret, update)
                offset = update.update_id + 1
                forwarded += 1
    return forwarded


async def set_webhook(settings: TelegramSettings, url: str) -> None:
    """Register `url` as the bot's webhook, with the secret token Telegram will send."""
    quiet_http_log()
    async with Bot(settings.token, base_url=settings.api_base_url) as bot:
        await bot.set_webhook(
            url, secret_token=settings.webhook_secret, allowed_updates=list(ALLOWED_UPDATES)
        )
