"""What a customer sees when parts of the assistant fail, and that nothing is lost."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from tests.e2e.test_service_requests import asked_field
from tests.stack import Api, Customer, texts


@contextmanager
def action_server_stopped(customer: Customer) -> Iterator[None]:
    """The action server is down inside the block, back up and ready after it."""
    customer.stack.stop_process("actions")
    try:
        yield
    finally:
        customer.stack.restart_process("actions")
        customer.stack.wait_ready()


def test_a_restarted_rasa_server_continues_the_form(customer: Customer, api: Api) -> None:
    assert asked_field(customer.say("我要办过户")) == "account_no"
    customer.stack.restart_process("rasa")
    customer.stack.wait_ready()
    replies = customer.say("0301234567890")
    # The conversation (in the SQL tracker store) survived: the form asks its next detail.
    assert asked_field(replies) == "customer_name", customer.transcript


def test_a_crashed_action_server_gets_an_apology_and_loses_nothing(
    customer: Customer, api: Api
) -> None:
    assert asked_field(customer.say("家里冇电啊，龙湖区长平路88号3栋502")) == "phone"
    with action_server_stopped(customer):
        replies = customer.say("13812345678")
        assert "系统有点忙" in texts(replies), customer.transcript
    # Once it is back, the customer answers again and the request goes through.
    summary = customer.say("13812345678")
    customer.click(summary, "确认提交")
    assert api.tickets(customer.sender)[0]["details"]["phone"] == "13812345678"


def test_an_opening_message_lost_to_a_stopped_action_server_is_simply_sent_again(
    customer: Customer, api: Api
) -> None:
    """A form that could not start (its action server down) must not count as run: Rasa
    logged it as executed, its "form completed" rule then predicted the filing, and the
    conversation looped into Rasa's circuit breaker on every later message (the soak's
    apology bursts). Now the turn ends with the apology and the same message works later."""
    with action_server_stopped(customer):
        replies = customer.say("家里停电了，龙湖区长平路88号3栋502")
        assert "系统有点忙" in texts(replies), customer.transcript
    replies = customer.say("家里停电了，龙湖区长平路88号3栋502")
    assert asked_field(replies) == "phone", customer.transcript
    summary = customer.say("13812345678")
    customer.click(summary, "确认提交")
    [ticket] = api.tickets(customer.sender)
    assert ticket["details"]["phone"] == "13812345678"


def test_a_waiting_customer_who_writes_again_gets_the_queue_position(
    customer: Customer, api: Api
) -> None:
    assert "人工客服" in texts(customer.say("转人工"))
    replies = customer.say("还要等多久啊")
    assert "前面还有" in texts(replies), customer.transcript
    assert api.handoffs(customer.sender)[0]["status"] == "waiting"
