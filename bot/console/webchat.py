"""The customer web chat: ``GET /chat`` (the page) and its small JSON API under /chat/api.

The page (plain HTML/CSS/JS in ``static/chat/``, no build step, no CDN) talks only to this
router; the router talks to Rasa:

* ``POST /chat/api/messages`` ``{message, id?}`` → Rasa's REST channel
  (``POST {rasa_url}/webhooks/rest/webhook``, vouched for with the web chat's shared secret)
  → the replies ``[{text, buttons}]``.
* ``GET /chat/api/history`` → the conversation from Rasa's tracker
  (``GET {rasa_url}/conversations/{sender}/tracker``) as ``[{from, text, buttons,
  timestamp}]``; customer messages sent from the page also carry the page's ``id``, bot
  messages with an ``agent`` in their metadata (a human agent's) carry it. The page polls it
  to pick up messages written into the tracker later (a human agent's replies). A photo or a
  location the customer sent shows as 「[照片]」 / 「[位置]」 (catalog `system_messages`).
* ``POST /chat/api/photos?id=…`` with the photo itself as the body (``image/*`` or
  ``application/octet-stream``, at most `media.max_bytes`) → checked, cleaned and stored
  (bot/core/media), then ``/send_photo`` with its ``attachment_id`` → the replies.
* ``POST /chat/api/location`` ``{lat, lon, id?}`` → checked (bot/core/location), then
  ``/share_location`` with the ``location`` → the replies.

The conversation id is the browser's: a random ``web-`` id kept in a signed, HttpOnly cookie
(``intake_chat``), so it never appears in a URL and no script reads it. The REST channel
takes ``web-`` senders only with the web chat's secret (header ``X-Intake-Webchat-Secret``),
and records them as channel ``webchat``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from pathlib import Path
from typing import Any, Dict, List, Optional

import requests
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from itsdangerous import BadSignature, TimestampSigner
from starlette.concurrency import run_in_threadpool

from bot.core.catalog import load_catalog
from bot.core.location import InvalidLocation, locate, location_refusal
from bot.core.media.images import ImageRefused
from bot.core.media.service import photo_refusal, receive_photo
from bot.core.net import client_address
from bot.core.rasa_api import WEBCHAT_SECRET_HEADER, RasaClient, RasaError
from bot.core.settings import Settings, get_settings
from bot.core.stores import shared_store

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static" / "chat"
SENDER_RE = re.compile(r"^web-[A-Za-z0-9_-]{16,64}$")
MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ASSET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*\.(?:js|css|svg|png|ico)$")
RASA_TIMEOUT_S = 30
HISTORY_TIMEOUT_S = 10
# The intents the page sends for what is not words (the dialogue's `channel_intents`), and
# how the history shows them.
PHOTO_INTENT, LOCATION_INTENT = "/send_photo", "/share_location"
SHOWN_AS = {PHOTO_INTENT: "webchat_photo_shown", LOCATION_INTENT: "webchat_location_shown"}
PHOTO_TYPE_ANY = "application/octet-stream"  # else the body must be declared image/*
PHOTO_BODY_MARGIN = 64 * 1024  # a body this much over `media.max_bytes` is not read on
PHOTO_RETRY_TTL_S = 3600  # a retried upload (same page id) reuses the photo stored first


def _text(key: str) -> str:
    """What the page shows the customer (catalog `system_messages`)."""
    limits = get_settings().service.limits
    return load_catalog().system_messages[key].format(max_chars=limits.message_max_chars)


# The page may load only its own files and talk only to this origin.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

router = APIRouter()


class RasaUnavailable(Exception):
    """Rasa did not answer, or answered with something we cannot use."""


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=API_HEADERS)


def _valid_sender(sender: Any) -> bool:
    return isinstance(sender, str) and SENDER_RE.fullmatch(sender) is not None


CHAT_COOKIE = "intake_chat"
CHAT_COOKIE_DAYS = 30


def _signer(settings: Settings) -> TimestampSigner:
    return TimestampSigner(settings.console_session_key(), salt="intake-webchat")


def sign_chat_sender(settings: Settings, sender: str) -> str:
    """The cookie value that names conversation `sender`."""
    return _signer(settings).sign(sender).decode()


def read_chat_sender(settings: Settings, cookie: str) -> Optional[str]:
    """The conversation id a cookie value names, or None when it is forged, expired or bad."""
    try:
        sender = _signer(settings).unsign(cookie, max_age=CHAT_COOKIE_DAYS * 86400).decode()
    except BadSignature:
        return None
    return sender if _valid_sender(sender) else None


def chat_sender(request: Request) -> Optional[str]:
    """This browser's conversation id from its signed cookie, or None."""
    return read_chat_sender(_settings(request), request.cookies.get(CHAT_COOKIE, ""))


