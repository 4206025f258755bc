"""Outages of the services the production profile depends on, as the stack sees them: its
PostgreSQL, Redis and RabbitMQ connections go through proxies the test cuts and restores
(tests/fakes/tcp_proxy.py), so the machine's own services are never touched.

For each: what the customer sees while it is down, and afterwards that the conversation
finishes with exactly one ticket and nothing was processed twice. Telegram resends an update
that did not get a 200 — the tests do the same, as Telegram would.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, List

import pytest
import requests

from bench.stack import throwaway_prod_stack
from bot.core.catalog import load_catalog
from bot.core.rasa_api import RasaClient
from bot.tools.runner import ProductionStack
from tests.e2e.channel_customers import UPDATE_IDS
from tests.fakes.fake_telegram import FakeBotApi, text_update
from tests.fakes.tcp_proxy import CuttableProxy
from tests.prod.test_prod_profile import DoorCustomer, prod_environment, tickets
from tests.stack import MODEL

OUTAGE_S = 30
BUSY = load_catalog().system_messages["busy"]


@pytest.fixture(scope="module")
def proxies() -> Iterator[Dict[str, CuttableProxy]]:
    started = {
        "postgresql": CuttableProxy(("127.0.0.1", 5432)).start(),
        "redis": CuttableProxy(("127.0.0.1", 6379)).start(),
        "rabbitmq": CuttableProxy(("127.0.0.1", 5672)).start(),
    }
    yield started
    for proxy in started.values():
        proxy.stop()


@pytest.fixture(scope="module")
def prod(fake_telegram: FakeBotApi, proxies: Dict[str, CuttableProxy]) -> Iterator[ProductionStack]:
    env = {
        **prod_environment(fake_telegram),
        "RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{proxies['rabbitmq'].port}/",
    }
    with throwaway_prod_stack(
        str(MODEL),
        "intake-prod-faults-",
        env,
        postgres=f"postgresql://postgres@127.0.0.1:{proxies['postgresql'].port}",
        redis_url=f"redis://127.0.0.1:{proxies['redis'].port}/0",
    ) as stack:
        stack.supervise_in_background()
        try:
            yield stack
        finally:
            for proxy in proxies.values():
                proxy.restore()  # the clean-up needs them


def telegram_retries(customer: DoorCustomer, update: Dict[str, Any], within_s: float) -> int:
    """Resend `update` until it gets a 200, as Telegram does; the answer code."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            code = customer.send(update).status_code
        except requests.RequestException:
            code = 599
        if code == 200 or time.monotonic() > deadline:
            return code
        time.sleep(2)


def user_texts(stack: ProductionStack, sender: str) -> List[str]:
    return [
        e.get("text") for e in RasaClient(stack.settings).events(sender) if e.get("event") == "user"
    ]


def during_outage(
    prod: ProductionStack,
    proxy: CuttableProxy,
    customer: DoorCustomer,
    fake: FakeBotApi,
    text: str,
) -> Dict[str, Any]:
    """Cut `proxy`, send `text` (once), wait out the outage, restore, let Telegram retry."""
    update = text_update(next(UPDATE_IDS), customer.chat_id, text)
    before = len(fake.sent(chat_id=customer.chat_id))
    proxy.cut()
    try:
        try:
            first = customer.send(update).status_code
        except requests.RequestException:
            first = 599
        seen_during = fake.sent(chat_id=customer.chat_id)[before:]
        time.sleep(max(0.0, OUTAGE_S - 2))
    finally:
        proxy.restore()
    final = telegram_retries(customer, update, within_s=90) if first != 200 else 200
    apologised = any(BUSY in (m.get("text") or "") for m in seen_during)
    if apologised:  # the customer was asked to try again, and does
        customer.say(text)
    return {
        "apologised": apologised,
        "first": first,
        "final": final,
        "said_during": [m.get("text") for m in seen_during],
        "said_after": [m.get("text") for m in fake.sent(chat_id=customer.chat_id)[before:]],
    }


def finish(customer: DoorCustomer, prod: ProductionStack) -> List[Dict[str, Any]]:
    """Press 确认提交 on the summary the phone answer brought."""
    customer.press(customer.fake.sent(chat_id=customer.chat_id), "确认提交")
    return tickets(prod, customer.sender_id)


@pytest.mark.parametrize("service", ["redis", "rabbitmq", "postgresql"])
def test_an_outage_mid_form_loses_nothing(
    prod: ProductionStack,
    proxies: Dict[str, CuttableProxy],
    fake_telegram: FakeBotApi,
    service: str,
) -> None:
    customer = DoorCustomer(prod, fake_telegram)
    customer.say("家里停电了，龙湖区长平路88号3栋502")
    seen = during_outage(prod, proxies[service], customer, fake_telegram, "13812345678")
    print(service, seen)
    assert seen["final"] == 200, seen
    # Taken (200) means answered; otherwise Telegram resends it once the service is back.
    assert seen["said_during"] or seen["first"] != 200, "silence while the update was taken"
    assert "请问您要办理什么业务" not in str(seen["said_during"]), "the form was forgotten"
    [ticket] = finish(customer, prod)
    assert ticket["details"]["phone"] == "13812345678"
    assert user_texts(prod, customer.sender_id).count("13812345678") == 1, seen
