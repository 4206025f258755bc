"""Full conversations through the REST channel, checked through the JSON API.

One conversation per service category of the catalog: the customer states the request,
answers whatever the bot asks (recognised by the catalog's own prompts), confirms with the
「确认提交」 button, and gets a ticket whose category, details, department, priority and due
time the JSON API confirms.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Tuple

import pytest

from bot.core.catalog import load_catalog
from bot.core.tickets.due import compute_due_at
from tests.stack import Api, Customer, texts

CATALOG = load_catalog()

# How a customer opens each request, and the answer they give to each detail question.
OPENERS = {
    "new_connection": "你好，我新买的房子要装个电表，想报装用电",
    "capacity_change": "我家空调多了电不够用，想申请增容",
    "transfer": "房子买了二手的，电表要过户到我名下",
    "account_closure": "老房子拆了，想把那个户销户",
    "meter_relocation": "装修要把电表移到楼道外面，怎么申请移表",
    "tariff_change": "我想申请峰谷分时电价",
    "ev_charger": "买了电动车，想在车位装个充电桩",
    "solar_pv": "屋顶想装分布式光伏并网发电",
    "fault_repair": "家里突然停电了，邻居都有电",
    "emergency": None,  # tests/e2e/test_dialogue.py covers the emergency path
    "meter_dispute": "这两个月电费翻倍了，怀疑电表有问题，要求校验电表",
    "complaint": "我要投诉，你们抢修师傅态度太差了，还乱收费",
    "violation_report": "我要举报，隔壁工厂偷电，电表被绕过去了",
    "suggestion": "提个建议，停电通知能不能提前一天发短信",
    "praise": "表扬一下你们的李师傅，半夜冒雨来修好了线路",
}
ANSWERS = {
    "customer_name": "陈伟明",
    "phone": "13812345678",
    "account_no": "0301234567890",
    "address": "龙湖区长平路88号3栋502",
    "customer_type": "居民",
    "capacity_kw": "80千瓦",
    "change_direction": "增容",
    "description": "客厅和卧室的灯都不亮，总闸推不上去",
}
EXPECTED = {  # what the answers above become on the ticket (spec §2 values)
    "customer_name": "陈伟明",
    "phone": "13812345678",
    "account_no": "0301234567890",
    "address": "龙湖区长平路88号3栋502",
    "customer_type": "居民",
    "capacity_kw": 80,
    "change_direction": "增容",
}


def asked_fields(replies: List[Dict[str, Any]]) -> Tuple[str, ...]:
    """The details the bot is asking for, recognised by the catalog's prompt text (two for a
    joint question, 「姓名和联系电话」)."""
    text = texts(replies)
    for joint in CATALOG.ask_together:
        if joint.ask in text:
            return joint.fields
    return tuple(name for name, field in CATALOG.fields.items() if field.ask in text)[:1]


def asked_field(replies: List[Dict[str, Any]]) -> str | None:
    """The (first) detail the bot is asking for."""
    fields = asked_fields(replies)
    return fields[0] if fields else None


def fill_form(
    customer: Customer, replies: List[Dict[str, Any]], max_turns: int = 10
) -> List[Dict[str, Any]]:
    """Answer every question until the confirmation summary appears."""
    asked: List[str] = []
    for _ in range(max_turns):
        if "确认提交" in [b["title"] for r in replies for b in r.get("buttons", [])]:
            return replies
        fields = asked_fields(replies)
        assert fields, f"bot asked nothing recognisable: {texts(replies)!r}"
        assert not set(fields) & set(asked), f"asked {fields} twice: {customer.transcript}"
        asked.extend(fields)
        replies = customer.say("，".join(ANSWERS[field] for field in fields))
    raise AssertionError(f"no confirmation after {max_turns} turns: {customer.transcript}")


@pytest.mark.parametrize("code", [c for c, opener in OPENERS.items() if opener])
def test_each_category_files_a_ticket(code: str, customer: Customer, api: Api) -> None:
    service = CATALOG.services[code]
    replies = customer.say(OPENERS[code])
    summary = fill_form(customer, replies)
    assert service.name in texts(summary)
    done = customer.click(summary, "确认提交")

    tickets = api.tickets(customer.sender)
    assert len(tickets) == 1, customer.transcript
    ticket = tickets[0]
    assert ticket["ticket_no"] in texts(done)
    assert ticket["category"] == code
    assert ticket["department"] == service.department
    assert ticket["priority"] == service.priority
    assert ticket["channel"] == "rest"
    for name in service.required:
        if name in EXPECTED:
            assert ticket["details"][name] == EXPECTED[name], (name, ticket["details"])
    if "description" in service.required:
        assert ticket["details"]["description"]
    created = dt.datetime.fromisoformat(ticket["created_at"])
    expected_due = compute_due_at(service, created, ticket["details"])
    if expected_due is None:
        assert ticket["due_at"] is None
    else:
        assert dt.datetime.fromisoformat(ticket["due_at"]) == expected_due.replace(microsecond=0)


def test_one_shot_fault_asks_only_what_is_missing(customer: Customer, api: Api) -> None:
    replies = customer.say("我家停电了，潮南区峡山街道东山路12号")
    assert asked_field(replies) == "phone", customer.transcript
    summary = customer.say("13812345678")
    assert "确认提交" in [b["title"] for r in summary for b in r.get("buttons", [])]
    assert "潮南区峡山街道东山路12号" in texts(summary)
    done = customer.click(summary, "确认提交")
    ticket = api.tickets(customer.sender)[0]
    assert ticket["ticket_no"] in texts(done)
    assert ticket["details"]["address"] == "潮南区峡山街道东山路12号"
    assert ticket["details"]["phone"] == "13812345678"
    assert "停电" in ticket["details"]["description"]
    # 潮南区 is rural in config/areas.yml: on site within 90 minutes.
    created = dt.datetime.fromisoformat(ticket["created_at"])
    due = dt.datetime.fromisoformat(ticket["due_at"])
    assert abs((due - created) - dt.timedelta(minutes=90)) < dt.timedelta(seconds=2)


def test_phone_and_address_in_one_message_fill_both(customer: Customer, api: Api) -> None:
    replies = customer.say("报修，灯一闪一闪的")
    assert asked_field(replies) in ("address", "phone")
    summary = customer.say("地址是金平区金新路25号，电话 139-2233-4455")
    assert "确认提交" in [b["title"] for r in summary for b in r.get("buttons", [])], (
        customer.transcript
    )
    customer.click(summary, "确认提交")
    details = api.tickets(customer.sender)[0]["details"]
    assert details["phone"] == "13922334455"
    assert "金新路25号" in details["address"]


def test_cancel_mid_form_files_nothing(customer: Customer, api: Api) -> None:
    replies = customer.say("我想申请过户")
    assert asked_field(replies) is not None
    replies = customer.say("算了，不办了")
    assert "取消" in texts(replies)
    assert api.tickets(customer.sender) == []
    # The bot is free again: a new request starts a new form.
    assert asked_field(customer.say("查下电费")) == "account_no"


def test_correction_at_confirmation(customer: Customer, api: Api) -> None:
    summary = fill_form(customer, customer.say(OPENERS["fault_repair"]))
    summary = customer.say("电话写错了，是13987654321")
    assert "13987654321" in texts(summary), customer.transcript
    assert "确认提交" in [b["title"] for r in summary for b in r.get("buttons", [])]
    customer.click(summary, "确认提交")
    assert api.tickets(customer.sender)[0]["details"]["phone"] == "13987654321"


def test_edit_button_asks_the_chosen_detail_again(customer: Customer, api: Api) -> None:
    summary = fill_form(customer, customer.say(OPENERS["account_closure"]))
    which = customer.click(summary, "修改")
    replies = customer.click(which, CATALOG.fields["phone"].label)
    assert asked_field(replies) == "phone"
    summary = customer.say("15012345678")
    customer.click(summary, "确认提交")
    assert api.tickets(customer.sender)[0]["details"]["phone"] == "15012345678"


def test_invalid_phone_then_valid(customer: Customer, api: Api) -> None:
    replies = customer.say("我家跳闸了，推不上去，地址龙湖区天山路9号")
    assert asked_field(replies) == "phone"
    replies = customer.say("1381234567")
    # the answer says what is wrong with this number, then asks again
    wrong_length = CATALOG.fields["phone"].invalid["mobile_wrong_length"]
    assert wrong_length.format(value="1381234567", length=10) in texts(replies)
    assert asked_field(replies) == "phone"
    summary = customer.say("１３８ 1234 5678")
    customer.click(summary, "确认提交")
    assert api.tickets(customer.sender)[0]["details"]["phone"] == "13812345678"


def test_same_request_confirmed_twice_files_one_ticket(customer: Customer, api: Api) -> None:
    for _ in range(2):
        summary = fill_form(
            customer, customer.say("我要报修，家里没电了，地址龙湖区长平路88号3栋502")
        )
        customer.click(summary, "确认提交")
    assert len(api.tickets(customer.sender)) == 1
