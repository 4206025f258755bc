"""Dialogue behaviour end to end: emergency, digressions, hand-over, queries, bad input."""

from __future__ import annotations

import pytest
import requests

from bot.core.catalog import load_catalog
from tests.e2e.test_service_requests import asked_field, fill_form
from tests.stack import Api, Customer, texts

CATALOG = load_catalog()


def test_emergency_safety_first_then_urgent_ticket_then_person(
    customer: Customer, api: Api
) -> None:
    replies = customer.say("快来人！路边的电线断了掉在地上，还在冒火花")
    first = replies[0]["text"]
    assert "8米" in first and "120" in first and "119" in first, replies
    tickets = api.tickets(customer.sender)
    assert len(tickets) == 1 and tickets[0]["category"] == "emergency"
    assert tickets[0]["priority"] == "urgent" and tickets[0]["department"] == "抢修"
    assert tickets[0]["ticket_no"] in texts(replies)
    assert asked_field(replies) == "address"

    replies = customer.say("金平区中山路120号门口")
    assert asked_field(replies) == "phone"
    replies = customer.say("13600001111")
    # The details land on the same ticket, then a person takes over, emergencies first.
    tickets = api.tickets(customer.sender)
    assert len(tickets) == 1
    assert tickets[0]["details"]["address"].startswith("金平区中山路120号")
    assert tickets[0]["details"]["phone"] == "13600001111"
    handoffs = api.handoffs(customer.sender)
    assert [h["reason"] for h in handoffs] == ["emergency"]
    assert handoffs[0]["priority"] == "urgent" and handoffs[0]["status"] == "waiting"
    assert "人工客服" in texts(replies)


def test_emergency_does_not_block_on_phone(customer: Customer, api: Api) -> None:
    customer.say("有人触电了！！在澄海区莲下镇")
    replies = customer.say("不方便留电话")
    assert "人工客服" in texts(replies), customer.transcript
    assert api.tickets(customer.sender)[0]["category"] == "emergency"


def test_faq_mid_form_is_answered_and_the_form_resumes(customer: Customer, api: Api) -> None:
    replies = customer.say("我想办理新装用电")
    first = asked_field(replies)
    assert first is not None
    replies = customer.say("顺便问下，电费可以怎么交？")
    assert "缴费" in texts(replies) or "交电费" in texts(replies), customer.transcript
    assert asked_field(replies) == first


def test_request_human_mid_form_hands_over(customer: Customer, api: Api) -> None:
    customer.say("我要申请增容")
    replies = customer.say("转人工")
    assert "人工客服" in texts(replies)
    handoffs = api.handoffs(customer.sender)
    assert handoffs[0]["reason"] == "request_human"
    assert handoffs[0]["queue_position"] >= 1
    assert api.tickets(customer.sender) == []


def test_two_misunderstandings_in_a_row_hand_over(customer: Customer, api: Api) -> None:
    customer.say("你好")
    first = customer.say("asdfghjkl")
    assert "没太明白" in texts(first), customer.transcript
    second = customer.say("？？？")
    assert "人工客服" in texts(second), customer.transcript
    assert api.handoffs(customer.sender)[0]["reason"] == "fallback"


def test_out_of_scope_gets_a_polite_redirect(customer: Customer) -> None:
    replies = customer.say("明天汕头天气怎么样，会不会下雨")
    assert "供电" in texts(replies) or "帮不上" in texts(replies), customer.transcript


def test_bill_query(customer: Customer) -> None:
    replies = customer.say("帮我查下电费")
    assert asked_field(replies) == "account_no"
    replies = customer.say("0301234567")
    assert asked_field(replies) == "phone_last4", customer.transcript
    assert "元" not in texts(replies)  # nothing about the account before the check
    replies = customer.say("5678")  # the phone on file is 13812345678
    assert "电费" in texts(replies) and "元" in texts(replies), customer.transcript


def test_bill_query_with_the_wrong_phone_tells_nothing(customer: Customer) -> None:
    customer.say("户号0301234567的电费是多少")
    replies = customer.say("1234")
    assert "核对不上" in texts(replies) and "元" not in texts(replies), customer.transcript


