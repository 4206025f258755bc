"""Telegram channel: customers chat with the assistant in Telegram, on python-telegram-bot.

Inbound (webhook mode): Telegram POSTs each update to
`/webhooks/telegram/webhook` on the Rasa server. The channel checks the
`X-Telegram-Bot-Api-Secret-Token` header, drops updates it has already seen (Telegram
re-sends when an answer is slow), and hands the customer's words to Rasa under the sender
id `tg-<chat_id>`:
* a text message as it is;
* a pressed inline button as its payload (the button is acknowledged to Telegram);
* a shared contact (the 「分享手机号」 button) as the phone number's digits;
* a photo (its largest size, fetched with getFile) or an image sent as a file, stored first
  and passed as `/send_photo` (its caption first, as a message of its own); a location (or a
  venue) as `/share_location`
  (bot/plugins/channels/media.py). A refused file or place gets its polite line here.

Outbound: replies, agent replies and notifications (Rasa's `output_channel=telegram` or
`latest`) go out through `TelegramOutput`: buttons become an inline keyboard, the phone
question carries a 「分享手机号」 keyboard that asks Telegram for the customer's contact, and
texts longer than Telegram's 4096 characters are split on line boundaries. Sending goes
through python-telegram-bot's `AIORateLimiter`, which keeps within Telegram's flood limits
and retries once Telegram says "retry after N s".

Machines without a public HTTPS address use long polling instead
(`python -m bot telegram poll`, bot/plugins/channels/telegram_poll.py), which forwards every update
to the same webhook, so one code path handles both.

Configuration (environment, see .env.example): TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET,
TELEGRAM_API_BASE_URL. Without the token or the secret the channel is off — one log line,
its webhook answers 503 — and the rest of the assistant runs as usual.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import (
    Any,
    AsyncContextManager,
    Awaitable,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Text,
)

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import InlineKeyboardButtonLimit, MessageLimit
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, ExtBot

from bot.core import metrics
from bot.core.catalog import load_catalog
from bot.core.media.images import ImageRefused
from bot.core.normalize import InvalidValue, digits_of, parse_phone
from bot.core.settings import Settings, get_settings
from bot.core.stores import await_claim, holding_claim
from bot.plugins.channels.media import MediaTurn, media_turn_for_location, media_turn_for_photo
from bot.plugins.channels.rest import take_turn, too_long, too_long_text

logger = logging.getLogger(__name__)

CHANNEL_NAME = "telegram"
SENDER_PREFIX = "tg-"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")
SEEN_UPDATES_TTL_S = 24 * 3600  # Telegram keeps an unconfirmed update for 24 hours
MAX_BODY_BYTES = 256 * 1024
SEND_RETRIES = 3  # after a "429 retry after N s" from Telegram


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class TelegramSettings:
    """Bot token, webhook secret and Bot API address of the channel."""

    token: str
    webhook_secret: str
    api_base_url: str

    @classmethod
    def from_settings(
        cls, settings: Optional[Settings] = None, overrides: Optional[Mapping[str, Any]] = None
    ) -> "TelegramSettings":
        """TELEGRAM_* of the settings; `overrides` (credentials.yml keys) win when set."""
        settings = settings or get_settings()
        given = {
            k: str(v).strip()
            for k, v in (overrides or {}).items()
            if v and not str(v).strip().startswith("${")
        }
        return cls(
            token=given.get("token") or settings.telegram_bot_token,
            webhook_secret=given.get("webhook_secret") or settings.telegram_webhook_secret,
            api_base_url=given.get("api_base_url") or settings.telegram_api_base_url,
        )

    @property
    def missing(self) -> List[str]:
        """Names of the variables the channel still needs to be on, the token first."""
        needed = {"TELEGRAM_BOT_TOKEN": self.token, "TELEGRAM_WEBHOOK_SECRET": self.webhook_secret}
        return [name for name, value in needed.items() if not value]


def quiet_http_log() -> None:
    """httpx logs every request URL at INFO, and Bot API URLs contain the bot token."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


def file_base_url(api_base_url: str) -> str:
    """Where the Bot API serves files: https://api.telegram.org/bot → …/file/bot."""
    base = api_base_url.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("bot")] + "file/bot"
    return base + "/file/bot"


def make_bot(settings: TelegramSettings) -> ExtBot:
    """A Bot API client that keeps within Telegram's flood limits and retries after a 429."""
    quiet_http_log()
    return ExtBot(
        settings.token,
        base_url=settings.api_base_url,
        base_file_url=file_base_url(settings.api_base_url),
        rate_limiter=AIORateLimiter(max_retries=SEND_RETRIES),
    )