def with_chat_cookie(request: Request, response: Response, sender: str) -> Response:
    """Give the browser its (new) conversation cookie."""
    settings = _settings(request)
    response.set_cookie(
        CHAT_COOKIE,
        sign_chat_sender(settings, sender),
        max_age=CHAT_COOKIE_DAYS * 86400,
        httponly=True,
        samesite="strict",
        secure=settings.console_https_only,
        path="/chat",
    )
    return response


def new_sender() -> str:
    return "web-" + secrets.token_hex(16)


# ---------------------------------------------------------------- the page and its files


def _asset_version() -> str:
    """A short hash of the page's files: asset URLs change whenever a file changes."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_mtime_ns}:{stat.st_size};".encode())
    return digest.hexdigest()[:12]


@router.get("/chat", response_class=HTMLResponse, include_in_schema=False)
def chat_page(request: Request) -> Response:
    """The chat page (index.html with versioned asset URLs); a first visit gets its cookie."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    page = HTMLResponse(html.replace("{{v}}", _asset_version()), headers=PAGE_HEADERS)
    sender = chat_sender(request)
    return page if sender else with_chat_cookie(request, page, new_sender())


@router.get("/chat/static/{name}", include_in_schema=False)
def chat_asset(name: str, v: Optional[str] = None) -> Response:
    """One file of the page; only plain names inside static/chat/ (no paths)."""
    path = STATIC_DIR / name
    if not ASSET_RE.fullmatch(name) or not path.is_file():
        return Response(status_code=404)
    # A versioned URL never changes content; an unversioned one is revalidated each time.
    cache = "public, max-age=31536000, immutable" if v else "no-cache"
    return FileResponse(path, headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})


# ---------------------------------------------------------------- Rasa


def _buttons(raw: Any) -> List[Dict[str, str]]:
    buttons = []
    for button in raw if isinstance(raw, list) else []:
        if isinstance(button, dict) and button.get("title") is not None:
            title = str(button["title"])
            payload = button.get("payload")
            buttons.append({"title": title, "payload": title if payload is None else str(payload)})
    return buttons


def forward_message(
    settings: Settings,
    sender: str,
    message: str,
    message_id: Optional[str] = None,
    metadata: Optional[Dict[str, Any]] = None,
) -> List[Dict[str, Any]]:
    """Send one customer message through Rasa's REST channel; the bot's replies.

    `message_id` (the page's own id of the message) is stored with the user event as
    metadata ``webchat_id``, so the page recognises its message in the history. `metadata`
    is what else the dialogue gets with it (a photo's ``attachment_id``, a ``location``);
    the REST channel passes on only the keys it knows, and only from the web chat.
    """
    url = f"{settings.rasa_url}/webhooks/rest/webhook"
    body: Dict[str, Any] = {"sender": sender, "message": message}
    extra: Dict[str, Any] = dict(metadata or {})
    if message_id:
        extra["webchat_id"] = message_id
    if extra:
        body["metadata"] = extra
    headers = {WEBCHAT_SECRET_HEADER: settings.webchat_secret()}
    try:
        response = requests.post(url, json=body, headers=headers, timeout=RASA_TIMEOUT_S)
        response.raise_for_status()
        replies = response.json()
    except (requests.RequestException, ValueError) as error:
        raise RasaUnavailable(f"REST webhook failed: {error}") from error
    if not isinstance(replies, list):
        raise RasaUnavailable(f"REST webhook answered {type(replies).__name__}, not a list")
    out = []
    for reply in replies:
        if not isinstance(reply, dict):
            continue
        text = reply.get("text")
        buttons = _buttons(reply.get("buttons"))
        if text is None and not buttons:
            continue  # images / custom payloads: nothing the page shows
        out.append({"text": "" if text is None else str(text), "buttons": buttons})
    return out


def fetch_events(settings: Settings, sender: str) -> List[Dict[str, Any]]:
    """The tracker's events of one conversation (after the last restart)."""
    try:
        return RasaClient(settings, timeout_s=HISTORY_TIMEOUT_S).events(sender)
    except RasaError as error:
        raise RasaUnavailable(f"tracker request failed: {error}") from error


