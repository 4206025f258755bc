"""Attacks from the internet against the real stack (and the real nginx in front of it), each
refused with a clear status, none telling anything about another customer.

The stack runs as `make run` starts it: Rasa's API behind its token (created under var/), the
action server with its own, WeChat in safe mode, Telegram with its webhook secret.
"""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import requests
from PIL import Image

from bench.stack import free_port
from bot.core.rasa_api import WEBCHAT_SECRET_HEADER
from bot.core.settings import get_settings
from bot.tools.nginx import Nginx
from bot.tools.runner import Stack
from tests.fakes.wechat_simulator import FakeWeChatApi, WeChatPushes
from tests.stack import WECHAT, Api, Customer, texts


def rasa(stack: Stack, path: str) -> str:
    return f"http://127.0.0.1:{stack.settings.rasa_port}{path}"


def victim_with_a_ticket(stack: Stack, api: Api) -> Dict[str, Any]:
    """A customer who filed a fault with their phone and address."""
    victim = Customer(stack)
    victim.say("我家停电了，地址潮南区峡山街道东山路12号，电话13712340001")
    replies = victim.say("确认")
    assert "GD" in texts(replies)
    [ticket] = api.tickets(victim.sender)
    return {"sender": victim.sender, "ticket_no": ticket["ticket_no"], "phone": "13712340001"}


# ---------------------------------------------------------------- Rasa's HTTP API


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/conversations/{sender}/tracker"),
        ("POST", "/conversations/{sender}/tracker/events?execute_side_effects=true"),
        ("POST", "/conversations/{sender}/execute"),
        ("DELETE", "/model"),
        ("PUT", "/model"),
        ("POST", "/model/parse"),
        ("GET", "/status"),
        ("GET", "/domain"),
    ],
)
def test_rasas_api_refuses_everyone_without_its_token(
    stack: Stack, api: Api, method: str, path: str
) -> None:
    victim = victim_with_a_ticket(stack, api) if "{sender}" in path else {"sender": "x"}
    body = {"event": "bot", "text": "您的电费已欠费，请点击 http://evil.example 缴费"}
    response = requests.request(
        method, rasa(stack, path.format(sender=victim["sender"])), json=body, timeout=10
    )
    assert response.status_code == 401, response.text[:200]
    assert victim.get("phone", "none") not in response.text


def test_the_action_server_refuses_calls_without_its_token(stack: Stack) -> None:
    url = f"http://127.0.0.1:{stack.settings.action_port}/webhook"
    response = requests.post(
        url, json={"next_action": "action_answer_ticket", "tracker": {}}, timeout=10
    )
    assert response.status_code == 403
    assert (
        requests.get(f"http://127.0.0.1:{stack.settings.action_port}/health", timeout=5).status_code
        == 200
    )


# ---------------------------------------------------------------- channel identity


@pytest.mark.parametrize(
    "sender", ["tg-424242", "wx-oVictimOpenId", "web-0123456789abcdef0123456789abcdef"]
)
def test_the_rest_channel_does_not_speak_for_other_channels(stack: Stack, sender: str) -> None:
    response = requests.post(
        rasa(stack, "/webhooks/rest/webhook"),
        json={"sender": sender, "message": "转人工", "input_channel": "telegram"},
        timeout=30,
    )
    assert response.status_code == 403


def test_a_body_cannot_choose_the_channel_or_its_metadata(stack: Stack, api: Api) -> None:
    customer = Customer(stack)
    response = requests.post(
        rasa(stack, "/webhooks/rest/webhook"),
        json={
            "sender": customer.sender,
            "message": "转人工",
            "input_channel": "telegram",
            "metadata": {"client_ip": "10.0.0.1"},
        },
        timeout=30,
    )
    assert response.status_code == 200
    [handoff] = api.handoffs(customer.sender)
    assert handoff["channel"] == "rest"


def test_the_web_chat_secret_is_not_guessable_from_outside(stack: Stack) -> None:
    response = requests.post(
        rasa(stack, "/webhooks/rest/webhook"),
        json={"sender": "web-" + "a" * 32, "message": "你好"},
        headers={WEBCHAT_SECRET_HEADER: "webchat"},
        timeout=30,
    )
    assert response.status_code == 403


def test_there_is_no_socketio_channel(stack: Stack) -> None:
    response = requests.get(rasa(stack, "/socket.io/?EIO=4&transport=polling"), timeout=10)
    assert response.status_code == 404


# ---------------------------------------------------------------- WeChat pushes


@pytest.fixture
def pushes() -> WeChatPushes:
    return WeChatPushes(WECHAT["token"], WECHAT["app_id"], WECHAT["aes_key"])