# --------------------------------------------------------------------------- small pieces


def sender_id_of(chat_id: int) -> str:
    """Rasa sender id of a Telegram chat."""
    return f"{SENDER_PREFIX}{chat_id}"


def chat_id_of(sender_id: str) -> int:
    """Telegram chat id of a Rasa sender id `tg-<chat_id>`."""
    if not sender_id.startswith(SENDER_PREFIX):
        raise ValueError(f"not a Telegram conversation: {sender_id!r}")
    return int(sender_id[len(SENDER_PREFIX) :])


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> List[str]:
    """Split `text` into messages of at most `limit` characters, on line boundaries where
    possible (a single longer line is cut)."""
    chunks: List[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        for start in range(0, len(line), limit):
            piece = line[start : start + limit]
            if len(current) + len(piece) > limit:
                chunks.append(current)
                current = ""
            current += piece
    chunks.append(current)
    return [chunk.rstrip("\n") for chunk in chunks if chunk.strip()]


def inline_keyboard(buttons: Sequence[Mapping[str, Any]]) -> InlineKeyboardMarkup:
    """Rasa buttons as an inline keyboard, one button per row.

    Telegram allows 64 bytes of callback data; a longer payload sends the button's title,
    which the assistant understands as if typed."""
    rows = []
    for button in buttons:
        title = str(button.get("title", ""))
        payload = str(button.get("payload") or title)
        if len(payload.encode("utf-8")) > InlineKeyboardButtonLimit.MAX_CALLBACK_DATA:
            payload = title
        rows.append([InlineKeyboardButton(title, callback_data=payload)])
    return InlineKeyboardMarkup(rows)


def phone_keyboard(label: str) -> ReplyKeyboardMarkup:
    """A one-button keyboard that asks Telegram to share the customer's phone number."""
    return ReplyKeyboardMarkup(
        [[KeyboardButton(label, request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def contact_text(phone_number: str) -> str:
    """What a shared contact says to the assistant: the phone number's digits."""
    try:
        return parse_phone(phone_number)
    except InvalidValue:  # a foreign number: the form's validator explains what it needs
        return digits_of(phone_number)


def user_text(update: Update) -> Optional[str]:
    """The customer's words in an update, or None for updates the assistant ignores."""
    if update.callback_query is not None:
        return update.callback_query.data
    message = update.message
    if message is None:
        return None
    if message.contact is not None:
        return contact_text(message.contact.phone_number)
    return message.text


class SeenUpdates:
    """Update ids being handled and handled, in the shared store (a retry that reaches another
    Rasa server finds them too): at least once, never twice at the same time.

    An arriving update is claimed "busy" for `in_progress_s`, refreshed while its turn runs,
    and "done" for `ttl_s` once the turn is taken. A re-delivery of a done update is dropped; one
    of a busy update waits (up to `wait_s`) for that turn to end and is then dropped too, or is
    told to come back later (503) if it has not ended. A server killed in mid-turn stops
    refreshing its claim; once it runs out, the waiting re-delivery is handled. It used to be
    dropped as already seen, and the customer's words were lost with the killed turn."""

    def __init__(
        self, in_progress_s: float = 20, wait_s: float = 20, ttl_s: float = SEEN_UPDATES_TTL_S
    ) -> None:
        self.in_progress_s = in_progress_s
        self.wait_s = wait_s  # how long a re-delivery waits for a turn under way to end
        self.ttl_s = ttl_s

    async def begin(self, update_id: int) -> Optional[str]:
        """Claim `update_id`: None when it is this call's to handle; "done" when it was handled
        (waiting up to `wait_s` for a turn under way elsewhere to end); "busy" when that turn
        is still running after the wait."""
        return await await_claim(f"tg-update:{update_id}", self.in_progress_s, self.wait_s)

    def holding(self, update_id: int) -> AsyncContextManager[None]:
        """Hold the claim while the turn runs; "done" afterwards, whatever happened (a failure
        that sending the update again would not mend)."""
        return holding_claim(f"tg-update:{update_id}", self.in_progress_s, self.ttl_s)


# --------------------------------------------------------------------------- outbound


class TelegramOutput(CollectingOutputChannel):
    """Sends Rasa's messages to a Telegram chat as they are produced.

    It also keeps the list of what it sent (a `CollectingOutputChannel`), so the REST
    channel's never-silent rule (bot/plugins/channels/rest.py) applies unchanged. Messages are
    not held back until the turn is saved: measured in the soak, a turn cut short after its
    save (nginx's timeout under load) then never told the customer their ticket number."""

    def __init__(self, bot: ExtBot) -> None:
        super().__init__()
        self.bot = bot
        catalog = load_catalog()
        phone = catalog.fields["phone"]
        joint = tuple(j.ask for j in catalog.ask_together if "phone" in j.fields)
        self.phone_prompts = (phone.ask, phone.reask, *joint)  # these get the 分享手机号 button
        self.share_phone_label = catalog.system_messages["share_phone_button"]

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        # One Telegram message per Rasa message: no splitting on blank lines.
        await self._persist_message(self._message(recipient_id, text=text))

    async def _persist_message(self, message: Dict[Text, Any]) -> None:
        await self._deliver(message)
        self.messages.append(message)

    def _markup(self, text: str, buttons: Optional[Sequence[Mapping[str, Any]]]) -> Any:
        if buttons:
            return inline_keyboard(buttons)
        if any(prompt in text for prompt in self.phone_prompts):
            return phone_keyboard(self.share_phone_label)
        return ReplyKeyboardRemove()  # the phone keyboard stays up when the number was typed

    async def _deliver(self, message: Mapping[str, Any]) -> None:
        chat_id = chat_id_of(message["recipient_id"])
        custom = message.get("custom")
        text = message.get("text") or (custom.get("text") if isinstance(custom, dict) else None)
        if message.get("attachment"):
            text = f"{text}\n{message['attachment']}" if text else str(message["attachment"])
        if text and str(text).strip():
            chunks = split_text(str(text))
            for chunk in chunks[:-1]:
                await self.bot.send_message(chat_id, chunk)
            await self.bot.send_message(
                chat_id, chunks[-1], reply_markup=self._markup(str(text), message.get("buttons"))
            )
        if message.get("image"):
            await self.bot.send_photo(chat_id, message["image"])
        if not text and not message.get("image"):
            logger.warning(
                "nothing Telegram can show in a message to %s: %s",
                message["recipient_id"],
                sorted(message),
            )


# --------------------------------------------------------------------------- inbound


class TelegramInput(InputChannel):
    """Rasa input channel for Telegram's webhook (and the long-polling runner)."""

    def __init__(self, settings: TelegramSettings) -> None:
        self.settings = settings
        webhook = get_settings().service.telegram_webhook
        self.seen = SeenUpdates(webhook.in_progress_seconds, webhook.wait_seconds)
        self._turns: Set["asyncio.Future[str]"] = set()  # turns whose caller went away
        self.bot: Optional[ExtBot] = None
        if settings.missing:
            logger.info("Telegram channel off: %s not set", settings.missing[0])
        else:
            self.bot = make_bot(settings)
            logger.info("Telegram channel on (Bot API %s)", settings.api_base_url)

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "TelegramInput":
        return cls(TelegramSettings.from_settings(overrides=credentials))

    @property
    def enabled(self) -> bool:
        return self.bot is not None

    def get_output_channel(self) -> Optional[TelegramOutput]:
        return TelegramOutput(self.bot) if self.bot is not None else None

    def secret_matches(self, header_value: Optional[str]) -> bool:
        """Constant-time comparison of the secret-token header with ours."""
        expected = self.settings.webhook_secret.encode("utf-8")
        return bool(expected) and secrets.compare_digest(
            (header_value or "").encode("utf-8"), expected
        )

    async def _say(self, chat_id: int, text: str) -> None:
        """Send the channel's own line (a refusal, a notice); a failure is logged, not raised."""
        try:
            await self.bot.send_message(chat_id, text)  # type: ignore[union-attr]
        except TelegramError:
            logger.exception("could not answer Telegram chat %s", chat_id)

    async def _media_turn(self, update: Update, chat_id: int) -> Optional[MediaTurn]:
        """A photo (or an image sent as a file) or a location, as the dialogue's message;
        None when the update has neither. A refused file or place is answered here."""
        message = update.message
        if message is None:
            return None
        if message.location is not None:
            label = message.venue.address if message.venue is not None else None
            location = message.location
            return await media_turn_for_location(
                location.latitude, location.longitude, label, lambda t: self._say(chat_id, t)
            )
        photo = max(message.photo, key=lambda p: p.width * p.height) if message.photo else None
        document = message.document
        if photo is None and not (document and (document.mime_type or "").startswith("image/")):
            return None
        size = (photo.file_size if photo else document.file_size) or 0  # type: ignore[union-attr]
        file_id = photo.file_id if photo else document.file_id  # type: ignore[union-attr]

        async def download() -> bytes:
            if size > get_settings().service.media.max_bytes:
                raise ImageRefused("too_large")  # not fetched at all
            telegram_file = await self.bot.get_file(file_id)  # type: ignore[union-attr]
            return bytes(await telegram_file.download_as_bytearray())

        return await media_turn_for_photo(
            sender_id_of(chat_id), CHANNEL_NAME, download, lambda t: self._say(chat_id, t)
        )

    async def handle_update(
        self, update: Update, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> str:
        """Pass one new update to Rasa: "ok"; "unsupported" when the customer sent something
        without words (a photo, sticker, voice…), which gets a polite line; "ignored" for
        updates that are not a customer's message."""
        assert self.bot is not None
        if update.callback_query is not None:
            try:
                await self.bot.answer_callback_query(update.callback_query.id)
            except TelegramError:
                logger.warning("could not acknowledge a button press", exc_info=True)
        text = user_text(update)
        chat = update.effective_chat
        if chat is None:
            return "ignored"
        if chat.type != "private":
            # A group shares one chat id: its members must not share one conversation.
            if update.message is not None and text:
                await self._say(chat.id, load_catalog().system_messages["telegram_private_only"])
            return "group_ignored"
        media: Optional[MediaTurn] = None
        if not text and update.message is not None:
            media = await self._media_turn(update, chat.id)
            if media is not None and media.refused:
                return "refused"
            if media is not None:
                text = media.text
        if not text:
            if update.message is None:
                return "ignored"
            await self._say(chat.id, load_catalog().system_messages["telegram_unsupported"])
            return "unsupported"
        if too_long(text):
            await self._say(chat.id, too_long_text())
            return "too_long"
        turns = [(text, str(update.update_id), media.metadata if media else {})]
        caption = (update.message.caption or "").strip() if update.message else ""
        if media is not None and caption and not too_long(caption):
            # 「电表箱冒烟了」 under the photo: the words first, so the photo joins that request
            turns.insert(0, (caption, f"{update.update_id}-caption", {}))
        for words, message_id, extra in turns:
            message = UserMessage(
                words,
                TelegramOutput(self.bot),
                sender_id_of(chat.id),
                input_channel=self.name(),
                message_id=message_id,
                metadata={"telegram_update_id": update.update_id, **extra},
            )
            with metrics.measured_turn(CHANNEL_NAME):
                try:
                    await take_turn(message, on_new_message, CHANNEL_NAME)
                except TelegramError:
                    logger.exception("could not answer Telegram update %s", update.update_id)
        return "ok"

    async def _claimed_turn(
        self, update: Update, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> str:
        """The turn of a claimed update, the claim held until it has ended."""
        async with self.seen.holding(update.update_id):
            return await self.handle_update(update, on_new_message)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        telegram_webhook = Blueprint("telegram_webhook", __name__)

        @telegram_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if self.enabled else "off"})

        @telegram_webhook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            if self.bot is None:
                return response.json({"error": "telegram channel off"}, status=503)
            if not self.secret_matches(request.headers.get(SECRET_HEADER)):
                logger.warning("Telegram webhook call with a wrong secret token rejected")
                return response.json({"error": "wrong secret token"}, status=403)
            if len(request.body or b"") > MAX_BODY_BYTES:
                return response.json({"error": "body too large"}, status=413)
            try:
                update = Update.de_json(request.json, self.bot)
            except Exception:
                update = None
            if update is None:
                return response.json({"error": "not a Telegram update"}, status=400)
            state = await self.seen.begin(update.update_id)
            if state == "busy":  # still on its way on this or another server: ask again later
                logger.info("Telegram update %s is being handled; retry later", update.update_id)
                return response.json(
                    {"status": "in progress"}, status=503, headers={"Retry-After": "5"}
                )
            if state is not None:
                logger.info("Telegram update %s already handled; ignored", update.update_id)
                return response.json({"status": "duplicate"})
            # Sanic cancels a handler whose client went away (nginx gives up after 30 s under
            # load). A turn cut there had already sent the customer its replies but saved
            # nothing, and its claim said "done", so Telegram's retry was dropped: the customer
            # answered a question the conversation had never asked (the soak's lost phone
            # turn). The claimed turn therefore runs to its end in its own task.
            turn = asyncio.ensure_future(self._claimed_turn(update, on_new_message))
            self._turns.add(turn)
            turn.add_done_callback(self._turns.discard)
            status = await asyncio.shield(turn)
            return response.json({"status": status})

        return telegram_webhook
