"""The WeChat channel at handler level: WeChat's pushes built (and encrypted) with wechatpy as
WeChat's server would, a fake Rasa (`on_new_message`) and a fake WeChat API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any, ClassVar, Dict, Iterator, List

import pytest
from rasa.core.channels.channel import UserMessage

from bot.plugins.channels.wechat import (
    WeChatClientAt,
    WeChatEndpoint,
    WeChatInput,
    WeChatOutput,
    WeChatSettings,
)
from bot.plugins.channels.wechat_turns import NumberedMenus, render_replies
from tests.fakes.wechat_simulator import FakeWeChatApi, WeChatPushes

TOKEN = "intake-test-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx1234567890abcdef"
OPENID = "oCustomer0001"
msg_ids = itertools.count(7_000_000_000_000_000_001)

# The sample of WeChat's message encryption guide (WXBizMsgCrypt "Sample"): token, key,
# AppID, and a pushed text message "abcdteT" with its msg_signature.
DOC = {
    "token": "spamtest",
    "aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "app_id": "wx2c2769f8efd9abc2",
    "timestamp": "1409735669",
    "nonce": "1320562132",
    "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
    "encrypt": (
        "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGH"
        "QHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tED"
        "YsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGp"
        "y0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1i"
        "xrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
    ),
}

XML_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE xml [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<xml><ToUserName>gh</ToUserName><FromUserName>oBomb</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&d;</Content><MsgId>1</MsgId></xml>"""


