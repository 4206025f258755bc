"""Joint questions: which two details are asked together, and how an answer is cut in two."""

from __future__ import annotations

import pytest

from bot.core.catalog import load_catalog
from bot.core.details import split_joint_answer

CATALOG = load_catalog()
NAME_AND_PHONE = next(j for j in CATALOG.ask_together if j.fields == ("customer_name", "phone"))
ADDRESS_AND_PHONE = next(j for j in CATALOG.ask_together if j.fields == ("address", "phone"))


@pytest.mark.parametrize(
    "answer, name, phone",
    [
        ("陈伟明 13800138000", "陈伟明", "13800138000"),
        ("陈伟明，电话13800138000", "陈伟明", "13800138000"),
        ("我叫林小红，手机号是 138 0013 8000", "我叫林小红", "138 0013 8000"),
        ("0754-88881234 黄生", "黄生", "0754-88881234"),
        ("13800138000", None, "13800138000"),
        ("陈伟明", "陈伟明", None),
    ],
)
def test_a_name_and_phone_answer_is_cut_in_two(answer: str, name, phone) -> None:
    split = split_joint_answer(answer, NAME_AND_PHONE, CATALOG)
    assert split.get("customer_name") == name
    assert split.get("phone") == phone


def test_house_numbers_stay_in_the_address() -> None:
    split = split_joint_answer(
        "潮南区峡山街道东山路12号3栋，13800138000", ADDRESS_AND_PHONE, CATALOG
    )
    assert split == {"address": "潮南区峡山街道东山路12号3栋", "phone": "13800138000"}


def test_a_wrong_phone_is_still_cut_out_so_it_can_be_named() -> None:
    split = split_joint_answer("陈伟明 153200174896", NAME_AND_PHONE, CATALOG)
    assert split == {"customer_name": "陈伟明", "phone": "153200174896"}


def test_a_joint_question_needs_both_details_missing_and_required() -> None:
    new_connection = CATALOG.services["new_connection"]
    assert CATALOG.joint_question(new_connection, "customer_name", ["phone", "address"])
    assert CATALOG.joint_question(new_connection, "customer_name", ["address"]) is None
    # the phone of a suggestion is optional: it is not pressed for in a joint question
    assert (
        CATALOG.joint_question(CATALOG.services["violation_report"], "address", ["phone"]) is None
    )
    # emergencies are filed before asking and ask one thing at a time
    assert CATALOG.joint_question(CATALOG.services["emergency"], "address", ["phone"]) is None
    relocation = CATALOG.services["meter_relocation"]
    joint = CATALOG.joint_question(relocation, "phone", ["phone", "address"])
    assert joint is not None and joint.partner("phone") == "address"
