"""The web chat router (bot/console/webchat.py) against a tiny fake Rasa HTTP server.

The fake answers the two Rasa endpoints the router uses — the REST channel webhook and the
conversation tracker — records what it was sent, and can be told to fail.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from fastapi.testclient import TestClient

from bot.console.app import create_app
from bot.console.webchat import history_from_events
from bot.core.catalog import load_catalog
from bot.core.settings import load_settings
from tests.fakes.json_server import Request, json_server

BUSY = load_catalog().system_messages["webchat_busy"]

SENDER = "web-0123456789abcdef0123456789abcdef"
BUTTONS = [{"title": "确认提交", "payload": "/affirm"}, {"title": "修改", "payload": "/deny"}]


class FakeRasa:
    """What the fake Rasa answers and what it received."""

    def __init__(self) -> None:
        self.received: List[Dict[str, Any]] = []
        self.tracker_requests: List[Dict[str, Any]] = []
        self.replies: Any = [{"recipient_id": SENDER, "text": "您好"}]
        self.events: List[Dict[str, Any]] = []
        self.secrets: List[Optional[str]] = []
        self.status = 200

    def handle(self, request: Request) -> Tuple[int, Any]:
        if request.method == "POST":
            if request.path != "/webhooks/rest/webhook":
                return 404, {"error": "not found"}
            self.received.append(json.loads(request.body or b"{}"))
            self.secrets.append(request.headers.get("X-Intake-Webchat-Secret"))
            return (200, self.replies) if self.status == 200 else (self.status, {"error": "boom"})
        prefix, suffix = "/conversations/", "/tracker"
        if not (
            request.method == "GET"
            and request.path.startswith(prefix)
            and request.path.endswith(suffix)
        ):
            return 404, {"error": "not found"}
        sender = request.path[len(prefix) : -len(suffix)]
        self.tracker_requests.append({"sender": sender, "query": request.query})
        if self.status != 200:
            return self.status, {"error": "boom"}
        return 200, {"sender_id": sender, "events": self.events}


@pytest.fixture
def fake_rasa(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRasa]:
    fake = FakeRasa()
    with json_server(fake.handle) as url:
        monkeypatch.setenv("RASA_URL", url)
        monkeypatch.delenv("RASA_TOKEN", raising=False)
        yield fake


def chat_cookie(sender: str = SENDER) -> str:
    """The signed cookie the page's browser holds for conversation `sender`."""
    from bot.console.webchat import _signer

    return _signer(load_settings()).sign(sender).decode()


@pytest.fixture
def client(fake_rasa: FakeRasa) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings())) as test_client:
        test_client.cookies.set("intake_chat", chat_cookie(), path="/chat")
        yield test_client


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def send(client: TestClient, message: str, **extra: Any):
    return client.post("/chat/api/messages", json={"message": message, **extra})


# ---------------------------------------------------------------- the page


def test_page_is_served_with_its_files_and_no_external_resources(client: TestClient) -> None:
    page = client.get("/chat")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "供电业务受理助手" in page.text
    assert "{{v}}" not in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    for name in ("chat.js", "chat.css", "avatar.svg"):
        asset = client.get(f"/chat/static/{name}")
        assert asset.status_code == 200, name
        assert "http://" not in asset.text.replace("http://www.w3.org/2000/svg", ""), name


def test_page_javascript_never_uses_innerhtml(client: TestClient) -> None:
    script = client.get("/chat/static/chat.js").text
    code = "\n".join(
        line for line in script.splitlines() if not line.strip().startswith(("*", "/*", "//"))
    )
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in code


@pytest.mark.parametrize(
    "name", ["../webchat.py", "..%2Fwebchat.py", "index.html", "missing.js", ".env"]
)
def test_only_the_page_files_are_served(client: TestClient, name: str) -> None:
    assert client.get(f"/chat/static/{name}").status_code == 404


# ---------------------------------------------------------------- sending