class FakeRasa:
    """Answers every message with `reply(text)` after `delay_s`; records what it was sent."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.received: List[UserMessage] = []

    @staticmethod
    def reply(text: str) -> Dict[str, Any]:
        if text == "提交":
            return {
                "text": "请确认以下信息：……",
                "buttons": [
                    {"title": "确认提交", "payload": "/affirm"},
                    {"title": "修改", "payload": "/deny"},
                ],
            }
        return {"text": f"收到：{text}"}

    async def __call__(self, message: UserMessage) -> None:
        self.received.append(message)
        await asyncio.sleep(self.delay_s)
        await message.output_channel.send_response(message.sender_id, self.reply(message.text))

    @property
    def texts(self) -> List[str]:
        return [m.text for m in self.received]


@pytest.fixture
def api() -> Iterator[FakeWeChatApi]:
    server = FakeWeChatApi().start()
    yield server
    server.stop()


def make_endpoint(
    rasa: FakeRasa,
    api: FakeWeChatApi,
    aes_key: str = "",
    budget_s: float = 2.0,
    token: str = TOKEN,
    app_id: str = APP_ID,
) -> WeChatEndpoint:
    settings = WeChatSettings(
        token=token,
        app_id=app_id,
        app_secret="secret",
        encoding_aes_key=aes_key,
        api_base_url=api.base_url,
        reply_budget_s=budget_s,
    )
    return WeChatEndpoint(settings, rasa, WeChatOutput(WeChatClientAt(settings), NumberedMenus()))


async def send(endpoint: WeChatEndpoint, pushes: WeChatPushes, xml: str) -> Any:
    query, body = pushes.push(xml)
    return await endpoint.receive(query, body)


@pytest.mark.asyncio
async def test_server_url_verification_echoes_echostr_only_when_signed(api: FakeWeChatApi) -> None:
    endpoint = make_endpoint(FakeRasa(), api)
    query = WeChatPushes(TOKEN).verification("echo-42")
    assert endpoint.verify(query).body == "echo-42"
    forged = {**query, "signature": "0" * 40}
    assert endpoint.verify(forged).status == 403


@pytest.mark.asyncio
async def test_plain_text_is_answered_passively(api: FakeWeChatApi) -> None:
    rasa, pushes = FakeRasa(), WeChatPushes(TOKEN)
    answer = await send(
        make_endpoint(rasa, api), pushes, pushes.text(OPENID, "我家停电了", next(msg_ids))
    )
    reply = pushes.read_reply(answer.body)
    assert (answer.status, reply["ToUserName"], reply["MsgType"]) == (200, OPENID, "text")
    assert reply["Content"] == "收到：我家停电了"
    assert (
        rasa.received[0].sender_id == f"wx-{OPENID}" and rasa.received[0].input_channel == "wechat"
    )
    assert api.sent == []


@pytest.mark.asyncio
async def test_safe_mode_message_encrypted_by_wechatpy_gets_an_encrypted_reply(
    api: FakeWeChatApi,
) -> None:
    rasa, pushes = FakeRasa(), WeChatPushes(TOKEN, APP_ID, AES_KEY)
    query, body = pushes.push(pushes.text(OPENID, "查电费", next(msg_ids)))
    assert "查电费".encode() not in body and query["encrypt_type"] == "aes"
    answer = await make_endpoint(rasa, api, aes_key=AES_KEY).receive(query, body)
    assert "<Encrypt>" in answer.body and "收到" not in answer.body
    assert pushes.read_reply(answer.body)["Content"] == "收到：查电费"


@pytest.mark.asyncio
async def test_the_sample_of_wechats_encryption_guide_is_accepted(
    api: FakeWeChatApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.plugins.channels.wechat as channel

    # The guide's push was signed years ago: now is when it was signed (else: a stale replay).
    monkeypatch.setattr(channel.time, "time", lambda: float(DOC["timestamp"]) + 10)
    rasa = FakeRasa()
    pushes = WeChatPushes(DOC["token"], DOC["app_id"], DOC["aes_key"])
    endpoint = make_endpoint(
        rasa, api, aes_key=DOC["aes_key"], token=DOC["token"], app_id=DOC["app_id"]
    )
    query = {
        "signature": pushes.signature(DOC["timestamp"], DOC["nonce"]),
        "timestamp": DOC["timestamp"],
        "nonce": DOC["nonce"],
        "encrypt_type": "aes",
        "msg_signature": DOC["msg_signature"],
    }
    body = f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{DOC['encrypt']}]]></Encrypt></xml>"
    answer = await endpoint.receive(query, body.encode())
    assert answer.status == 200
    assert rasa.received[0].text == "abcdteT"
    assert rasa.received[0].sender_id == "wx-oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert pushes.read_reply(answer.body)["Content"] == "收到：abcdteT"
    tampered = {**query, "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fb"}
    assert (await endpoint.receive(tampered, body.encode())).status == 403
    # the same signed push again: a replay
    assert (await endpoint.receive(query, body.encode())).status == 403


@pytest.mark.parametrize("aes_key", ["", AES_KEY], ids=["plain", "safe"])
@pytest.mark.asyncio
async def test_forged_signature_is_refused_with_403_and_not_processed(
    api: FakeWeChatApi, aes_key: str
) -> None:
    rasa, pushes = FakeRasa(), WeChatPushes(TOKEN, APP_ID, aes_key)
    query, body = pushes.push(pushes.text(OPENID, "你好", next(msg_ids)))
    forged = WeChatPushes("not-the-token").signature(query["timestamp"], query["nonce"])
    answer = await make_endpoint(rasa, api, aes_key=aes_key).receive(
        {**query, "signature": forged}, body
    )
    assert answer.status == 403 and rasa.received == []


@pytest.mark.asyncio
async def test_a_retried_message_is_processed_once_and_gets_the_same_reply(
    api: FakeWeChatApi,
) -> None:
    rasa, pushes = FakeRasa(), WeChatPushes(TOKEN)
    endpoint = make_endpoint(rasa, api)
    xml = pushes.text(OPENID, "我要过户", next(msg_ids))
    answers = [await send(endpoint, pushes, xml) for _ in range(3)]  # WeChat's three tries
    assert rasa.texts == ["我要过户"]
    assert [pushes.read_reply(a.body)["Content"] for a in answers] == ["收到：我要过户"] * 3
    await endpoint.turns.drain()
    assert api.sent == []  # never also through the API


@pytest.mark.asyncio
async def test_retries_arriving_while_the_first_try_waits_share_one_processing(
    api: FakeWeChatApi,
) -> None:
    rasa, pushes = FakeRasa(delay_s=0.3), WeChatPushes(TOKEN)
    endpoint = make_endpoint(rasa, api)
    xml = pushes.text(OPENID, "我要销户", next(msg_ids))
    answers = await asyncio.gather(*(send(endpoint, pushes, xml) for _ in range(3)))
    assert rasa.texts == ["我要销户"]
    assert {pushes.read_reply(a.body)["Content"] for a in answers} == {"收到：我要销户"}


@pytest.mark.asyncio
async def test_a_retry_after_delivery_through_the_api_is_not_answered_again(
    api: FakeWeChatApi,
) -> None:
    rasa, pushes = FakeRasa(delay_s=0.4), WeChatPushes(TOKEN)
    endpoint = make_endpoint(rasa, api, budget_s=0.1)
    xml = pushes.text(OPENID, "我要移表", next(msg_ids))
    assert (await send(endpoint, pushes, xml)).body == "success"
    await endpoint.turns.drain()
    assert (await send(endpoint, pushes, xml)).body == "success"
    await endpoint.turns.drain()
    assert rasa.texts == ["我要移表"] and api.messages_to(OPENID) == ["收到：我要移表"]


@pytest.mark.asyncio
async def test_a_retry_on_a_second_server_waits_for_the_first_and_is_not_processed_twice(
    api: FakeWeChatApi,
) -> None:
    """Two Rasa servers (two endpoints, one shared store): the first is slow and alive; the
    retry reaching the second waits, then says "success"; the answer arrives once."""
    rasa, pushes = FakeRasa(delay_s=1.5), WeChatPushes(TOKEN)
    first, second = make_endpoint(rasa, api, budget_s=0.1), make_endpoint(rasa, api, budget_s=0.5)
    first.claims.busy_s = second.claims.busy_s = 0.6  # refreshed every 0.2 s while it works
    xml = pushes.text(OPENID, "我要改名", next(msg_ids))
    assert (await send(first, pushes, xml)).body == "success"  # too slow: the API will answer
    assert (await send(second, pushes, xml)).body == "success"  # the first is still on it
    await first.turns.drain()
    await second.turns.drain()
    for _ in range(100):  # the first server's answer goes out through the API, in the background
        if api.messages_to(OPENID):
            break
        await asyncio.sleep(0.05)
    assert rasa.texts == ["我要改名"]
    assert api.messages_to(OPENID) == ["收到：我要改名"]
    assert (await send(second, pushes, xml)).body == "success"  # done: dropped at once
    assert rasa.texts == ["我要改名"]


@pytest.mark.asyncio
async def test_a_message_whose_server_died_in_mid_turn_is_taken_over_by_the_retry(
    api: FakeWeChatApi,
) -> None:
    """The first server claimed the message and was killed (its claim is no longer refreshed):
    WeChat's retry reaches the second, which waits for the claim to run out and answers."""
    from bot.core.stores import shared_store

    rasa, pushes = FakeRasa(), WeChatPushes(TOKEN)
    second = make_endpoint(rasa, api, budget_s=2.0)
    second.claims.busy_s = 0.3
    msg_id = next(msg_ids)
    xml = pushes.text(OPENID, "电话是13800000000", msg_id)
    assert shared_store().claim(f"wx-msg:msg:{msg_id}", 0.3) is None  # the killed server's claim
    answer = await send(second, pushes, xml)
    assert pushes.read_reply(answer.body)["Content"] == "收到：电话是13800000000"
    assert rasa.texts == ["电话是13800000000"]