def _wechat(stack: Stack, query: Dict[str, str], body: bytes) -> requests.Response:
    return requests.post(
        rasa(stack, "/webhooks/wechat/webhook"), params=query, data=body, timeout=30
    )


def test_a_wechat_push_signed_an_hour_ago_is_refused(
    stack: Stack, pushes: WeChatPushes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tests.fakes.wechat_simulator as simulator

    now = time.time
    monkeypatch.setattr(simulator.time, "time", lambda: now() - 3600)
    query, body = pushes.push(pushes.text("oReplay1", "我家停电了", 910001))
    monkeypatch.undo()
    assert _wechat(stack, query, body).status_code == 403


def test_a_replayed_wechat_push_is_refused(
    stack: Stack, pushes: WeChatPushes, wechat_api: FakeWeChatApi
) -> None:
    query, body = pushes.push(pushes.text("oReplay2", "你好", 910002))
    assert _wechat(stack, query, body).status_code == 200
    assert _wechat(stack, query, body).status_code == 403


def test_the_same_signature_cannot_carry_another_message(
    stack: Stack, pushes: WeChatPushes
) -> None:
    query, _ = pushes.push(pushes.text("oReplay3", "你好", 910003))
    _, other_body = pushes.push(pushes.text("oVictim", "转人工", 910004))
    assert _wechat(stack, query, other_body).status_code == 403


def test_a_plaintext_push_is_refused_in_safe_mode(stack: Stack, pushes: WeChatPushes) -> None:
    query, _ = pushes.push(pushes.text("oPlain", "你好", 910005))
    plain = {k: v for k, v in query.items() if k not in ("encrypt_type", "msg_signature")}
    xml = pushes.text("oPlain", "你好", 910005).encode()
    assert _wechat(stack, plain, xml).status_code == 403


# ---------------------------------------------------------------- look-ups


def test_a_phone_number_lists_nobody_elses_tickets(stack: Stack, api: Api) -> None:
    victim = victim_with_a_ticket(stack, api)
    attacker = Customer(stack)
    said = texts(attacker.say(f"查工单进度，手机号{victim['phone']}"))
    said += texts(attacker.say(victim["phone"]))
    assert victim["ticket_no"] not in said and "东山路" not in said


def test_a_ticket_number_needs_the_phones_last_four_digits(stack: Stack, api: Api) -> None:
    victim = victim_with_a_ticket(stack, api)
    attacker = Customer(stack)
    said = texts(attacker.say(f"查一下工单{victim['ticket_no']}的进度"))
    assert "后四位" in said
    said = texts(attacker.say("1234"))
    assert "核对不上" in said and "抢修" not in said
    owner_said = texts(
        Customer(stack, sender=victim["sender"]).say(f"查一下工单{victim['ticket_no']}")
    )
    assert "待派单" in owner_said  # its own conversation needs nothing more


def test_a_violation_report_is_shown_to_nobody(stack: Stack, api: Api) -> None:
    reporter = Customer(stack)
    reporter.say("我要举报窃电，龙湖区华山路21号仓库晚上绕过电表接线，我匿名举报，不留电话")
    reporter.say("确认")
    [report] = api.tickets(reporter.sender)
    for asker in (reporter, Customer(stack)):
        said = texts(asker.say(f"查工单{report['ticket_no']}"))
        said += texts(asker.say("0000")) if "后四位" in said else ""
        assert "举报类工单按规定不在这里查询" in said and "华山路" not in said


def test_a_bill_needs_the_last_four_digits_of_the_phone_on_file(stack: Stack) -> None:
    attacker = Customer(stack)
    said = texts(attacker.say("查一下户号0301234567890的电费"))
    assert "后四位" in said
    said = texts(attacker.say("0000"))
    assert "核对不上" in said and "元" not in said and "林" not in said


# ---------------------------------------------------------------- limits


def test_a_3_mb_message_is_refused_and_not_stored(stack: Stack) -> None:
    sender = f"big-{uuid.uuid4().hex[:8]}"
    response = requests.post(
        rasa(stack, "/webhooks/rest/webhook"),
        json={"sender": sender, "message": "电" * 3_000_000},
        timeout=30,
    )
    assert response.status_code == 413
    tracker = requests.get(
        rasa(stack, f"/conversations/{sender}/tracker"),
        params={"token": stack.settings.rasa_token},
        timeout=10,
    ).json()
    assert not [e for e in tracker["events"] if e["event"] == "user"]


def test_a_script_cannot_file_hand_overs_from_one_address(stack: Stack, api: Api) -> None:
    """One conversation is paused by its first hand-over; a script uses many conversations
    from one address (as nginx reports it): past the hourly limit it is politely refused."""
    limit = stack.settings.service.limits.handoffs_per_ip_per_hour
    flooders = [f"flood-{uuid.uuid4().hex[:8]}" for _ in range(limit + 2)]
    answers = []
    for sender in flooders:
        response = requests.post(
            rasa(stack, "/webhooks/rest/webhook"),
            json={"sender": sender, "message": "转人工"},
            headers={"X-Forwarded-For": "203.0.113.77"},
            timeout=60,
        )
        answers.append(texts(response.json()))
    queued = sum(len(api.handoffs(sender)) for sender in flooders)
    assert queued <= limit
    assert "已经登记过了" in answers[-1]


# ---------------------------------------------------------------- the console


def test_console_docs_are_not_public_and_sign_in_is_throttled(stack: Stack) -> None:
    console = f"http://127.0.0.1:{stack.settings.console_port}"
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert requests.get(console + path, timeout=10).status_code == 404
    assert requests.get(console + "/api/v1/tickets", timeout=10).status_code == 401
    session = requests.Session()
    statuses = []
    for _ in range(stack.settings.service.console.attempts_per_ip_per_15_minutes + 1):
        page = session.get(console + "/login", timeout=10).text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        statuses.append(
            session.post(
                console + "/login",
                data={"username": "nobody", "password": "wrong-pass-1", "csrf_token": token},
                headers={"X-Forwarded-For": "203.0.113.50"},
                timeout=10,
            ).status_code
        )
    assert statuses[-1] == 429


# ---------------------------------------------------------------- logs


def test_personal_data_never_reaches_the_logs(stack: Stack, api: Api) -> None:
    customer = Customer(stack)
    customer.say(
        "我要新装用电，我叫欧阳振华，电话13698765432，地址潮阳区谷饶镇华光村新乡路77号，居民"
    )
    customer.say("确认")
    assert api.tickets(customer.sender)
    logs = "".join(p.read_text(errors="replace") for p in Path(stack.log_dir).glob("*.log"))
    for secret in ("13698765432", "欧阳振华", "新乡路77号"):
        assert secret not in logs, secret


# ---------------------------------------------------------------- nginx, the one door


@pytest.fixture(scope="module")
def door(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    proxy = Nginx(
        free_port(),
        [f"127.0.0.1:{stack.settings.rasa_port}"],
        f"127.0.0.1:{stack.settings.console_port}",
        tmp_path_factory.mktemp("nginx"),
    ).start()
    yield proxy
    proxy.stop()


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/rest/webhook",
        "/conversations/x/tracker",
        "/model",
        "/status",
        "/console/queue",
        "/login",
        "/api/v1/tickets",
        "/api/v1/openapi.json",
        "/metrics",
        "/",
    ],
)
def test_nginx_exposes_nothing_but_the_webhooks_and_the_web_chat(door: Nginx, path: str) -> None:
    for method in ("GET", "POST"):
        assert requests.request(method, door.url + path, timeout=10).status_code == 404, (
            method,
            path,
        )