def test_message_is_forwarded_and_replies_come_back(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    fake_rasa.replies = [
        {
            "recipient_id": SENDER,
            "text": "请核对报修信息：\n地址：龙湖区长平路88号",
            "buttons": BUTTONS,
        },
        {"recipient_id": SENDER, "text": "第二条"},
        {"recipient_id": SENDER, "image": "https://example.invalid/x.png"},  # nothing to show
    ]
    response = send(client, "家里停电了", id="m0123abcd")
    assert response.status_code == 200
    assert response.json() == [
        {"text": "请核对报修信息：\n地址：龙湖区长平路88号", "buttons": BUTTONS},
        {"text": "第二条", "buttons": []},
    ]
    assert fake_rasa.received == [
        {"sender": SENDER, "message": "家里停电了", "metadata": {"webchat_id": "m0123abcd"}}
    ]
    # the REST channel takes a web- sender only with the web chat's secret
    assert fake_rasa.secrets == [load_settings().webchat_secret()]
    assert response.headers["cache-control"] == "no-store"


def test_button_payload_is_forwarded_as_is(client: TestClient, fake_rasa: FakeRasa) -> None:
    assert send(client, "/affirm").status_code == 200
    assert fake_rasa.received[0]["message"] == "/affirm"
    assert "metadata" not in fake_rasa.received[0]


def test_script_passes_through_as_text(client: TestClient, fake_rasa: FakeRasa) -> None:
    script = "<script>window.__x=1</script>"
    fake_rasa.replies = [{"recipient_id": SENDER, "text": f"您说的是：{script}"}]
    response = send(client, script)
    assert response.status_code == 200
    assert fake_rasa.received[0]["message"] == script
    assert response.json()[0]["text"] == f"您说的是：{script}"
    assert response.headers["content-type"].startswith("application/json")


def test_the_conversation_is_the_cookies_and_a_body_sender_is_ignored(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    victim = "web-ffffffffffffffffffffffffffffffff"
    assert (
        client.post("/chat/api/messages", json={"sender": victim, "message": "你好"}).status_code
        == 200
    )
    assert fake_rasa.received[0]["sender"] == SENDER


@pytest.mark.parametrize("cookie", [None, "web-0123456789abcdef0123456789abcdef", "forged.value"])
def test_a_message_without_a_valid_chat_cookie_is_refused(
    fake_rasa: FakeRasa, cookie: Optional[str]
) -> None:
    with TestClient(create_app(load_settings())) as anonymous:
        if cookie:
            anonymous.cookies.set("intake_chat", cookie, path="/chat")
        response = anonymous.post("/chat/api/messages", json={"message": "你好"})
    assert response.status_code == 422
    assert response.json()["error"] == "会话标识无效，请刷新页面后重试。"
    assert fake_rasa.received == []


def test_the_page_gives_a_new_browser_its_conversation_cookie(fake_rasa: FakeRasa) -> None:
    with TestClient(create_app(load_settings())) as browser:
        page = browser.get("/chat")
        cookie = page.headers["set-cookie"]
        assert (
            "intake_chat=" in cookie
            and "httponly" in cookie.lower()
            and "samesite=strict" in cookie.lower()
        )
        assert browser.post("/chat/api/messages", json={"message": "你好"}).status_code == 200
    assert fake_rasa.received[0]["sender"].startswith("web-")
    assert "web-" not in page.text  # never in the page, never in a URL


@pytest.mark.parametrize("message", ["", "   \n", None, 42])
def test_empty_message_is_refused(client: TestClient, fake_rasa: FakeRasa, message: Any) -> None:
    response = client.post("/chat/api/messages", json={"message": message})
    assert response.status_code == 422
    assert "请输入" in response.json()["error"]
    assert fake_rasa.received == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"'])
def test_malformed_body_is_refused(client: TestClient, fake_rasa: FakeRasa, body: bytes) -> None:
    response = client.post(
        "/chat/api/messages", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]
    assert fake_rasa.received == []


def test_invalid_message_id_is_refused(client: TestClient, fake_rasa: FakeRasa) -> None:
    assert send(client, "你好", id="<x>").status_code == 400
    assert fake_rasa.received == []


def test_message_of_2000_characters_is_accepted(client: TestClient, fake_rasa: FakeRasa) -> None:
    assert send(client, "电" * 2000).status_code == 200
    assert fake_rasa.received[0]["message"] == "电" * 2000


def test_long_message_is_413(client: TestClient, fake_rasa: FakeRasa) -> None:
    response = send(client, "电" * 2001)
    assert response.status_code == 413
    assert response.json() == {"error": "消息太长了（最多2000字），请分几次发送。"}
    assert fake_rasa.received == []


def test_huge_body_is_413_without_being_parsed(client: TestClient, fake_rasa: FakeRasa) -> None:
    response = send(client, "x" * 200_000)
    assert response.status_code == 413
    assert fake_rasa.received == []


@pytest.mark.parametrize("status", [500, 502, 404])
def test_rasa_error_is_503_with_a_polite_message(
    client: TestClient, fake_rasa: FakeRasa, status: int
) -> None:
    fake_rasa.status = status
    response = send(client, "你好")
    assert response.status_code == 503
    assert response.json() == {"error": "助手暂时忙不过来，请稍后再试，或拨打95598。"}
    assert response.json()["error"] == BUSY


def test_rasa_answering_garbage_is_503(client: TestClient, fake_rasa: FakeRasa) -> None:
    fake_rasa.replies = {"not": "a list"}
    assert send(client, "你好").status_code == 503


def test_rasa_down_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASA_URL", f"http://127.0.0.1:{_closed_port()}")
    with TestClient(create_app(load_settings())) as client:
        client.cookies.set("intake_chat", chat_cookie(), path="/chat")
        response = send(client, "你好")
        assert response.status_code == 503
        assert response.json() == {"error": "助手暂时忙不过来，请稍后再试，或拨打95598。"}
        history = client.get("/chat/api/history")
        assert history.status_code == 503
        assert history.json() == {"error": BUSY}


# ---------------------------------------------------------------- history


EVENTS = [
    {"event": "action", "timestamp": 1.0, "name": "action_session_start"},
    {"event": "session_started", "timestamp": 1.1},
    {"event": "action", "timestamp": 1.2, "name": "action_listen"},
    {
        "event": "user",
        "timestamp": 10.5,
        "text": "家里停电了，龙湖区长平路88号3栋502",
        "parse_data": {"intent": {"name": "report_fault"}},
        "input_channel": "webchat",
        "metadata": {"webchat_id": "m1"},
    },
    {
        "event": "bot",
        "timestamp": 11.0,
        "text": "请问联系电话是多少？",
        "data": {
            "elements": None,
            "quick_replies": None,
            "buttons": None,
            "attachment": None,
            "image": None,
            "custom": None,
        },
        "metadata": {"utter_action": "utter_ask_phone"},
    },
    {"event": "slot", "timestamp": 11.1, "name": "phone", "value": None},
    {"event": "user", "timestamp": 20.0, "text": "13812345678", "metadata": {}},
    {
        "event": "bot",
        "timestamp": 21.0,
        "text": "请核对：\n电话：13812345678",
        "data": {"buttons": BUTTONS},
        "metadata": {},
    },
    {"event": "user", "timestamp": 30.0, "text": "/affirm", "metadata": {"webchat_id": "m3"}},
    {"event": "bot", "timestamp": 31.0, "text": "工单号 GD20261127000001", "data": {}},
    {
        "event": "bot",
        "timestamp": 40.0,
        "text": "您好，我是客服小林",
        "data": {},
        "metadata": {"agent": "小林"},
    },
    {"event": "user", "timestamp": 50.0, "text": "/affirm"},  # no buttons offered: as is
    {"event": "user", "timestamp": 51.0, "text": None},
    {
        "event": "bot",
        "timestamp": 52.0,
        "data": {"buttons": [{"title": "转人工", "payload": "/request_human"}]},
    },
    {"event": "user", "timestamp": 53.0, "text": "/request_human"},
    {"event": "bot", "timestamp": 54.0, "data": {"image": "x.png"}},  # nothing to show
]


def test_history_maps_user_and_bot_events(client: TestClient, fake_rasa: FakeRasa) -> None:
    fake_rasa.events = EVENTS
    response = client.get("/chat/api/history")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == [
        {
            "from": "customer",
            "text": "家里停电了，龙湖区长平路88号3栋502",
            "buttons": [],
            "timestamp": 10.5,
            "id": "m1",
        },
        {"from": "bot", "text": "请问联系电话是多少？", "buttons": [], "timestamp": 11.0},
        {"from": "customer", "text": "13812345678", "buttons": [], "timestamp": 20.0},
        {
            "from": "bot",
            "text": "请核对：\n电话：13812345678",
            "buttons": BUTTONS,
            "timestamp": 21.0,
        },
        # a pressed button shows as its title, as the page showed it
        {"from": "customer", "text": "确认提交", "buttons": [], "timestamp": 30.0, "id": "m3"},
        {"from": "bot", "text": "工单号 GD20261127000001", "buttons": [], "timestamp": 31.0},
        {
            "from": "bot",
            "text": "您好，我是客服小林",
            "buttons": [],
            "timestamp": 40.0,
            "agent": "小林",
        },
        {"from": "customer", "text": "/affirm", "buttons": [], "timestamp": 50.0},
        {
            "from": "bot",
            "text": "",
            "buttons": [{"title": "转人工", "payload": "/request_human"}],
            "timestamp": 52.0,
        },
        {"from": "customer", "text": "转人工", "buttons": [], "timestamp": 53.0},
    ]
    # Rasa's API is never open: the console sends its token (var/rasa_token when unset)
    assert fake_rasa.tracker_requests == [
        {"sender": SENDER, "query": {"token": [load_settings().rasa_token]}}
    ]


def test_history_of_a_new_conversation_is_empty(client: TestClient, fake_rasa: FakeRasa) -> None:
    fake_rasa.events = EVENTS[:3]
    response = client.get("/chat/api/history")
    assert response.status_code == 200
    assert response.json() == []


def test_history_keeps_script_as_text(client: TestClient, fake_rasa: FakeRasa) -> None:
    fake_rasa.events = [
        {"event": "user", "timestamp": 1.0, "text": "<script>window.__x=1</script>"}
    ]
    assert client.get("/chat/api/history").json()[0]["text"] == ("<script>window.__x=1</script>")


def test_history_sends_the_rasa_token_when_set(
    fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RASA_TOKEN", "s3cret")
    with TestClient(create_app(load_settings())) as client:
        client.cookies.set("intake_chat", chat_cookie(), path="/chat")
        assert client.get("/chat/api/history").status_code == 200
    assert fake_rasa.tracker_requests[0]["query"] == {"token": ["s3cret"]}


def test_history_of_another_conversation_cannot_be_asked_for(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    other = "web-ffffffffffffffffffffffffffffffff"
    client.get("/chat/api/history", params={"sender": other})
    assert [r["sender"] for r in fake_rasa.tracker_requests] == [SENDER]


def test_history_without_the_cookie_starts_a_new_empty_conversation(fake_rasa: FakeRasa) -> None:
    with TestClient(create_app(load_settings())) as browser:
        response = browser.get("/chat/api/history")
    assert response.status_code == 200 and response.json() == []
    assert "intake_chat=" in response.headers["set-cookie"]
    assert fake_rasa.tracker_requests == []


def test_history_when_rasa_errors_is_503(client: TestClient, fake_rasa: FakeRasa) -> None:
    fake_rasa.status = 500
    response = client.get("/chat/api/history")
    assert response.status_code == 503
    assert response.json() == {"error": BUSY}


@pytest.mark.parametrize("events", [[], [{"event": "bot"}], ["junk", {"event": "user", "text": 5}]])
def test_history_mapping_tolerates_odd_events(events: List[Any]) -> None:
    result: Optional[List[Dict[str, Any]]] = history_from_events(events)
    assert isinstance(result, list)
