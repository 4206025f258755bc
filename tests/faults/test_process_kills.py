"""kill -9 each process of the real stack mid-conversation: the runner's supervisor restarts
it, the customer hears something polite (never silence), and afterwards every conversation
can finish with exactly one ticket and every notice is delivered exactly once.

These share the session's stack (tests/stack.py) and switch its supervision on — what
`make run` does. PostgreSQL / Redis / RabbitMQ outages belong to the production profile and
are not covered here (README, "Operations: metrics, health, faults").
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List

import pytest
import requests

from bot.core.catalog import load_catalog
from bot.core.db import session_scope
from bot.core.rasa_api import RasaClient
from bot.core.tickets.repository import TicketRepository
from bot.tools.runner import Stack
from tests.e2e.test_service_requests import asked_field
from tests.stack import Api, Customer, WebCustomer, texts


@pytest.fixture
def supervised(stack: Stack) -> Stack:
    if stack._supervisor is None:
        stack.supervise_in_background()
    return stack


def eventually(check: Callable[[], Any], timeout: float = 90.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (requests.RequestException, AssertionError):
            pass
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(every)


def restarted(stack: Stack, name: str, before: int) -> None:
    eventually(lambda: stack.restarts.get(name, 0) > before)
    stack.wait_ready()


def test_action_server_killed_mid_form(supervised: Stack, api: Api) -> None:
    customer = Customer(supervised)
    assert asked_field(customer.say("家里停电了，金平区金砂路23号2栋301")) == "phone"
    before = supervised.restarts.get("actions", 0)
    supervised.kill_process("actions")
    replies = customer.say("13812345678")
    assert "系统有点忙" in texts(replies), customer.transcript  # an apology, not silence
    restarted(supervised, "actions", before)
    summary = customer.say("13812345678")
    customer.click(summary, "确认提交")
    [ticket] = api.tickets(customer.sender)
    assert ticket["details"]["phone"] == "13812345678"


def test_rasa_killed_mid_form_web_chat(supervised: Stack, api: Api) -> None:
    """The web chat page answers a polite 503 while Rasa is down; the form continues from
    the SQL tracker store once the supervisor has brought Rasa back."""
    customer = WebCustomer(supervised)
    assert asked_field(customer.say("我要办过户")) == "account_no"
    before = supervised.restarts.get("rasa", 0)
    supervised.kill_process("rasa")
    down = customer.http.post(
        f"{customer.base}/chat/api/messages", json={"message": "0301234567890"}, timeout=60
    )
    assert down.status_code == 503
    assert load_catalog().system_messages["webchat_busy"] in down.text
    restarted(supervised, "rasa", before)
    assert asked_field(customer.say("0301234567890")) == "customer_name"


def test_console_killed_with_a_notice_owed(supervised: Stack, api: Api) -> None:
    """Staff change a ticket while the console is dead (another console, or the API of a
    back-office system writing to the same database): the restarted console delivers the
    notice — once."""
    customer = Customer(supervised)
    summary = customer.say("我家停电了，潮南区峡山街道东山路12号，电话13812345678")
    customer.click(summary, "确认提交")
    [ticket] = api.tickets(customer.sender)
    before = supervised.restarts.get("console", 0)
    supervised.kill_process("console")
    with session_scope(supervised.settings.database_url) as session:
        TicketRepository(session).update(ticket["ticket_no"], "staff1", status="in_progress")
    restarted(supervised, "console", before)

    def bot_messages() -> List[Dict[str, Any]]:
        events = RasaClient(supervised.settings).events(customer.sender)
        return [
            e
            for e in events
            if e.get("event") == "bot" and (e.get("metadata") or {}).get("kind") == "ticket_status"
        ]

    eventually(bot_messages, timeout=120)
    time.sleep(3)  # a second delivery, if any, would land now
    assert len(bot_messages()) == 1
    [notice] = [n for n in api.get("/notifications") if n["ticket_no"] == ticket["ticket_no"]]
    assert notice["state"] == "sent" and notice["attempts"] == 1