@pytest.mark.asyncio
async def test_a_slow_answer_says_success_at_once_and_arrives_through_the_customer_service_api(
    api: FakeWeChatApi,
) -> None:
    rasa, pushes = FakeRasa(delay_s=0.6), WeChatPushes(TOKEN, APP_ID, AES_KEY)
    endpoint = make_endpoint(rasa, api, aes_key=AES_KEY, budget_s=0.2)
    started = time.monotonic()
    answer = await send(endpoint, pushes, pushes.text(OPENID, "我家停电了", next(msg_ids)))
    assert answer.body == "success" and time.monotonic() - started < 0.5
    await endpoint.turns.drain()
    assert api.messages_to(OPENID) == ["收到：我家停电了"]
    await send(endpoint, pushes, pushes.text(OPENID, "还没来电", next(msg_ids)))
    await endpoint.turns.drain()
    assert api.messages_to(OPENID) == ["收到：我家停电了", "收到：还没来电"]
    assert api.token_requests == 1  # the access token is cached between calls


@pytest.mark.asyncio
async def test_buttons_become_numbered_lines_and_the_number_becomes_the_payload(
    api: FakeWeChatApi,
) -> None:
    rasa, pushes = FakeRasa(), WeChatPushes(TOKEN)
    endpoint = make_endpoint(rasa, api)
    answer = await send(endpoint, pushes, pushes.text(OPENID, "提交", next(msg_ids)))
    content = pushes.read_reply(answer.body)["Content"]
    assert content.endswith("回复 1 确认提交\n回复 2 修改")
    await send(endpoint, pushes, pushes.text(OPENID, "１", next(msg_ids)))  # full-width digit
    await send(endpoint, pushes, pushes.text(OPENID, "1", next(msg_ids)))  # last answer had no menu
    assert rasa.texts == ["提交", "/affirm", "1"]


@pytest.mark.asyncio
async def test_voice_uses_wechats_speech_recognition(api: FakeWeChatApi) -> None:
    rasa, pushes = FakeRasa(), WeChatPushes(TOKEN)
    endpoint = make_endpoint(rasa, api)
    answer = await send(endpoint, pushes, pushes.voice(OPENID, "我要报修", next(msg_ids)))
    assert pushes.read_reply(answer.body)["Content"] == "收到：我要报修"
    unheard = await send(endpoint, pushes, pushes.voice(OPENID, "", next(msg_ids)))
    assert "没能听清" in pushes.read_reply(unheard.body)["Content"]
    assert rasa.texts == ["我要报修"]


