"""Human handover end to end: the real Rasa server, action server and console.

A web-chat customer asks for a person (mid-form, by an emergency, or by being misunderstood
twice) → the handoff is in /api/v1/handoffs → an agent claims it and replies through the JSON
API → the reply is in the customer's chat and in Rasa's tracker → hand back → the bot asks
for a rating → the rating is stored against the agent.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List

import requests

from bot.core.db import session_scope
from bot.core.handoff.repository import HandoffRepository
from bot.tools.runner import Stack
from tests.stack import API_TOKEN, Api, Customer, WebCustomer, texts

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
WAIT_S = 30


def wait_for(check: Callable[[], Any], timeout: float = WAIT_S, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Agent:
    """An agent acting through the console's JSON API."""

    def __init__(self, stack: Stack, name: str) -> None:
        self.base = f"http://127.0.0.1:{stack.settings.console_port}/api/v1/handoffs"
        self.name = name

    def act(self, handoff_id: int, action: str, **body: Any) -> Dict[str, Any]:
        response = requests.post(
            f"{self.base}/{handoff_id}/{action}",
            json={"agent": self.name, **body},
            headers=AUTH,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()


def tracker_events(stack: Stack, sender: str) -> List[Dict[str, Any]]:
    url = f"http://127.0.0.1:{stack.settings.rasa_port}/conversations/{sender}/tracker"
    return requests.get(url, params={"token": stack.settings.rasa_token}, timeout=10).json()[
        "events"
    ]


def stored_rating(stack: Stack, handoff_id: int) -> Any:
    with session_scope(stack.settings.database_url) as session:
        handoff = HandoffRepository(session).get(handoff_id)
        return handoff.rating, handoff.agent


def serve_and_rate(
    stack: Stack,
    customer: WebCustomer,
    handoff: Dict[str, Any],
    agent_name: str,
    answer: str,
    expected: int,
) -> None:
    """Claim, reply, check delivery, hand back, rate; the rating is stored on the handoff."""
    agent = Agent(stack, agent_name)
    assert agent.act(handoff["id"], "claim")["status"] == "active"
    agent.act(handoff["id"], "messages", text="您好，我是人工客服，请问有什么可以帮您？")
    shown = wait_for(
        lambda: [m for m in customer.history() if m.get("agent") == agent_name],
        what="the agent's reply in the web chat",
    )
    assert shown[0]["text"].startswith("您好，我是人工客服")
    bot_events = [e for e in tracker_events(stack, customer.sender) if e["event"] == "bot"]
    assert bot_events[-1]["metadata"]["agent"] == agent_name

    # While the agent has it, the customer's messages are recorded, and the bot stays quiet.
    assert customer.say("好的，我家户号是0301234567") == []
    assert any(
        e["event"] == "user" and "0301234567" in e.get("text", "")
        for e in tracker_events(stack, customer.sender)
    )

    agent.act(handoff["id"], "handback")
    question = wait_for(
        lambda: [m for m in customer.history() if "1～5" in m["text"]], what="the rating question"
    )
    assert [b["payload"] for b in question[-1]["buttons"]] == ["5", "4", "3", "2", "1"]
    thanks = customer.say(answer)
    assert f"{expected} 分" in texts(thanks), "\n".join(
        str((e["event"], e.get("name") or e.get("text"), e.get("value")))
        for e in tracker_events(stack, customer.sender)[-25:]
    )
    assert stored_rating(stack, handoff["id"]) == (expected, agent_name)


def test_request_human_mid_form_agent_replies_and_gets_rated(stack: Stack, api: Api) -> None:
    customer = WebCustomer(stack)
    customer.say("我要申请增容")
    replies = customer.say("转人工")
    assert "人工客服" in texts(replies)
    handoff = wait_for(lambda: api.handoffs(customer.sender), what="the handoff")[0]
    assert (handoff["reason"], handoff["status"], handoff["channel"]) == (
        "request_human",
        "waiting",
        "webchat",
    )
    again = customer.say("还要等多久？")
    assert "前面还有" in texts(again), again  # queue position, not silence
    serve_and_rate(stack, customer, handoff, "王芳", "非常满意", 5)


def test_emergency_goes_to_the_front_of_the_queue(stack: Stack, api: Api) -> None:
    waiting = WebCustomer(stack)
    waiting.say("转人工")
    customer = WebCustomer(stack)
    customer.say("快来人！路边的电线断了掉在地上，还在冒火花")
    customer.say("金平区中山路120号门口")
    replies = customer.say("13600001111")
    assert "人工客服" in texts(replies)
    emergency = api.handoffs(customer.sender)[0]
    normal = api.handoffs(waiting.sender)[0]
    assert (emergency["reason"], emergency["priority"]) == ("emergency", "urgent")
    assert emergency["queue_position"] < normal["queue_position"]
    serve_and_rate(stack, customer, emergency, "李强", "4", 4)
    Agent(stack, "李强").act(normal["id"], "claim")
    Agent(stack, "李强").act(normal["id"], "close")


def test_two_misunderstandings_hand_over_and_get_rated(stack: Stack, api: Api) -> None:
    customer = WebCustomer(stack)
    customer.say("你好")
    customer.say("asdfghjkl")
    replies = customer.say("？？？")
    assert "人工客服" in texts(replies)
    handoff = api.handoffs(customer.sender)[0]
    assert handoff["reason"] == "fallback"
    serve_and_rate(stack, customer, handoff, "陈晨", "不满意", 2)


def test_rest_customer_reply_is_in_the_tracker(stack: Stack, customer: Customer, api: Api) -> None:
    """A REST-channel customer: the agent's reply is part of the conversation in Rasa."""
    customer.say("转人工")
    handoff = api.handoffs(customer.sender)[0]
    assert handoff["channel"] == "rest"
    agent = Agent(stack, "王芳")
    agent.act(handoff["id"], "claim")
    agent.act(handoff["id"], "messages", text="REST 客户您好")
    events = tracker_events(stack, customer.sender)
    assert any(
        e["event"] == "bot"
        and e.get("text") == "REST 客户您好"
        and e["metadata"].get("agent") == "王芳"
        for e in events
    )
    agent.act(handoff["id"], "close")
    assert "电费" in texts(customer.say("查电费")) or customer.transcript[-1]["bot"]
