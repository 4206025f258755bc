"""What the channels do with a photo or a location before the dialogue sees it.

Each channel fetches the bytes its own way (Telegram's getFile, WeChat's temporary media);
here they are checked and stored (bot/core/media), and the turn for Rasa is made:
`/send_photo` with the attachment's id in the metadata, `/share_location` with the
coordinates and the label. A file or place we do not accept gets its polite line at once
and never reaches the dialogue; nothing of it is stored.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, Optional

from bot.core.location import InvalidLocation, locate, location_refusal
from bot.core.media.images import ImageRefused
from bot.core.media.service import photo_refusal, receive_photo

logger = logging.getLogger(__name__)

PHOTO_TEXT = "/send_photo"
LOCATION_TEXT = "/share_location"

Say = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class MediaTurn:
    """The message for Rasa (`text`, `metadata`), or `refused` when the customer was told why
    not."""

    text: str = ""
    metadata: Dict[str, Any] = field(default_factory=dict)
    refused: bool = False


async def media_turn_for_photo(
    conversation_id: str, channel: str, download: Callable[[], Awaitable[bytes]], say: Say
) -> MediaTurn:
    """Fetch (`download`), check and store a photo; the turn that tells the dialogue."""
    try:
        raw = await download()
        attachment_id = await asyncio.to_thread(receive_photo, conversation_id, channel, raw)
    except ImageRefused as refused:
        logger.info("photo refused in %s: %s", channel, refused.reason)
        await say(photo_refusal(refused.reason))
        return MediaTurn(refused=True)
    except Exception:
        logger.exception("a photo sent in %s could not be fetched or stored", channel)
        await say(photo_refusal("failed"))
        return MediaTurn(refused=True)
    return MediaTurn(PHOTO_TEXT, {"attachment_id": attachment_id})


async def media_turn_for_location(
    lat: object, lon: object, label: Optional[str], say: Say
) -> MediaTurn:
    """Check a shared location; the turn that tells the dialogue."""
    try:
        locate(lat, lon, label)
    except InvalidLocation as refused:
        await say(location_refusal(refused.reason))
        return MediaTurn(refused=True)
    return MediaTurn(LOCATION_TEXT, {"location": {"lat": lat, "lon": lon, "label": label}})
