"""WeChat Official Account (公众号) channel: `GET|POST /webhooks/wechat/webhook`.

Registered in credentials.yml; configured only from the environment (.env.example):
WECHAT_TOKEN (required, else the channel is off and answers 503), WECHAT_ENCODING_AES_KEY
(safe mode), WECHAT_APP_ID + WECHAT_APP_SECRET (the customer-service API for answers that
take longer than WeChat's 5 s), WECHAT_API_BASE_URL, INTAKE_REDIS_URL (the access token and the shared stores),
WECHAT_REPLY_BUDGET_S.

One message, in order: signature check (403) → XML parsed with defusedxml, any DTD refused
(400) → AES decryption in safe mode (wechatpy) → dedup by MsgId (`TurnStore`) → Rasa with a
collecting output channel → passive reply if ready within the budget, else "success" now
and the answer later through the customer-service API (wechatpy's client, which caches and
refreshes the access token). Text and voice (WeChat's own speech recognition) go to Rasa as
sender `wx-<openid>`; subscribing gets the catalog's welcome text and a numbered menu.
An image message is fetched through the temporary-media API (`MediaId`; `PicUrl` when that
fails or there is no AppSecret), checked and stored, and goes to Rasa as `/send_photo`; a
location message as `/share_location` with its `Label` (bot/plugins/channels/media.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Text
from xml.etree.ElementTree import ParseError

import requests
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml_defused
from rasa.core.channels.channel import (
    CollectingOutputChannel,
    InputChannel,
    OutputChannel,
    UserMessage,
)
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from wechatpy import WeChatClient, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException
from wechatpy.messages import ImageMessage, LocationMessage, TextMessage, VoiceMessage
from wechatpy.replies import create_reply

from bot.core import metrics
from bot.core.catalog import load_catalog
from bot.core.media.images import ImageRefused
from bot.core.settings import Settings, get_settings
from bot.core.stores import shared_store
from bot.plugins.channels.media import media_turn_for_location, media_turn_for_photo
from bot.plugins.channels.rest import take_turn, too_long, too_long_text
from bot.plugins.channels.wechat_turns import (
    MessageClaims,
    NumberedMenus,
    Replies,
    TurnStore,
    render_replies,
)

logger = logging.getLogger(__name__)

SENDER_PREFIX = "wx-"
MAX_BODY_BYTES = 64 * 1024  # WeChat's messages are a few hundred bytes
MAX_CLOCK_SKEW_S = 300  # pushes signed more than 5 minutes away from now are refused
API_TIMEOUT_S = 10  # every call to WeChat's API, the access-token fetch included
# errcodes that mean "fetch a new access token": invalid credential, invalid / expired token
TOKEN_ERRCODES = (40001, 40014, 42001)
TOKEN_REFRESHES_PER_CALL = 1
SUBSCRIBE_EVENTS = ("subscribe", "subscribe_scan")
# A reply the channel itself says instead of a turn (a refused photo or location): the
# dialogue did not move, so the numbered choices last shown still stand.
KEEPS_MENU = "keeps_menu"


@dataclass(frozen=True)
class WeChatSettings:
    token: str = ""
    app_id: str = ""
    app_secret: str = ""
    encoding_aes_key: str = ""
    api_base_url: str = ""
    redis_url: str = ""
    reply_budget_s: float = 4.5  # WeChat gives up after 5 s

    @classmethod
    def from_settings(cls, settings: Optional[Settings] = None) -> "WeChatSettings":
        settings = settings or get_settings()
        return cls(
            token=settings.wechat_token,
            app_id=settings.wechat_app_id,
            app_secret=settings.wechat_app_secret,
            encoding_aes_key=settings.wechat_encoding_aes_key,
            api_base_url=settings.wechat_api_base_url.rstrip("/") + "/",
            redis_url=settings.redis_url,
            reply_budget_s=settings.wechat_reply_budget_s,
        )

    @property
    def has_api(self) -> bool:
        return bool(self.app_id and self.app_secret)


def _sha1(*parts: str) -> str:
    """WeChat's signature: sha1 of the sorted parts, hex."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def sender_id(openid: str) -> str:
    return f"{SENDER_PREFIX}{openid}"