def history_from_events(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """`user` and `bot` events as the page's messages.

    A pressed button arrives as its payload (``/affirm``); it is shown as the title of the
    matching button of the bot's latest buttons, as the page showed it when it was pressed.
    A photo (``/send_photo``) or a location (``/share_location``) shows as 「[照片]」 /
    「[位置]」, as the page showed it when it was sent.
    """
    messages: List[Dict[str, Any]] = []
    offered: Dict[str, str] = {}  # payload → title of the buttons since the last user turn
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = event.get("event")
        if kind == "user":
            text = event.get("text")
            if text is None:
                continue
            text = str(text)
            shown = _text(SHOWN_AS[text]) if text in SHOWN_AS else offered.get(text, text)
            message = {
                "from": "customer",
                "text": shown,
                "buttons": [],
                "timestamp": event.get("timestamp"),
            }
            metadata = event.get("metadata")
            if isinstance(metadata, dict) and isinstance(metadata.get("webchat_id"), str):
                message["id"] = metadata["webchat_id"]
            messages.append(message)
            offered = {}
        elif kind == "bot":
            data = event.get("data") if isinstance(event.get("data"), dict) else {}
            buttons = _buttons(data.get("buttons"))
            text = event.get("text")
            if text is None and not buttons:
                continue
            for button in buttons:
                offered.setdefault(button["payload"], button["title"])
            message = {
                "from": "bot",
                "text": "" if text is None else str(text),
                "buttons": buttons,
                "timestamp": event.get("timestamp"),
            }
            metadata = event.get("metadata")
            if isinstance(metadata, dict) and isinstance(metadata.get("agent"), str):
                message["agent"] = metadata["agent"]  # a human agent's reply, by name
            messages.append(message)
    return messages


# ---------------------------------------------------------------- the page's API


async def _read_body(request: Request, most: Optional[int] = None) -> Optional[bytes]:
    """The request body, or None when it is larger than `most` bytes (default
    `limits.body_max_bytes`); a larger body is not read on."""
    if most is None:
        most = _settings(request).service.limits.body_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > most:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > most:
            return None
    return bytes(body)


async def _json_body(request: Request, too_large: str) -> Dict[str, Any] | JSONResponse:
    """The request's JSON object, or the polite error to answer with (`too_large`: the
    catalog key for a body over `limits.body_max_bytes`)."""
    raw = await _read_body(request)
    if raw is None:
        return _error(413, _text(too_large))
    try:
        body = json.loads(raw)
    except ValueError:
        return _error(400, _text("webchat_bad_request"))
    if not isinstance(body, dict):
        return _error(400, _text("webchat_bad_request"))
    return body


@router.post("/chat/api/messages", include_in_schema=False)
async def post_message(request: Request) -> JSONResponse:
    """Forward ``{message, id?}`` to Rasa; the bot's replies ``[{text, buttons}]``."""
    body = await _json_body(request, "message_too_long")
    if isinstance(body, JSONResponse):
        return body
    sender, message, message_id = chat_sender(request), body.get("message"), body.get("id")
    if sender is None:
        return _error(422, _text("webchat_bad_sender"))
    if not _valid_message_id(message_id):
        return _error(400, _text("webchat_bad_request"))
    if not isinstance(message, str) or not message.strip():
        return _error(422, _text("webchat_empty"))
    if len(message) > _settings(request).service.limits.message_max_chars:
        return _error(413, _text("message_too_long"))
    return await _forward(request, sender, message, message_id)


async def _forward(
    request: Request,
    sender: str,
    message: str,
    message_id: Optional[str],
    metadata: Optional[Dict[str, Any]] = None,
) -> JSONResponse:
    """Pass one message on to Rasa; the bot's replies ``[{text, buttons}]``, or a polite 503."""
    try:
        replies = await run_in_threadpool(
            forward_message, _settings(request), sender, message, message_id, metadata
        )
    except RasaUnavailable as error:
        logger.warning("web chat: %s", error)
        return _error(503, _text("webchat_busy"))
    return JSONResponse(replies, headers=API_HEADERS)


def _valid_message_id(message_id: Any) -> bool:
    return message_id is None or (
        isinstance(message_id, str) and MESSAGE_ID_RE.fullmatch(message_id) is not None
    )


def _client_ip(request: Request) -> str:
    """The customer's address: the peer, or what a trusted proxy in front says it was."""
    trusted = _settings(request).service.limits.trusted_proxies
    peer = request.client.host if request.client else ""
    return client_address(peer, request.headers.get("x-forwarded-for", ""), trusted)


def _photos_over_limit(request: Request, sender: str) -> bool:
    """Count one upload; True when the sender or its address sent more photos this minute
    than `limits` allow messages. Checked before anything is stored: the REST channel's own
    limit comes only after the photo is on disk."""
    settings = _settings(request)
    limits = settings.service.limits
    if not settings.rate_limits_on:
        return False
    ip = _client_ip(request)
    store = shared_store()
    checks = [(f"rate:webchat-photo:sender:{sender}", limits.messages_per_sender_per_minute)]
    if ip not in limits.trusted_proxies:
        checks.append((f"rate:webchat-photo:ip:{ip}", limits.messages_per_ip_per_minute))
    return any(most > 0 and store.hit(key, 60) > most for key, most in checks)


def _store_photo(sender: str, message_id: Optional[str], raw: bytes) -> int:
    """Store the photo (`receive_photo`; raises `ImageRefused`); an upload the page retries
    with the same message id gets the photo stored the first time, never a second copy."""
    key = f"webchat-photo:{sender}:{message_id}" if message_id else None
    store = shared_store()
    if key:
        earlier = store.get(key)
        if earlier is not None and earlier.isdigit():
            return int(earlier)
    attachment_id = receive_photo(sender, "webchat", raw)
    if key:
        store.put(key, str(attachment_id), PHOTO_RETRY_TTL_S)
    return attachment_id


@router.post("/chat/api/photos", include_in_schema=False)
async def post_photo(
    request: Request, message_id: Optional[str] = Query(None, alias="id")
) -> JSONResponse:
    """Store the photo in the body (``image/*`` or ``application/octet-stream``) for this
    conversation and tell the dialogue (``/send_photo``); the bot's replies."""
    sender = chat_sender(request)
    if sender is None:
        return _error(422, _text("webchat_bad_sender"))
    if not _valid_message_id(message_id):
        return _error(400, _text("webchat_bad_request"))
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (content_type.startswith("image/") or content_type == PHOTO_TYPE_ANY):
        return _error(415, photo_refusal("not_image"))
    if _photos_over_limit(request, sender):
        return _error(429, _text("rate_limited"))
    max_bytes = _settings(request).service.media.max_bytes
    raw = await _read_body(request, max_bytes + PHOTO_BODY_MARGIN)
    if raw is None:
        return _error(413, photo_refusal("too_large"))
    try:
        attachment_id = await run_in_threadpool(_store_photo, sender, message_id, raw)
    except ImageRefused as refused:
        status = 413 if refused.reason == "too_large" else 422
        return _error(status, photo_refusal(refused.reason))
    except Exception as error:  # the media store or the database: nothing personal logged
        logger.error("web chat: a photo could not be stored (%s)", type(error).__name__)
        return _error(503, photo_refusal("failed"))
    metadata = {"attachment_id": attachment_id}
    return await _forward(request, sender, PHOTO_INTENT, message_id, metadata)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@router.post("/chat/api/location", include_in_schema=False)
async def post_location(request: Request) -> JSONResponse:
    """Check ``{lat, lon, id?}`` (a position the browser gave, with the customer's consent)
    and tell the dialogue (``/share_location``); the bot's replies."""
    body = await _json_body(request, "webchat_bad_request")
    if isinstance(body, JSONResponse):
        return body
    sender, message_id = chat_sender(request), body.get("id")
    if sender is None:
        return _error(422, _text("webchat_bad_sender"))
    if not _valid_message_id(message_id):
        return _error(400, _text("webchat_bad_request"))
    lat, lon = body.get("lat"), body.get("lon")
    try:
        if not (_number(lat) and _number(lon)):
            raise InvalidLocation("invalid")
        place = locate(lat, lon)
    except InvalidLocation as refused:
        return _error(422, location_refusal(refused.reason))
    metadata = {"location": {"lat": place.lat, "lon": place.lon}}
    return await _forward(request, sender, LOCATION_INTENT, message_id, metadata)


@router.get("/chat/api/history", include_in_schema=False)
async def get_history(request: Request) -> Response:
    """The conversation so far: ``[{from, text, buttons, timestamp}]`` (a browser without its
    cookie starts a new, empty conversation)."""
    sender = chat_sender(request)
    if sender is None:
        return with_chat_cookie(request, JSONResponse([], headers=API_HEADERS), new_sender())
    try:
        events = await run_in_threadpool(fetch_events, _settings(request), sender)
    except RasaUnavailable as error:
        logger.warning("web chat history: %s", error)
        return _error(503, _text("webchat_busy"))
    return JSONResponse(history_from_events(events), headers=API_HEADERS)