@pytest.mark.asyncio
async def test_subscribing_gets_the_welcome_and_a_numbered_menu_of_services(
    api: FakeWeChatApi,
) -> None:
    rasa, pushes = FakeRasa(), WeChatPushes(TOKEN)
    endpoint = make_endpoint(rasa, api)
    answer = await send(endpoint, pushes, pushes.subscribe("oNewFollower"))
    content = pushes.read_reply(answer.body)["Content"]
    assert (
        content.startswith("您好，欢迎关注")
        and "回复 1 新装用电" in content
        and "故障报修" in content
    )
    assert rasa.received == []
    await send(endpoint, pushes, pushes.text("oNewFollower", "1", next(msg_ids)))
    assert rasa.texts == ["/apply_new_connection"]


@pytest.mark.parametrize("aes_key", ["", AES_KEY], ids=["plain", "safe"])
@pytest.mark.asyncio
async def test_an_xml_bomb_is_rejected_and_the_channel_keeps_working(
    api: FakeWeChatApi, aes_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    rasa, pushes = FakeRasa(), WeChatPushes(TOKEN, APP_ID, aes_key)
    endpoint = make_endpoint(rasa, api, aes_key=aes_key)
    query, body = pushes.push(XML_BOMB.decode())
    started = time.monotonic()
    assert (await endpoint.receive(query, body if aes_key else XML_BOMB)).status == 400
    assert time.monotonic() - started < 1 and rasa.received == []
    assert "DTDForbidden" in caplog.text  # refused by defusedxml before any parser expands it
    answer = await send(endpoint, pushes, pushes.text(OPENID, "你好", next(msg_ids)))
    assert pushes.read_reply(answer.body)["Content"] == "收到：你好"


@pytest.mark.asyncio
async def test_a_rasa_failure_still_answers_the_customer(api: FakeWeChatApi) -> None:
    async def broken(message: UserMessage) -> None:
        raise RuntimeError("action server down")

    pushes = WeChatPushes(TOKEN)
    endpoint = make_endpoint(FakeRasa(), api)
    endpoint.on_new_message = broken
    answer = await send(endpoint, pushes, pushes.text(OPENID, "你好", next(msg_ids)))
    assert "系统有点忙" in pushes.read_reply(answer.body)["Content"]


@pytest.mark.asyncio
async def test_without_a_token_the_channel_is_off_with_one_log_line_and_answers_503(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WECHAT_TOKEN", "${WECHAT_TOKEN}")  # unexpanded placeholder = unset
    with caplog.at_level(logging.INFO, logger="bot.plugins.channels.wechat"):
        channel = WeChatInput.from_credentials(None)
    assert [r.getMessage() for r in caplog.records] == ["WeChat channel off: WECHAT_TOKEN not set"]
    blueprint = channel.blueprint(FakeRasa())
    handlers = {(r.uri, m): r.handler for r in blueprint._future_routes for m in r.methods}

    class Request:
        args: ClassVar[Dict[str, str]] = {}
        body = b"<xml/>"

    response = await handlers[("/webhook", "POST")](Request())
    assert response.status == 503
    assert channel.get_output_channel() is None


def test_render_joins_texts_and_numbers_buttons_across_messages() -> None:
    text, choices = render_replies(
        [
            {"text": "第一段", "buttons": [{"title": "是", "payload": "/affirm"}]},
            {"text": "第二段", "buttons": [{"title": "否", "payload": "/deny"}]},
        ],
        "回复 {number} {title}",
    )
    assert text == "第一段\n\n第二段\n\n回复 1 是\n回复 2 否"
    assert choices == {"1": "/affirm", "2": "/deny"}


def test_an_invalid_credential_is_retried_once_not_forever(api: FakeWeChatApi) -> None:
    """wechatpy refreshes the token and resends on 40001 without limit; the client here
    refreshes once, tries once more, then fails (the notice outbox records and retries)."""
    from wechatpy.exceptions import WeChatClientException

    settings = WeChatSettings(
        token=TOKEN, app_id=APP_ID, app_secret="secret", api_base_url=api.base_url
    )
    api.failures = 10**6
    api.failure = {"errcode": 40001, "errmsg": "invalid credential"}
    with pytest.raises(WeChatClientException):
        WeChatClientAt(settings).message.send_text(OPENID, "您的工单已处理完毕")
    assert api.token_requests == 2
