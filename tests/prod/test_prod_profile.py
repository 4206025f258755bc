"""The production profile, for real: two Rasa servers and two action servers behind Debian's
nginx, PostgreSQL for tickets and trackers, Redis for the conversation locks and every shared
store, RabbitMQ as the event broker (bench/stack.py `throwaway_prod_stack`: a database, a
Redis key prefix and a queue of its own, removed afterwards)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List

import pytest
import requests

from bench.load import drive
from bench.stack import queue_length, throwaway_prod_stack
from bot.core.rasa_api import RasaClient
from bot.plugins.channels.telegram import SECRET_HEADER
from bot.tools.runner import ProductionStack
from tests.e2e.channel_customers import UPDATE_IDS, TelegramCustomer
from tests.e2e.test_service_requests import asked_field
from tests.fakes.fake_telegram import TOKEN as TELEGRAM_TOKEN
from tests.fakes.fake_telegram import FakeBotApi, text_update
from tests.stack import API_TOKEN, MODEL, TELEGRAM_SECRET


def prod_environment(fake_telegram: FakeBotApi) -> Dict[str, str]:
    """What a production-profile test stack needs: the API token, no rate limits, Telegram
    pointed at the fake (fails the test when there is no trained model)."""
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` (make test does)")
    return {
        "INTAKE_API_TOKEN": API_TOKEN,
        "INTAKE_RATE_LIMITS": "off",
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "TELEGRAM_API_BASE_URL": fake_telegram.base_url,
    }


@pytest.fixture(scope="module")
def prod(fake_telegram: FakeBotApi) -> Iterator[ProductionStack]:
    env = prod_environment(fake_telegram)
    with throwaway_prod_stack(str(MODEL), "intake-prod-", env) as stack:
        stack.supervise_in_background()
        yield stack


@dataclass
class DoorCustomer(TelegramCustomer):
    """A Telegram user whose updates come in through nginx, as on the internet."""

    def send(self, update: Dict[str, Any], secret: Any = TELEGRAM_SECRET) -> requests.Response:
        assert isinstance(self.stack, ProductionStack) and self.stack.door is not None
        return requests.post(
            f"{self.stack.door.url}/webhooks/telegram/webhook",
            json=update,
            headers={SECRET_HEADER: secret},
            timeout=60,
        )


def tickets(stack: ProductionStack, conversation_id: str) -> List[Dict[str, Any]]:
    response = requests.get(
        f"http://127.0.0.1:{stack.settings.console_port}/api/v1/tickets",
        params={"conversation_id": conversation_id},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def texts(replies: List[Dict[str, Any]]) -> str:
    return "\n".join(str(r.get("text", "")) for r in replies)


def test_a_ticket_through_the_door_lands_in_postgresql_and_the_events_in_rabbitmq(
    prod: ProductionStack, fake_telegram: FakeBotApi
) -> None:
    assert prod.settings.database_url.startswith("postgresql://")
    before = queue_length(prod.settings.rabbitmq_url, prod.settings.rabbitmq_queue)
    customer = DoorCustomer(prod, fake_telegram)
    summary = customer.say("我家停电了，潮南区峡山街道东山路12号，电话13812345678")
    customer.press(summary, "确认提交")
    [ticket] = tickets(prod, customer.sender_id)
    assert ticket["category"] == "fault_repair" and ticket["details"]["phone"] == "13812345678"
    assert queue_length(prod.settings.rabbitmq_url, prod.settings.rabbitmq_queue) > before


def test_a_retried_update_sent_to_both_servers_is_processed_once(
    prod: ProductionStack, fake_telegram: FakeBotApi
) -> None:
    """Telegram resends an update it got no answer for; nginx may give it to the other server.
    The shared Redis store makes the second one a no-op, whichever server it reaches."""
    customer = DoorCustomer(prod, fake_telegram)
    update = text_update(next(UPDATE_IDS), customer.chat_id, "我要办过户")
    answers: List[int] = []

    def post() -> None:
        answers.append(customer.send(update).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    again = [customer.send(update).status_code for _ in range(2)]  # round-robin: both servers
    assert answers + again == [200, 200, 200, 200]
    events = RasaClient(prod.settings).events(customer.sender_id)
    assert [e.get("text") for e in events if e.get("event") == "user"] == ["我要办过户"]
    assert len(fake_telegram.sent(chat_id=customer.chat_id)) == 1


def test_a_killed_rasa_server_is_bridged_by_the_other(
    prod: ProductionStack, fake_telegram: FakeBotApi
) -> None:
    customer = DoorCustomer(prod, fake_telegram)
    assert asked_field(customer.say("家里冇电啊，龙湖区长平路88号3栋502")) == "phone"
    before = prod.restarts.get("rasa-1", 0)
    prod.kill_process("rasa-1")
    for _ in range(2):  # whichever server nginx picks, the form goes on from PostgreSQL
        replies = customer.say("13812345678")
        if "确认提交" in str(replies):
            break
    customer.press(replies, "确认提交")
    [ticket] = tickets(prod, customer.sender_id)
    assert ticket["details"]["phone"] == "13812345678"
    prod.wait_ready()  # the supervisor brought rasa-1 back
    assert prod.restarts.get("rasa-1", 0) == before + 1


def test_a_small_load_through_both_servers_loses_and_doubles_nothing(
    prod: ProductionStack, fake_telegram: FakeBotApi
) -> None:
    """`make bench` runs 500 conversations (bench/load.py); here 24, every update sent twice."""
    report = drive(
        prod,
        fake_telegram,
        conversations=24,
        customers=6,
        secret=TELEGRAM_SECRET,
        api_token=API_TOKEN,
    )
    assert report.problems == [], report.problems[:10]
    assert set(report.statuses) == {200}
    assert len(report.turn_seconds) == 3 * 24