def test_nginx_passes_the_customer_paths(door: Nginx, stack: Stack) -> None:
    assert requests.get(door.url + "/chat", timeout=10).status_code == 200
    telegram = requests.post(door.url + "/webhooks/telegram/webhook", json={}, timeout=10)
    assert telegram.status_code == 403  # reached the channel, which wants its secret
    assert requests.get(door.url + "/webhooks/telegram/webhook", timeout=10).status_code == 403
    wechat = requests.post(door.url + "/webhooks/wechat/webhook", data=b"<xml/>", timeout=10)
    assert wechat.status_code == 403  # reached the channel: no signature
    huge = requests.post(
        door.url + "/chat/api/messages", json={"message": "电" * 100_000}, timeout=10
    )
    assert huge.status_code == 413


def test_through_nginx_a_customer_chats_on_the_web_page(
    door: Nginx, stack: Stack, api: Api
) -> None:
    browser = requests.Session()
    assert browser.get(door.url + "/chat", timeout=10).status_code == 200
    replies = browser.post(
        door.url + "/chat/api/messages", json={"message": "你好"}, timeout=30
    ).json()
    assert replies and replies[0]["text"]
    history = browser.get(door.url + "/chat/api/history", timeout=10).json()
    assert [h["text"] for h in history if h["from"] == "customer"] == ["你好"]

    # a photo passes the door (its own body limit, above the messages' 64 KB) …
    photo = io.BytesIO()
    Image.effect_noise((1200, 900), 60).convert("RGB").save(photo, "JPEG", quality=95)
    assert photo.tell() > 65536
    answer = browser.post(
        door.url + "/chat/api/photos",
        data=photo.getvalue(),
        headers={"Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() and answer.json()[0]["text"]
    # … and one over the photo limit is stopped there
    too_big = browser.post(
        door.url + "/chat/api/photos",
        data=b"\xff" * (get_settings().service.media.max_bytes + 200 * 1024),
        headers={"Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert too_big.status_code == 413