def test_bill_query_in_one_message_with_unknown_account(customer: Customer) -> None:
    replies = customer.say("户号9999888877的电费是多少")
    assert asked_field(replies) == "phone_last4", customer.transcript
    replies = customer.say("5678")
    assert "没有查到" in texts(replies), customer.transcript


def test_outage_query(customer: Customer) -> None:
    replies = customer.say("潮南区峡山最近有没有计划停电")
    assert "峡山" in texts(replies), customer.transcript


def test_ticket_progress_by_number(customer: Customer, api: Api) -> None:
    summary = fill_form(customer, customer.say("家里跳闸了推不上去，地址龙湖区长平路88号3栋502"))
    customer.click(summary, "确认提交")
    ticket_no = api.tickets(customer.sender)[0]["ticket_no"]
    replies = customer.say(f"帮我查下工单{ticket_no.lower()}进度")  # its own ticket: no check
    assert ticket_no in texts(replies) and "故障报修" in texts(replies), customer.transcript
    other = Customer(customer.stack)
    replies = other.say(f"帮我查下工单{ticket_no.lower()}进度")
    assert asked_field(replies) == "phone_last4", other.transcript
    assert "故障报修" not in texts(replies)
    replies = other.say("尾号5678")  # the phone given in the form is 13812345678
    assert ticket_no in texts(replies) and "故障报修" in texts(replies), other.transcript


def test_materials_for_a_business(customer: Customer) -> None:
    replies = customer.say("办理过户需要带什么资料")
    assert "身份证明" in texts(replies), customer.transcript


@pytest.mark.parametrize(
    "message",
    ["😭😭😭⚡️", "'; DROP TABLE tickets; --", "<script>alert(1)</script>", "电" * 10_000],
    ids=["emoji", "sql", "script", "10000-chars"],
)
def test_bad_input_gets_polite_answers(customer: Customer, message: str) -> None:
    replies = customer.say(message)
    assert replies and all(r.get("text") for r in replies), (message[:20], replies)
    # and the conversation goes on normally afterwards
    assert asked_field(customer.say("我要报修，家里停电了")) in ("address", "phone")


def test_malformed_request_is_rejected_not_crashing(stack) -> None:
    url = f"http://127.0.0.1:{stack.settings.rasa_port}/webhooks/rest/webhook"
    assert requests.post(url, data="not json", timeout=10).status_code in (400, 422, 500)
    assert (
        requests.get(f"http://127.0.0.1:{stack.settings.rasa_port}/", timeout=10).status_code == 200
    )


def test_name_and_phone_are_asked_together_and_answered_in_one_message(
    customer: Customer, api: Api
) -> None:
    joint = next(j for j in CATALOG.ask_together if j.fields == ("customer_name", "phone"))
    replies = customer.say("你好，我新买的房子想报装用电")
    assert joint.ask in texts(replies), customer.transcript
    replies = customer.say("陈伟明 13812345678")
    assert asked_field(replies) == "address", customer.transcript
    replies = customer.say("龙湖区长平路88号3栋502")
    replies = customer.say("居民")
    done = customer.click(replies, "确认提交")
    [ticket] = api.tickets(customer.sender)
    assert ticket["ticket_no"] in texts(done)
    assert ticket["details"]["customer_name"] == "陈伟明"
    assert ticket["details"]["phone"] == "13812345678"


def test_half_an_answer_to_a_joint_question_asks_only_the_other_half(customer: Customer) -> None:
    customer.say("我要装充电桩")
    replies = customer.say("13812345678")
    assert asked_field(replies) == "customer_name", customer.transcript
    assert CATALOG.fields["customer_name"].ask in texts(replies)
    assert "没能识别" not in texts(replies)  # a phone alone is no failed try at the name
    replies = customer.say("林小红")
    assert asked_field(replies) == "address", customer.transcript


def test_a_wrong_phone_in_a_joint_answer_is_named(customer: Customer) -> None:
    customer.say("我要报修，家里停电了")
    replies = customer.say("金平区金砂路23号2栋301，153200174896")
    assert "153200174896" in texts(replies) and "12位" in texts(replies), customer.transcript
    assert asked_field(replies) == "phone", customer.transcript
