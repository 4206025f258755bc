"""Customer channels: Rasa input channels and the outbound side used by agents and notices."""

import os
from typing import Any, Optional


def channel_setting(name: str, override: Any = None) -> str:
    """A channel setting: `override` (a credentials.yml value) or the environment variable
    `name`; unset, blank and an unexpanded `${…}` placeholder all read as ""."""
    value = str(override or os.environ.get(name) or "").strip()
    return "" if value.startswith("${") else value


def push_problem(channel: str) -> Optional[str]:
    """Why a message cannot be pushed to a customer of `channel` with this machine's settings.

    None when it can. Telegram and WeChat need their credentials (without them Rasa would
    quietly keep the message in the transcript only); the web chat page reads the transcript
    itself, so anything else is always deliverable."""
    if channel == "telegram":
        from bot.channels.telegram import TelegramSettings

        missing = TelegramSettings.from_env().missing
        return f"Telegram channel off: {missing[0]} not set" if missing else None
    if channel == "wechat":
        from bot.channels.wechat import WeChatSettings

        wechat = WeChatSettings.from_env()
        if not (wechat.token and wechat.has_api):
            return "WeChat customer-service API off: WECHAT_TOKEN/WECHAT_APP_ID/WECHAT_APP_SECRET not set"
    return None