def openid_of(sender: str) -> str:
    return sender[len(SENDER_PREFIX) :] if sender.startswith(SENDER_PREFIX) else sender


class RejectedRequest(Exception):
    """A request that is not (valid) WeChat traffic; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def parse_xml_safely(body: bytes) -> Dict[str, str]:
    """The top-level fields of a WeChat XML document; no DTD, hence no entity expansion."""
    if len(body) > MAX_BODY_BYTES:
        raise RejectedRequest(400, "body too large")
    try:
        root = parse_xml_defused(body, forbid_dtd=True)
    except (DefusedXmlException, ParseError) as error:
        raise RejectedRequest(400, f"unsafe or malformed XML ({type(error).__name__})") from error
    return {child.tag: child.text or "" for child in root}


class WeChatClientAt(WeChatClient):
    """wechatpy's client against a configurable API base URL (a fake on 127.0.0.1 in tests).

    wechatpy 1.8 sends API calls to `API_BASE_URL` but hard-codes the token URL; here both
    follow the settings. The access token is cached in the session storage (memory, or Redis
    when INTAKE_REDIS_URL is set) and refreshed by wechatpy before it expires.

    Retries are bounded: wechatpy's own `auto_retry` fetches a new token and repeats the call
    each time WeChat answers "invalid/expired token", without limit (it ends in a
    RecursionError after some 500 calls when WeChat keeps saying so). Here a call gets one new
    token and one more try, then fails; and the token fetch, which wechatpy sends without a
    timeout, gets `API_TIMEOUT_S` like every other call.
    """

    def __init__(self, settings: WeChatSettings):
        session = None
        if settings.redis_url:
            import redis
            from wechatpy.session.redisstorage import RedisStorage

            session = RedisStorage(redis.Redis.from_url(settings.redis_url), prefix="wechatpy")
        super().__init__(
            settings.app_id,
            settings.app_secret,
            session=session,
            timeout=API_TIMEOUT_S,
            auto_retry=False,
        )
        self.API_BASE_URL = settings.api_base_url
        self._http = _SessionWithTimeout(API_TIMEOUT_S)

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        for refreshes in range(TOKEN_REFRESHES_PER_CALL + 1):
            call = dict(kwargs)  # wechatpy writes the token into params and encodes data
            if isinstance(call.get("params"), dict):
                call["params"] = dict(call["params"])
            try:
                return super()._request(method, url_or_endpoint, **call)
            except WeChatClientException as error:
                if error.errcode not in TOKEN_ERRCODES or refreshes == TOKEN_REFRESHES_PER_CALL:
                    raise
                logger.info(
                    "WeChat refused the access token (%s); fetching a new one", error.errcode
                )
                self.fetch_access_token()
        raise AssertionError("unreachable")

    def fetch_access_token(self) -> Dict[str, Any]:
        return self._fetch_access_token(
            url=f"{self.API_BASE_URL}token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


class _SessionWithTimeout(requests.Session):
    """A requests session whose calls time out unless told otherwise."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().request(*args, **kwargs)


class WeChatOutput(OutputChannel):
    """Sends to a WeChat customer through the customer-service message API."""

    def __init__(self, client: Optional[WeChatClient], menus: NumberedMenus):
        self.client = client
        self.menus = menus

    @classmethod
    def name(cls) -> Text:
        return "wechat"

    async def send_replies(self, recipient_id: str, replies: Replies) -> None:
        """Rasa's replies as one text with numbered choices (remembered for the customer)."""
        openid = openid_of(recipient_id)
        text, choices = render_replies(replies, texts()["wechat_choice_line"])
        if not keeps_menu(replies):
            self.menus.remember(openid, choices)
        if self.client is None:
            logger.warning(
                "answer to %s not delivered: WECHAT_APP_ID/WECHAT_APP_SECRET not set", recipient_id
            )
            return
        await asyncio.to_thread(self.client.message.send_text, openid, text)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_replies(recipient_id, [{"text": text}])

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: list, **kwargs: Any
    ) -> None:
        await self.send_replies(recipient_id, [{"text": text, "buttons": buttons}])


