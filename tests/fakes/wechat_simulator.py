"""A stand-in for WeChat's servers on 127.0.0.1, for tests, the benchmark and local trials.

* `WeChatPushes` builds what WeChat pushes to the webhook: signed XML, encrypted with
  wechatpy's own crypto in safe mode, and reads (decrypts) the passive replies.
* `FakeWeChatApi` serves the API endpoints the channel calls — `GET /cgi-bin/token`,
  `POST /cgi-bin/message/custom/send` (recorded) and `GET /cgi-bin/media/get` (temporary
  media registered with `add_media`; WeChat's errcode JSON for an unknown media id) — and,
  as WeChat's picture server, the `PicUrl` of an image (`add_picture`), on the same port.
  Point the channel at it with WECHAT_API_BASE_URL=`api.base_url`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

import xmltodict
from wechatpy.crypto import WeChatCrypto


@dataclass
class WeChatPushes:
    """Builds WeChat's pushes for one Official Account."""

    token: str
    app_id: str = "wx0000000000000000"
    encoding_aes_key: str = ""  # set: pushes are encrypted (safe mode)
    account: str = "gh_intake_test"

    @property
    def crypto(self) -> Optional[WeChatCrypto]:
        if not self.encoding_aes_key:
            return None
        return WeChatCrypto(self.token, self.encoding_aes_key, self.app_id)

    def signature(self, timestamp: str, nonce: str) -> str:
        """WeChat's URL signature: sha1 of token, timestamp and nonce sorted and joined."""
        return hashlib.sha1("".join(sorted([self.token, timestamp, nonce])).encode()).hexdigest()

    def verification(self, echostr: str = "echo-123") -> Dict[str, str]:
        timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
        return {
            "signature": self.signature(timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }

    def xml(self, openid: str, msg_type: str, msg_id: Optional[int] = None, **fields: str) -> str:
        body = {
            "ToUserName": self.account,
            "FromUserName": openid,
            "CreateTime": str(int(time.time())),
            "MsgType": msg_type,
            **fields,
        }
        if msg_id is not None:
            body["MsgId"] = str(msg_id)
        return xmltodict.unparse({"xml": body}, full_document=False)

    def text(self, openid: str, content: str, msg_id: int) -> str:
        return self.xml(openid, "text", msg_id, Content=content)

    def voice(self, openid: str, recognition: str, msg_id: int) -> str:
        return self.xml(
            openid, "voice", msg_id, MediaId="media-1", Format="amr", Recognition=recognition
        )

    def subscribe(self, openid: str) -> str:
        return self.xml(openid, "event", Event="subscribe")

    def _envelope(self, openid: str, msg_type: str, fields: str, msg_id: int) -> str:
        """A message as WeChat's server writes it: strings in CDATA, numbers bare."""
        return (
            "<xml>"
            f"<ToUserName>{_cdata(self.account)}</ToUserName>"
            f"<FromUserName>{_cdata(openid)}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime>"
            f"<MsgType>{_cdata(msg_type)}</MsgType>"
            f"{fields}"
            f"<MsgId>{int(msg_id)}</MsgId>"
            "</xml>"
        )

    def image(self, openid: str, pic_url: str, media_id: str, msg_id: int) -> str:
        """An image message (图片消息): the picture's URL and its temporary media id."""
        fields = f"<PicUrl>{_cdata(pic_url)}</PicUrl><MediaId>{_cdata(media_id)}</MediaId>"
        return self._envelope(openid, "image", fields, msg_id)

    def location(
        self,
        openid: str,
        latitude: str,
        longitude: str,
        label: str,
        msg_id: int,
        scale: int = 15,
    ) -> str:
        """A location message (地理位置消息): Location_X is the latitude, Location_Y the
        longitude (as decimal text), Scale the map's zoom, Label the address WeChat shows."""
        fields = (
            f"<Location_X>{latitude}</Location_X>"
            f"<Location_Y>{longitude}</Location_Y>"
            f"<Scale>{int(scale)}</Scale>"
            f"<Label>{_cdata(label)}</Label>"
        )
        return self._envelope(openid, "location", fields, msg_id)

    def push(self, xml: str) -> Tuple[Dict[str, str], bytes]:
        """The query string and body of WeChat's POST for `xml` (encrypted in safe mode)."""
        timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
        query = {
            "signature": self.signature(timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": "ignored",
        }
        crypto = self.crypto
        if crypto is None:
            return query, xml.encode("utf-8")
        envelope = xmltodict.parse(crypto.encrypt_message(xml, nonce, timestamp))["xml"]
        query.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
        body = xmltodict.unparse(
            {"xml": {"ToUserName": self.account, "Encrypt": envelope["Encrypt"]}},
            full_document=False,
        )
        return query, body.encode("utf-8")

    def read_reply(self, body: str) -> Dict[str, Any]:
        """The fields of a passive reply (decrypted and its signature checked in safe mode)."""
        fields = xmltodict.parse(body)["xml"]
        crypto = self.crypto
        if crypto is None or "Encrypt" not in fields:
            return fields
        inner = crypto.decrypt_message(
            body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
        )
        return xmltodict.parse(inner)["xml"]


def _cdata(value: str) -> str:
    if "]]>" in value:
        return escape(value)  # cannot be in a CDATA section; WeChat would escape it too
    return f"<![CDATA[{value}]]>"


# What WeChat answers for a media id it does not know (or that expired after 3 days).
INVALID_MEDIA_ID = {"errcode": 40007, "errmsg": "invalid media_id"}


@dataclass
class FakeWeChatApi:
    """WeChat's token, customer-service and temporary-media endpoints and its picture server
    on 127.0.0.1 (a thread)."""

    port: int = 0
    access_token: str = "fake-access-token"
    sent: List[Dict[str, Any]] = field(default_factory=list)
    token_requests: int = 0
    # The next `failures` customer-service sends are refused with this error (45015: the
    # customer last wrote more than 48 hours ago, so WeChat no longer lets us write to them).
    failures: int = 0
    failure: Dict[str, Any] = field(
        default_factory=lambda: {
            "errcode": 45015,
            "errmsg": "response out of time limit or subscription is canceled",
        }
    )
    # Temporary media (media id → bytes, content type), and the media ids asked for.
    media: Dict[str, Tuple[bytes, str]] = field(default_factory=dict)
    media_requests: List[str] = field(default_factory=list)
    # PicUrl pictures (path → bytes), and the paths fetched.
    pictures: Dict[str, bytes] = field(default_factory=dict)
    picture_requests: List[str] = field(default_factory=list)
    _server: Optional[ThreadingHTTPServer] = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/cgi-bin/"

    @property
    def origin(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_media(self, media_id: str, data: bytes, content_type: str = "image/jpeg") -> None:
        """Serve `data` as the temporary media `media_id` (media/get)."""
        with self._changed:
            self.media[media_id] = (data, content_type)

    def add_picture(self, data: bytes) -> str:
        """Serve `data` as an image's PicUrl; returns the URL (http, as WeChat's mmbiz)."""
        path = f"/mmbiz_jpg/{uuid.uuid4().hex}/0"
        with self._changed:
            self.pictures[path] = data
        return self.origin + path

    def start(self) -> "FakeWeChatApi":
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _json(self, payload: Dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _bytes(self, status: int, data: bytes, headers: Dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                if url.path == "/cgi-bin/token":
                    with api._changed:
                        api.token_requests += 1
                    self._json({"access_token": api.access_token, "expires_in": 7200})
                elif url.path == "/cgi-bin/media/get":
                    if query.get("access_token", [""])[0] != api.access_token:
                        return self._json({"errcode": 40001, "errmsg": "invalid credential"})
                    media_id = query.get("media_id", [""])[0]
                    with api._changed:
                        api.media_requests.append(media_id)
                        found = api.media.get(media_id)
                        api._changed.notify_all()
                    if found is None:
                        return self._json(INVALID_MEDIA_ID)
                    data, content_type = found
                    extension = {"image/jpeg": "jpg"}.get(content_type, content_type[6:])
                    self._bytes(
                        200,
                        data,
                        {
                            "Content-Type": content_type,
                            "Content-disposition": (
                                f'attachment; filename="{media_id}.{extension}"'
                            ),
                            "Cache-Control": "no-cache, must-revalidate",
                        },
                    )
                elif url.path.startswith("/mmbiz_jpg/"):
                    with api._changed:
                        api.picture_requests.append(url.path)
                        picture = api.pictures.get(url.path)
                        api._changed.notify_all()
                    if picture is None:
                        self._bytes(404, b"", {"Content-Type": "text/html"})
                    else:
                        self._bytes(200, picture, {"Content-Type": "image/jpeg"})
                else:
                    self._json({"errcode": 404, "errmsg": "not found"})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = parse_qs(url.query).get("access_token", [""])[0]
                if url.path != "/cgi-bin/message/custom/send":
                    return self._json({"errcode": 404, "errmsg": "not found"})
                if token != api.access_token:
                    return self._json({"errcode": 40001, "errmsg": "invalid credential"})
                with api._changed:
                    if api.failures > 0:
                        api.failures -= 1
                        return self._json(api.failure)
                    api.sent.append(json.loads(body))
                    api._changed.notify_all()
                self._json({"errcode": 0, "errmsg": "ok"})

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def messages_to(self, openid: str) -> List[str]:
        with self._changed:
            return self._texts_to(openid)

    def wait_for(self, openid: str, count: int = 1, timeout: float = 10) -> List[str]:
        """The texts sent to `openid`, once there are at least `count` (or after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._texts_to(openid)) < count and time.monotonic() < deadline:
                self._changed.wait(max(0.0, deadline - time.monotonic()))
            return self._texts_to(openid)

    def _texts_to(self, openid: str) -> List[str]:
        return [m["text"]["content"] for m in self.sent if m.get("touser") == openid]
