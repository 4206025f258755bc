"""The WeChat channel in the real stack (safe mode, fake WeChat API): WeChat's pushes are
built and encrypted with wechatpy as WeChat's server would send them."""

from __future__ import annotations

import time
from typing import Any, Dict

import requests

from bot.tools.runner import Stack
from tests.e2e.channel_customers import (
    ASK,
    ASK_TOGETHER,
    PUSHES,
    msg_ids,
    openid,
    push,
    reply_content,
    webhook,
)
from tests.fakes.wechat_simulator import WeChatPushes
from tests.stack import WECHAT


def user_texts(stack: Stack, openid_: str) -> list:
    tracker: Dict[str, Any] = requests.get(
        f"http://127.0.0.1:{stack.settings.rasa_port}/conversations/wx-{openid_}/tracker",
        params={"token": stack.settings.rasa_token},
        timeout=10,
    ).json()
    return [e.get("text") for e in tracker["events"] if e["event"] == "user"]


def test_server_url_verification(stack: Stack) -> None:
    query = PUSHES.verification("echo-e2e")
    assert requests.get(webhook(stack), params=query, timeout=10).text == "echo-e2e"
    forged = {**query, "signature": "0" * 40}
    assert requests.get(webhook(stack), params=forged, timeout=10).status_code == 403


def test_encrypted_text_is_answered_passively_within_five_seconds(stack: Stack) -> None:
    customer = openid()
    started = time.monotonic()
    content = reply_content(
        push(stack, PUSHES.text(customer, "我家停电了，龙湖区长平路88号3栋502", next(msg_ids)))
    )
    assert time.monotonic() - started < 5
    assert ASK["phone"] in content
    assert user_texts(stack, customer) == ["我家停电了，龙湖区长平路88号3栋502"]


def test_voice_recognition_text_reaches_the_assistant(stack: Stack) -> None:
    customer = openid()
    content = reply_content(push(stack, PUSHES.voice(customer, "我要办过户", next(msg_ids))))
    assert ASK["account_no"] in content


def test_welcome_menu_number_starts_that_business(stack: Stack) -> None:
    customer = openid()
    welcome = reply_content(push(stack, PUSHES.subscribe(customer)))
    assert "回复 1 新装用电" in welcome
    assert ASK_TOGETHER[("customer_name", "phone")] in reply_content(
        push(stack, PUSHES.text(customer, "1", next(msg_ids)))
    )


def test_a_replayed_message_is_processed_once(stack: Stack) -> None:
    customer = openid()
    xml = PUSHES.text(customer, "我要销户", next(msg_ids))
    first = reply_content(push(stack, xml))
    assert [reply_content(push(stack, xml)) for _ in range(2)] == [first, first]
    assert user_texts(stack, customer) == ["我要销户"]


def test_forged_and_hostile_requests_are_refused_and_the_channel_stays_healthy(
    stack: Stack,
) -> None:
    query, body = PUSHES.push(PUSHES.text(openid(), "你好", next(msg_ids)))
    forged = {**query, "signature": "f" * 40}
    assert requests.post(webhook(stack), params=forged, data=body, timeout=10).status_code == 403
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        "<xml><ToUserName>gh</ToUserName><FromUserName>oBomb</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>&c;</Content><MsgId>1</MsgId></xml>"
    )
    bomb_query, _ = WeChatPushes(WECHAT["token"]).push(bomb)
    assert (
        requests.post(webhook(stack), params=bomb_query, data=bomb.encode(), timeout=10).status_code
        == 400
    )
    assert ASK["account_no"] in reply_content(
        push(stack, PUSHES.text(openid(), "我要销户", next(msg_ids)))
    )