def texts() -> Mapping[str, str]:
    return load_catalog().system_messages


def keeps_menu(replies: Replies) -> bool:
    """True for the channel's own lines (`KEEPS_MENU`), which leave the customer's numbered
    choices as they were."""
    return bool(replies) and all(reply.get(KEEPS_MENU) for reply in replies)


def welcome_replies() -> Replies:
    """The welcome text with the catalog's services as numbered choices."""
    buttons = [{"title": s.name, "payload": f"/{s.intent}"} for s in load_catalog().requestable]
    return [{"text": texts()["wechat_welcome"], "buttons": buttons}]


@dataclass
class WebhookAnswer:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


SUCCESS = WebhookAnswer(200, "success")  # WeChat's "received, nothing to reply"


class WeChatEndpoint:
    """The webhook's logic, independent of the web framework (tested directly)."""

    def __init__(
        self,
        settings: WeChatSettings,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        output: WeChatOutput,
    ):
        self.settings = settings
        self.on_new_message = on_new_message
        self.output = output
        self.turns = TurnStore()
        self.claims = MessageClaims()
        self.crypto = (
            WeChatCrypto(settings.token, settings.encoding_aes_key, settings.app_id)
            if settings.encoding_aes_key
            else None
        )

    def _check_signature(self, query: Mapping[str, str]) -> None:
        """WeChat's URL signature, compared in constant time; a timestamp more than
        `MAX_CLOCK_SKEW_S` off is refused (a push signed an hour ago is a replay)."""
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        expected = _sha1(self.settings.token, timestamp, nonce)
        if not secrets.compare_digest(query.get("signature", "").encode(), expected.encode()):
            raise RejectedRequest(403, "bad signature")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_S:
            raise RejectedRequest(403, "stale timestamp")

    def _check_fresh(self, query: Mapping[str, str]) -> None:
        """A (timestamp, nonce) pair is good once: a push replayed within the window is refused."""
        key = f"wx-nonce:{query.get('timestamp', '')}:{query.get('nonce', '')}"
        if not shared_store().first_time(key, 2 * MAX_CLOCK_SKEW_S):
            raise RejectedRequest(403, "replayed nonce")

    def verify(self, query: Mapping[str, str]) -> WebhookAnswer:
        """Server URL verification: echo `echostr` when the signature is right."""
        try:
            self._check_signature(query)
        except RejectedRequest as rejected:
            return WebhookAnswer(rejected.status, "forbidden")
        return WebhookAnswer(200, query.get("echostr", ""))

    async def receive(self, query: Mapping[str, str], body: bytes) -> WebhookAnswer:
        """One push of WeChat: a passive reply, "success", or an error status."""
        try:
            self._check_signature(query)
            outer = parse_xml_safely(body)
            encrypted = query.get("encrypt_type") == "aes"
            if self.crypto is not None and not encrypted:
                # Safe mode: WeChat encrypts every push; a plaintext one is not from WeChat.
                raise RejectedRequest(403, "plaintext push refused in safe mode")
            xml = self._decrypt(query, outer) if encrypted else body
            self._check_fresh(query)
            message = parse_message(xml)
        except RejectedRequest as rejected:
            logger.warning("WeChat request rejected (%s): %s", rejected.status, rejected)
            return WebhookAnswer(rejected.status, "rejected")
        except Exception:
            logger.exception("unreadable WeChat message")
            return WebhookAnswer(400, "rejected")

        process = self._processor(message)
        if process is None:
            return SUCCESS
        key = self._dedup_key(message)
        budget_s = self.settings.reply_budget_s
        if not self.turns.has(key):
            started = time.monotonic()
            mine = await self.claims.acquire(key, budget_s, lambda: self.turns.has(key))
            if not mine and not self.turns.has(key):
                return SUCCESS  # another Rasa server answers (or did)
            budget_s = max(0.0, budget_s - (time.monotonic() - started))
        openid = message.source
        turn, _ = self.turns.start(
            key,
            lambda: self.claims.hold(key, process),
            lambda replies: self._deliver_later(openid, replies),
        )
        replies = await self.turns.wait(turn, budget_s)
        if not replies:
            return SUCCESS
        return self._passive_reply(message, replies, query if encrypted else None)

    def _decrypt(self, query: Mapping[str, str], outer: Mapping[str, str]) -> bytes:
        """The inner XML of a safe-mode message (itself checked to be DTD-free)."""
        if self.crypto is None:
            raise RejectedRequest(400, "encrypted message but WECHAT_ENCODING_AES_KEY is not set")
        expected = _sha1(
            self.settings.token,
            query.get("timestamp", ""),
            query.get("nonce", ""),
            outer.get("Encrypt", ""),
        )
        if not secrets.compare_digest(query.get("msg_signature", "").encode(), expected.encode()):
            raise RejectedRequest(403, "bad msg_signature")  # the body is not the one signed
        try:
            inner = self.crypto.decrypt_message(
                {"Encrypt": outer.get("Encrypt", "")},
                query.get("msg_signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
            )
        except InvalidSignatureException as error:
            raise RejectedRequest(403, "bad msg_signature") from error
        except Exception as error:
            raise RejectedRequest(400, f"cannot decrypt ({type(error).__name__})") from error
        inner_bytes = inner.encode("utf-8") if isinstance(inner, str) else inner
        parse_xml_safely(inner_bytes)
        return inner_bytes

    @staticmethod
    def _dedup_key(message: Any) -> str:
        if message.id:
            return f"msg:{message.id}"
        return f"event:{message.source}:{message.create_time}:{getattr(message, 'event', '')}"

    def _processor(self, message: Any) -> Optional[Callable[[], Awaitable[Replies]]]:
        """What to do with a message (None: nothing to answer, e.g. unsubscribe)."""
        if isinstance(message, TextMessage):
            return lambda: self._converse(message.source, message.content or "", message.id)
        if isinstance(message, VoiceMessage):
            if not (message.recognition or "").strip():
                return lambda: _fixed(
                    [{"text": texts()["wechat_voice_unrecognised"], KEEPS_MENU: True}]
                )
            return lambda: self._converse(message.source, message.recognition, message.id)
        if isinstance(message, ImageMessage):
            return lambda: self._photo(message)
        if isinstance(message, LocationMessage):
            return lambda: self._location(message)
        if message.type == "event":
            if message.event in SUBSCRIBE_EVENTS:
                return lambda: _fixed(welcome_replies())
            return None
        return lambda: _fixed([{"text": texts()["wechat_unsupported"], KEEPS_MENU: True}])

    async def _photo(self, message: ImageMessage) -> Replies:
        """An image message: fetched, checked and stored, then one turn through Rasa."""
        said: Replies = []

        async def say(text: str) -> None:
            said.append({"text": text, KEEPS_MENU: True})

        async def download() -> bytes:
            return await asyncio.to_thread(self._download_image, message)

        media = await media_turn_for_photo(
            sender_id(message.source), WeChatInput.name(), download, say
        )
        if media.refused:
            return said
        return await self._converse(message.source, media.text, message.id, media.metadata)

    async def _location(self, message: LocationMessage) -> Replies:
        """A location message (coordinates and an address label) as one turn through Rasa."""
        said: Replies = []

        async def say(text: str) -> None:
            said.append({"text": text, KEEPS_MENU: True})

        media = await media_turn_for_location(
            message.location_x, message.location_y, message.label, say
        )
        if media.refused:
            return said
        return await self._converse(message.source, media.text, message.id, media.metadata)

    def _download_image(self, message: ImageMessage) -> bytes:
        """The image's bytes: the temporary-media API first, `PicUrl` as the fallback."""
        most = get_settings().service.media.max_bytes
        client = self.output.client
        if client is not None and message.media_id:
            try:
                answer = client.media.download(message.media_id)
                if isinstance(answer, requests.Response) and answer.ok:
                    return _capped(answer.content, most)
            except ImageRefused:
                raise
            except Exception:
                logger.warning("WeChat temporary media not fetched; trying PicUrl", exc_info=True)
        url = message.image or ""
        if not url.startswith(("https://", "http://")):
            raise RuntimeError("no way to fetch this WeChat image")
        with requests.get(url, timeout=API_TIMEOUT_S, stream=True) as answer:
            answer.raise_for_status()
            data = bytearray()
            for chunk in answer.iter_content(64 * 1024):
                data.extend(chunk)
                _capped(data, most)
            return bytes(data)

    async def _converse(
        self,
        openid: str,
        text: str,
        msg_id: Optional[int],
        metadata: Optional[Dict[str, Any]] = None,
    ) -> Replies:
        """One turn through Rasa; never raises, never returns nothing (see rest.py)."""
        if too_long(text):
            return [{"text": too_long_text()}]
        collector = CollectingOutputChannel()
        message = UserMessage(
            self.output.menus.translate(openid, text),
            collector,
            sender_id(openid),
            input_channel=WeChatInput.name(),
            message_id=str(msg_id) if msg_id else None,
            metadata=metadata,
        )
        with metrics.measured_turn(WeChatInput.name()):
            await take_turn(message, self.on_new_message, WeChatInput.name())
        return collector.messages

    def _passive_reply(
        self, message: Any, replies: Replies, encrypt_with: Optional[Mapping[str, str]]
    ) -> WebhookAnswer:
        text, choices = render_replies(replies, texts()["wechat_choice_line"])
        if not keeps_menu(replies):
            self.output.menus.remember(message.source, choices)
        xml = create_reply(text, message=message).render()
        if encrypt_with is not None and self.crypto is not None:
            xml = self.crypto.encrypt_message(
                xml, encrypt_with.get("nonce", ""), encrypt_with.get("timestamp")
            )
        return WebhookAnswer(200, xml, "application/xml; charset=utf-8")

    async def _deliver_later(self, openid: str, replies: Replies) -> None:
        try:
            await self.output.send_replies(sender_id(openid), replies)
        except Exception:
            logger.exception("customer-service message to %s failed", sender_id(openid))


def _capped(data: Any, most: int) -> bytes:
    """`data` when it is within `most` bytes; a photo over the limit is refused."""
    if len(data) > most:
        raise ImageRefused("too_large")
    return bytes(data)


async def _fixed(replies: Replies) -> Replies:
    return replies


class WeChatInput(InputChannel):
    """Rasa input channel of the WeChat Official Account."""

    def __init__(self, settings: WeChatSettings):
        self.settings = settings
        self.menus = NumberedMenus()
        self.client = WeChatClientAt(settings) if settings.token and settings.has_api else None
        if not settings.token:
            logger.info("WeChat channel off: WECHAT_TOKEN not set")
        else:
            logger.info(
                "WeChat channel on (%s mode; customer-service API %s)",
                "safe" if settings.encoding_aes_key else "plain",
                "on" if self.client else "off: WECHAT_APP_ID/WECHAT_APP_SECRET not set",
            )

    @classmethod
    def name(cls) -> Text:
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(WeChatSettings.from_settings())

    def get_output_channel(self) -> Optional[OutputChannel]:
        return WeChatOutput(self.client, self.menus) if self.client else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = Blueprint("wechat_webhook", __name__)
        endpoint = WeChatEndpoint(
            self.settings, on_new_message, WeChatOutput(self.client, self.menus)
        )

        def off() -> HTTPResponse:
            return response.text("WeChat channel off: WECHAT_TOKEN not set", status=503)

        def answer(result: WebhookAnswer) -> HTTPResponse:
            return response.text(
                result.body, status=result.status, content_type=result.content_type
            )

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if self.settings.token else "off"})

        @blueprint.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            if not self.settings.token:
                return off()
            return answer(endpoint.verify(_query(request)))

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self.settings.token:
                return off()
            return answer(await endpoint.receive(_query(request), request.body))

        return blueprint


def _query(request: Request) -> Dict[str, str]:
    return {key: request.args.get(key, "") for key in request.args}
