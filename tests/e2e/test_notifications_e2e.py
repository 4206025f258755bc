"""Ticket notifications end to end: staff change a status through the JSON API, the console
delivers the notice through Rasa into the customer's channel — the fake Telegram Bot API, the
fake WeChat customer-service API, or the web chat page's history — and records how it went.

The stack retries a failed notice after 1 s, twice (tests/stack.py NOTICE_RETRY_AFTER_S).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Callable, Dict, List, Tuple

import requests

from bot.core import intake
from bot.tools.runner import Stack
from tests.e2e.channel_customers import (
    ASK,
    ASK_TOGETHER,
    PUSHES,
    TelegramCustomer,
    msg_ids,
    openid,
    push,
)
from tests.fakes.fake_telegram import FakeBotApi
from tests.fakes.wechat_simulator import FakeWeChatApi
from tests.stack import NOTICE_RETRY_AFTER_S, Api, WebCustomer

FAULT = {"address": "金平区东墩路22号", "phone": "13812345678", "description": "家里整屋没电"}
WECHAT_ANSWERS = {
    "address": "金平区东墩路22号5栋301",
    "phone": "13812345678",
    "description": "家里整屋没电，邻居有电",
}


def wait_for_notices(
    api: Api, ticket_no: str, done: Callable[[List[Dict[str, Any]]], bool], timeout: float = 30
) -> Dict[str, Any]:
    """The ticket (with notifications) once `done(notifications)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        ticket = api.get(f"/tickets/{ticket_no}")
        if done(ticket["notifications"]):
            return ticket
        assert time.monotonic() < deadline, (
            f"notifications never settled: {ticket['notifications']}"
        )
        time.sleep(0.2)


def all_sent(count: int) -> Callable[[List[Dict[str, Any]]], bool]:
    return lambda notices: len(notices) == count and all(n["state"] == "sent" for n in notices)


def bot_texts(stack: Stack, conversation_id: str) -> List[str]:
    tracker = requests.get(
        f"http://127.0.0.1:{stack.settings.rasa_port}/conversations/{conversation_id}/tracker",
        params={"token": stack.settings.rasa_token},
        timeout=10,
    ).json()
    return [e.get("text") for e in tracker["events"] if e["event"] == "bot"]


def telegram_customer_with_ticket(
    stack: Stack, fake_telegram: FakeBotApi
) -> Tuple[TelegramCustomer, str]:
    """A Telegram customer who has chatted (the tracker knows the channel) and their fault ticket."""
    customer = TelegramCustomer(stack, fake_telegram)
    assert customer.say("你好")
    return customer, intake.file_request(
        "fault_repair", FAULT, customer.sender_id, "telegram"
    ).ticket_no


def test_a_telegram_customer_hears_each_announced_status(
    stack: Stack, fake_telegram: FakeBotApi, api: Api
) -> None:
    customer, ticket_no = telegram_customer_with_ticket(stack, fake_telegram)
    before = len(fake_telegram.sent(chat_id=customer.chat_id))

    api.patch_ticket(ticket_no, status="assigned", assignee="agent1")
    fake_telegram.wait_for("sendMessage", before + 1, chat_id=customer.chat_id)
    api.patch_ticket(ticket_no, status="resolved")
    pushed = fake_telegram.wait_for("sendMessage", before + 2, chat_id=customer.chat_id)[before:]

    assert [m["text"] for m in pushed] == [
        f"您的故障报修工单{ticket_no}已转交抢修处理，我们会尽快跟进。",
        f"您的故障报修工单{ticket_no}已处理完毕。如还有问题，直接回复这里就行。",
    ]
    ticket = wait_for_notices(api, ticket_no, all_sent(2))
    assert [h["action"] for h in ticket["history"]].count("notified") == 2
    assert [m["text"] for m in pushed] == bot_texts(stack, customer.sender_id)[
        -2:
    ]  # in the transcript


def test_a_wechat_customer_files_a_fault_and_hears_it_is_resolved(
    stack: Stack, wechat_api: FakeWeChatApi, api: Api
) -> None:
    customer = openid()
    content = converse(stack, wechat_api, customer, "停电了，整屋都没电")
    for _ in range(6):
        if "确认提交" in content:
            break
        joint = [fields for fields, ask in ASK_TOGETHER.items() if ask in content]
        asked = joint[0] if joint else [next(name for name, ask in ASK.items() if ask in content)]
        answer = "，".join(WECHAT_ANSWERS[name] for name in asked)
        content = converse(stack, wechat_api, customer, answer)
    number = re.search(r"回复 (\d+) 确认提交", content)
    assert number, content
    assert "GD" in converse(stack, wechat_api, customer, number.group(1))
    [ticket] = api.tickets(f"wx-{customer}")
    assert (ticket["channel"], ticket["category"]) == ("wechat", "fault_repair")
    before = len(wechat_api.messages_to(customer))

    api.patch_ticket(ticket["ticket_no"], status="resolved")

    pushed = wechat_api.wait_for(customer, before + 1)[before:]
    assert pushed == [
        f"您的故障报修工单{ticket['ticket_no']}已处理完毕。如还有问题，直接回复这里就行。"
    ]
    wait_for_notices(api, ticket["ticket_no"], all_sent(1))


def converse(stack: Stack, wechat_api: FakeWeChatApi, customer: str, text: str) -> str:
    """The answer to one message: the passive reply, or the customer-service message that
    follows when the assistant took longer than WeChat waits."""
    before = len(wechat_api.messages_to(customer))
    response = push(stack, PUSHES.text(customer, text, next(msg_ids)))
    assert response.status_code == 200, response.text
    if response.text != "success":
        return PUSHES.read_reply(response.text)["Content"]
    return wechat_api.wait_for(customer, before + 1)[before]


def test_a_failed_telegram_send_is_recorded_and_retried(
    stack: Stack, fake_telegram: FakeBotApi, api: Api
) -> None:
    customer, ticket_no = telegram_customer_with_ticket(stack, fake_telegram)
    before = len(fake_telegram.sent(chat_id=customer.chat_id))
    fake_telegram.fail_next("sendMessage", 1)

    api.patch_ticket(ticket_no, status="in_progress")

    [notice] = wait_for_notices(api, ticket_no, all_sent(1))["notifications"]
    assert notice["attempts"] == 2 and "Bad Gateway" in notice["last_error"]
    pushed = fake_telegram.sent(chat_id=customer.chat_id)[before:]
    assert [m["text"] for m in pushed] == [notice["text"]]  # once, despite the retry
    assert bot_texts(stack, customer.sender_id).count(notice["text"]) == 1


def test_a_notice_wechat_keeps_refusing_ends_failed_and_listed_for_staff(
    stack: Stack, wechat_api: FakeWeChatApi, api: Api
) -> None:
    customer = openid()
    assert converse(stack, wechat_api, customer, "你好")
    ticket_no = intake.file_request("fault_repair", FAULT, f"wx-{customer}", "wechat").ticket_no
    before = len(wechat_api.messages_to(customer))
    wechat_api.failures = 100
    try:
        api.patch_ticket(ticket_no, status="resolved")
        ticket = wait_for_notices(api, ticket_no, lambda n: n and n[0]["state"] == "failed")
    finally:
        wechat_api.failures = 0
    [notice] = ticket["notifications"]
    assert notice["attempts"] == len(NOTICE_RETRY_AFTER_S) + 1
    assert "45015" in notice["last_error"]
    assert ticket["history"][-1]["action"] == "notify_failed"
    assert ticket_no in [n["ticket_no"] for n in api.get("/notifications", state="failed")]
    assert wechat_api.messages_to(customer)[before:] == []
    assert notice["text"] not in bot_texts(
        stack, f"wx-{customer}"
    )  # a failed send is not in the transcript


def test_a_web_chat_customer_sees_the_notice_in_the_page_history(stack: Stack, api: Api) -> None:
    sender = f"web-{uuid.uuid4().hex}"
    ticket_no = intake.file_request("fault_repair", FAULT, sender, "webchat").ticket_no

    api.patch_ticket(ticket_no, status="resolved")

    wait_for_notices(api, ticket_no, all_sent(1))
    history = WebCustomer(stack, sender).history()
    assert [(m["from"], m["text"]) for m in history] == [
        ("bot", f"您的故障报修工单{ticket_no}已处理完毕。如还有问题，直接回复这里就行。")
    ]
