"""Personal data in labelled examples is replaced by same-shaped, deterministic fakes."""

from __future__ import annotations

import re

import pytest

from bot.core.normalize import digits_of, parse_phone
from bot.core.training.pii import pseudonymise


def test_mobile_keeps_shape_and_carrier_prefix_but_not_the_number() -> None:
    text, _ = pseudonymise("电话138 1234 5678，快来")
    fake = re.search(r"138 \d{4} \d{4}", text)
    assert fake and fake.group() != "138 1234 5678"
    assert parse_phone(fake.group()) == digits_of(fake.group())  # still a valid mobile


def test_full_width_and_chinese_digits_stay_in_their_style() -> None:
    text, _ = pseudonymise("電話１３９０２７５１３８６")
    assert re.fullmatch(r"電話１３９[０-９]{8}", text) and "０２７５１３８６" not in text
    text, _ = pseudonymise("电话一八六二二三三四四五五")
    assert re.fullmatch(r"电话一八六[零一二三四五六七八九]{8}", text)
    assert text != "电话一八六二二三三四四五五"


def test_account_landline_and_ticket_numbers() -> None:
    text, _ = pseudonymise("户号030123456789，座机0754-88881234，工单GD20261127000123")
    account, landline, ticket = re.findall(r"\d{12}|0754-\d{8}|GD\d{14}", text)
    assert account != "030123456789" and account.startswith("03")
    assert landline.startswith("0754-") and landline != "0754-88881234"
    assert ticket.startswith("GD20261127") and ticket != "GD20261127000123"


@pytest.mark.parametrize(
    "original, cue", [("我叫陈伟明，停电了", "我叫"), ("户主是林小红", "户主是")]
)
def test_names_after_cues_are_replaced_by_names_of_the_same_length(original: str, cue: str) -> None:
    text, _ = pseudonymise(original)
    assert text.startswith(cue) and len(text) == len(original) and text != original


def test_house_numbers_are_replaced_and_entity_spans_follow() -> None:
    original = "没电了，地址龙湖区长平路八十八号3栋501室，我叫陈伟明"
    address = (original.index("龙湖"), original.index("室") + 1)
    name = (original.index("陈伟明"), original.index("陈伟明") + 3)
    entities = [
        {"start": a, "end": b, "entity": e}
        for (a, b), e in ((address, "address"), (name, "customer_name"))
    ]
    text, moved = pseudonymise(original, entities)
    new_address = text[moved[0]["start"] : moved[0]["end"]]
    assert new_address.startswith("龙湖区长平路") and new_address.endswith("室")
    assert "八十八号3栋501室" not in new_address
    assert (
        text[moved[1]["start"] : moved[1]["end"]] != "陈伟明"
        and len(text[moved[1]["start"] : moved[1]["end"]]) == 3
    )


def test_deterministic_and_nothing_to_replace() -> None:
    assert pseudonymise("我叫陈伟明 13812345678") == pseudonymise("我叫陈伟明 13812345678")
    assert pseudonymise("家里停电了", []) == ("家里停电了", [])


def test_explicit_values_of_personal_entities_are_dropped_others_kept() -> None:
    original = "工厂用电，电话13812345678"
    entities = [
        {"start": 0, "end": 2, "entity": "customer_type", "value": "非居民"},
        {"start": 7, "end": 18, "entity": "phone", "value": "13812345678"},
    ]
    text, moved = pseudonymise(original, entities)
    assert moved[0]["value"] == "非居民"
    assert "value" not in moved[1] and re.fullmatch(
        r"138\d{8}", text[moved[1]["start"] : moved[1]["end"]]
    )
