"""Normalisation and validation of what customers write.

Two layers, both used by the NLU pipeline (bot/plugins/nlu.py) and by the form validators
(actions/), so `/model/parse`, the forms and the tickets all see the same values:

* `normalize_text` — length-preserving clean-up of a whole message: full-width → half-width
  and Traditional → Simplified, character by character, so entity offsets stay valid.
* `parse_<kind>` — one function per kind of detail: takes a span or a whole answer, returns
  the contract's normalised value (spec §2) or raises `InvalidValue` with the reason.

Chinese numerals are parsed with cn2an; Traditional characters converted with OpenCC.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import lru_cache
from typing import Callable, Dict, Optional, Union

import cn2an
import opencc

# Digits as customers write them: ASCII, Chinese (incl. 幺 for 1 and 〇), after width folding.
CN_DIGITS = "零〇一二三四五六七八九幺两"
DIGIT_CLASS = f"[0-9{CN_DIGITS}]"
_CN_DIGIT_VALUE = {c: str(i) for i, c in enumerate("零一二三四五六七八九")}
_CN_DIGIT_VALUE.update({"〇": "0", "幺": "1", "两": "2"})


class InvalidValue(ValueError):
    """A value that does not pass validation; `reason` is a short machine-readable cause."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- whole text


@lru_cache(maxsize=1)
def _t2s() -> "opencc.OpenCC":
    return opencc.OpenCC("t2s")


def _fold_width(char: str) -> str:
    """Full-width letters, digits and punctuation → ASCII, only when it stays one character."""
    if "\uff01" <= char <= "\uff5e" or char == "\u3000":
        folded = unicodedata.normalize("NFKC", char)
        return folded if len(folded) == 1 else char
    return char


def normalize_text(text: str) -> str:
    """Full-width → half-width and Traditional → Simplified, keeping the length unchanged."""
    folded = "".join(_fold_width(c) for c in text)
    simplified = _t2s().convert(folded)
    if len(simplified) == len(folded):
        return simplified
    # A phrase-level conversion changed the length: convert character by character instead.
    return "".join(converted if len(converted := _t2s().convert(c)) == 1 else c for c in folded)


def digits_of(text: str) -> str:
    """All digits in `text`, Chinese digit characters converted (spaces, dashes dropped)."""
    text = normalize_text(text)
    return "".join(
        c if c.isascii() and c.isdigit() else _CN_DIGIT_VALUE[c]
        for c in text
        if (c.isascii() and c.isdigit()) or c in _CN_DIGIT_VALUE
    )


def parse_number(text: str) -> float:
    """A number written in digits or Chinese numerals (五十, 一百二十, 2.5, 八十五点五)."""
    text = normalize_text(text).strip().replace("幺", "一").replace("〇", "零")
    match = re.search(r"\d+(?:\.\d+)?", text)
    if match:
        return float(match.group())
    match = re.search(f"[{CN_DIGITS}十百千万点]+", text)
    if not match:
        raise InvalidValue("no_number")
    try:
        return float(cn2an.cn2an(match.group(), "smart"))
    except (ValueError, KeyError) as error:
        raise InvalidValue("no_number") from error


# --------------------------------------------------------------------------- phone

MOBILE_RE = re.compile(r"1[3-9]\d{9}")
LANDLINE_RE = re.compile(r"0\d{9,11}")
_LANDLINE_WRITTEN_RE = re.compile(r"\(?0\d{2,3}\)?[-\s]?\d{7,8}")


# Guangdong landline area codes (020 Guangzhou, 07xx elsewhere in the province): a bare
# 11–12-digit number starting with one of these is a landline, not an account number.
LANDLINE_AREA_PREFIXES = ("020", "07")


def looks_like_landline(digits: str) -> bool:
    """A bare number that is a Guangdong landline with its area code."""
    return bool(LANDLINE_RE.fullmatch(digits)) and digits.startswith(LANDLINE_AREA_PREFIXES)


def parse_phone(text: str) -> str:
    """A mobile (11 digits, 1[3-9]…) or a landline with area code, as digits only."""
    digits = digits_of(text)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if MOBILE_RE.fullmatch(digits):
        return digits
    if LANDLINE_RE.fullmatch(digits):
        return digits
    if len(digits) in (7, 8) and not digits.startswith("0"):
        raise InvalidValue("landline_without_area_code")
    if digits.startswith("1") and len(digits) != 11:
        raise InvalidValue("mobile_wrong_length")
    raise InvalidValue("not_a_phone")


# --------------------------------------------------------------------------- account, ticket

ACCOUNT_MIN_DIGITS, ACCOUNT_MAX_DIGITS = 10, 16


def parse_account_no(text: str) -> str:
    """A power account number (户号): 10–16 digits, digits only."""
    candidates = re.findall(f"{DIGIT_CLASS}(?:[ -]?{DIGIT_CLASS})*", normalize_text(text))
    numbers = [digits_of(c) for c in candidates]
    valid = [n for n in numbers if ACCOUNT_MIN_DIGITS <= len(n) <= ACCOUNT_MAX_DIGITS]
    if len(valid) == 1:
        return valid[0]
    if len(valid) > 1:
        raise InvalidValue("several_numbers")
    raise InvalidValue("account_wrong_length" if numbers else "no_number")


TICKET_DIGITS = 14
# GD, then 14 digits as customers type them: spaces or dashes anywhere, Chinese numerals.
TICKET_RE = re.compile(
    f"GD[\\s-]*({DIGIT_CLASS}(?:[\\s-]*{DIGIT_CLASS}){{{TICKET_DIGITS - 1}}})(?![0-9{CN_DIGITS}])",
    re.IGNORECASE,
)


def parse_ticket_no(text: str) -> str:
    """A ticket number: GD + YYYYMMDD + 6 digits, upper case (GD 2026 1122 000 487,
    gd20261122000487 and GD二零二六一一二二零零零四八七 are the same number)."""
    match = TICKET_RE.search(normalize_text(text))
    if not match:
        raise InvalidValue("not_a_ticket_no")
    digits = digits_of(match.group(1))
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    if not (2000 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31):
        raise InvalidValue("not_a_ticket_no")
    return "GD" + digits


# --------------------------------------------------------------------------- capacity

_KVA_OR_KW = re.compile(r"(千瓦|千伏安|kva|kw|k瓦)", re.IGNORECASE)
MAX_CAPACITY_KW = 100_000


def parse_capacity_kw(text: str) -> float:
    """A capacity in kW (kVA counted as kW at intake): 50千瓦, 五十千瓦, 80kW, 100 KVA."""
    text = normalize_text(text)
    unit = _KVA_OR_KW.search(text)
    head = text[: unit.start()] if unit else text
    value = parse_number(head[-12:] if unit else head)
    if value <= 0 or value > MAX_CAPACITY_KW:
        raise InvalidValue("capacity_out_of_range")
    return int(value) if value == int(value) else round(value, 2)


# --------------------------------------------------------------------------- month


def parse_month(text: str, today: Optional[dt.date] = None) -> str:
    """A billing month as YYYY-MM: 上个月, 本月, 10月, 2026年9月, 去年12月, 十月份."""
    today = today or dt.date.today()
    text = normalize_text(text)

    def shift(months_back: int) -> str:
        index = today.year * 12 + today.month - 1 - months_back
        return f"{index // 12:04d}-{index % 12 + 1:02d}"

    if re.search(
        f"(?:前|过去)?([{CN_DIGITS}0-9十]+)个月(?:前|之前)|前([{CN_DIGITS}0-9十]+)个月", text
    ):
        count = re.search(f"([{CN_DIGITS}0-9十]+)个月", text)
        return shift(int(parse_number(count.group(1)))) if count else shift(1)
    if re.search("下个?月", text):
        return shift(-1)
    if re.search("上上个?月", text):
        return shift(2)
    if re.search("上个?月|上月", text):
        return shift(1)
    if re.search("(这|今|本|呢)个?月", text):
        return shift(0)
    match = re.search(
        f"(?:((?:20)?\\d{{2}}|[{CN_DIGITS}]{{4}}|去|旧|前|今)年)?\\s*([0-9{CN_DIGITS}十]{{1,3}})\\s*月",
        text,
    )
    if not match:
        raise InvalidValue("not_a_month")
    year_text, month_text = match.groups()
    month = int(parse_number(month_text))
    if not 1 <= month <= 12:
        raise InvalidValue("not_a_month")
    if year_text in ("去", "旧"):  # 旧年: Cantonese for last year
        year = today.year - 1
    elif year_text in ("前",):
        year = today.year - 2
    elif year_text in (None, "今"):
        year = today.year if month <= today.month else today.year - 1
    else:
        year = int(digits_of(year_text))
        year = year + 2000 if year < 100 else year
    return f"{year:04d}-{month:02d}"


# --------------------------------------------------------------------------- words → codes

# Words that say what the premises are; checked 非居民 first (「非居民」 contains 「居民」).
CUSTOMER_TYPE_WORDS = {
    "非居民": (
        "非居民",
        "商铺",
        "商业",
        "店铺",
        "铺头",
        "铺面",
        "门面",
        "档口",
        "工厂",
        "厂房",
        "公司",
        "企业",
        "办公",
        "写字楼",
        "仓库",
        "酒店",
        "餐厅",
        "饭店",
        "学校",
        "医院",
        "工业",
        "养殖",
        "农业",
        "生产",
        "经营",
        "超市",
        "作坊",
        "车间",
        "门店",
        "食堂",
        "饭堂",
        "工地",
        "工作室",
        "鱼塘",
        "虾塘",
        "果园",
        "农场",
        "士多",
        "小卖部",
        "诊所",
        "幼儿园",
        "冷库",
        "民宿",
        "农家乐",
        "排档",
        "修车",
        "祠堂",
        "寺庙",
        "村委",
        "大棚",
        "抽水",
        "加工",
        "养猪",
        "猪场",
        "鸡场",
        "工场",
        "餐馆",
        "汽修",
        "铺位",
        "铺子",
        "冻库",
        "物流园",
        "档口",
        "shop",
        "cafe",
        "café",
        "store",
        "restaurant",
        "office",
        "warehouse",
        "factory",
        "company",
        "店",
        "铺",
        "厂",
    ),
    "居民": (
        "居民",
        "住宅",
        "家用",
        "家里",
        "自住",
        "住房",
        "民用",
        "屋企",
        "楼房",
        "公寓",
        "套房",
        "新房",
        "新屋",
        "自建房",
        "小楼",
        "平房",
        "老屋",
        "自己住",
        "自己家",
        "二手房",
        "商品房",
        "祖屋",
        "乡下屋",
        "家属楼",
        "别墅",
        "套间",
        "小区",
        "自建",
        "翻建",
        "盖的房",
        "建的房",
        "起的屋",
        "买的房",
        "家里用",
        "屋企用",
        "家庭用",
        "自己的家",
        "父母家",
        "女儿家",
        "儿子家",
        "老家",
        "住家",
        "出租屋",
        "老房子",
        "农村房",
        "民房",
        "二手楼",
        "自住房",
        "居住用",
        "家里住的",
        "home",
        "apartment",
        "flat",
        "厝",
        "家",
        "住",
    ),
}

# Single characters that name premises almost whenever a customer writes them (奶茶店, 五金厂):
# looked up as an entity like the longer words (other single characters only in answers).
SINGLE_CHARACTER_PREMISES = frozenset({"店", "厂"})

# Words that name the premises only sometimes (「家里停电了」): a detail when answering the
# question, but not looked up as an entity in every message.
AMBIGUOUS_PREMISES_WORDS = frozenset(
    {"家里", "住房", "生产", "经营", "工业", "农业", "商业", "小区", "老家", "抽水", "加工"}
)


def parse_customer_type(text: str) -> str:
    """`居民` or `非居民` from the customer's words (住宅 → 居民, 商铺/工厂 → 非居民)."""
    text = normalize_text(text).lower()
    for code, words in CUSTOMER_TYPE_WORDS.items():
        if any(word in text for word in words):
            return code
    raise InvalidValue("unknown_customer_type")


# Checked in order: explicit words first, single characters only when nothing else matched.
DIRECTION_WORDS = (
    (
        "减容",
        (
            "减容",
            "降容",
            "减少",
            "减小",
            "调低",
            "降低",
            "暂停",
            "调小",
            "改小",
            "改细",
            "调细",
            "缩容",
            "用不完",
            "用唔晒",
            "退掉",
            "改回小",
            "降下来",
            "往下调",
            "调下来",
            "下调",
            "减点",
            "少点容量",
            "唔使咁大",
            "减荣",
            "downgrade",
            "reduce",
        ),
    ),
    (
        "增容",
        (
            "增容",
            "加容",
            "扩容",
            "增加",
            "提容",
            "加大",
            "提高",
            "调大",
            "调高",
            "整大",
            "搞大",
            "扩大",
            "不够用",
            "唔够",
            "升容",
            "报大",
            "扩一下",
            "扩个容",
            "扩下容",
            "加点容量",
            "加些容量",
            "加一下容量",
            "不够使",
            "往上调",
            "调上去",
            "弄大",
            "加到",
            "增荣",
            "扩荣",
            "upgrade",
            "increase",
        ),
    ),
    ("减容", ("减", "少", "降")),
    ("增容", ("加", "增", "扩", "大")),
)


def parse_change_direction(text: str) -> str:
    """`增容` or `减容` from the customer's words."""
    text = normalize_text(text).lower()
    for direction, words in DIRECTION_WORDS:
        if any(word in text for word in words):
            return direction
    raise InvalidValue("unknown_direction")


# --------------------------------------------------------------------------- free text

_ADDRESS_MARKERS = (
    "路",
    "街",
    "道",
    "巷",
    "号",
    "村",
    "镇",
    "区",
    "县",
    "市",
    "乡",
    "栋",
    "幢",
    "楼",
    "座",
    "单元",
    "室",
    "小区",
    "花园",
    "大厦",
    "广场",
    "社区",
    "里",
    "厝",
    "围",
    "园",
    "苑",
    "城",
    "湾",
    "坊",
    "弄",
    "寨",
    "埔",
    "坑",
    "洋",
    "场",
    "厂",
    "铺",
    "店",
    "门口",
    "旁",
    "附近",
    "对面",
)
_ADDRESS_PREFIX = re.compile(
    r"^(我的|我家|我们|新的|新)?(地址|住址|位置|地点)?(是|在|系|喺|:|：)\s*"
)
MIN_ADDRESS_CHARS = 5


def parse_address(text: str) -> str:
    """An address span, trimmed; must look like an address (place words, enough detail)."""
    text = normalize_text(text).strip(" ,，。.!！?？\n\t")
    text = _ADDRESS_PREFIX.sub("", text).strip()
    if len(text) < MIN_ADDRESS_CHARS or not any(m in text for m in _ADDRESS_MARKERS):
        raise InvalidValue("address_too_vague")
    if len(text) > 120:
        raise InvalidValue("address_too_long")
    return text


_NAME_PREFIX = re.compile(
    r"^(我叫|我系|我是|本人|姓名是?|名字是?叫?|户主是?叫?|户主名?|新户主是?叫?|过户给|叫做|叫)[:：\s]*"
)
_NAME_RE = re.compile(r"[\u4e00-\u9fa5·A-Za-z ]{2,20}")


def parse_customer_name(text: str) -> str:
    """A person's or company's name, without 我叫/户主是 and punctuation."""
    text = normalize_text(text).strip(" ,，。.!！?？\n\t")
    text = _NAME_PREFIX.sub("", text).strip()
    text = re.sub(r"[，,。.!！]+.*$", "", text)
    if not _NAME_RE.fullmatch(text) or any(c.isdigit() for c in text):
        raise InvalidValue("not_a_name")
    return text


_AREA_PREFIX = re.compile(r"^(我家|我们|我哋|屋企|我)?(那里|那边|这边|这里|住)?(是|在|喺|系)?")


def parse_area(text: str) -> str:
    """A district, town or street to look outages up by (shorter than a full address)."""
    text = normalize_text(text).strip(" ,，。.!！?？\n\t")
    text = _AREA_PREFIX.sub("", text).strip()
    if len(re.findall(r"[\u4e00-\u9fa5]", text)) < 2 or len(text) > 120:
        raise InvalidValue("area_unknown")
    return text


def parse_last4(text: str) -> str:
    """The last four digits of a phone: 4 digits as given, or the end of a whole number."""
    digits = digits_of(text)
    if len(digits) == 4 or (len(digits) >= 7 and _looks_like_phone(digits)):
        return digits[-4:]
    raise InvalidValue("not_last4")


def _looks_like_phone(digits: str) -> bool:
    return bool(MOBILE_RE.fullmatch(digits) or LANDLINE_RE.fullmatch(digits))


def parse_ticket_lookup(text: str) -> str:
    """A ticket number, or else the phone a ticket was filed with."""
    try:
        return parse_ticket_no(text)
    except InvalidValue:
        pass
    try:
        return parse_phone(text)
    except InvalidValue:
        raise InvalidValue("not_a_ticket_no") from None


# Words that only say which business it is; a description made of them alone says nothing.
_GENERIC_WORDS = re.compile(
    r"我要|我想|想要|我们|我|要|想|投诉|举报|建议|意见|表扬|报修|提个|提|一下|你好|您好|请问|麻烦|帮我|帮忙|"
    r"你们|一个|个|的|了|呀|啊|吧|呢|嘅|咗|唔该|喂"
)


def is_generic_request(text: str) -> bool:
    """True when `text` only names the business (「我要投诉」) without saying what happened."""
    return len(_GENERIC_WORDS.sub("", re.sub(r"\W", "", normalize_text(text)))) < 2


MAX_DESCRIPTION_CHARS = 2000


def parse_description(text: str) -> str:
    """A description as written (trimmed; very long text cut with a marker)."""
    text = text.strip()
    if is_generic_request(text):
        raise InvalidValue("description_too_short")
    if len(text) > MAX_DESCRIPTION_CHARS:
        text = text[:MAX_DESCRIPTION_CHARS] + "…（以下略）"
    return text


ParsedValue = Union[str, float, int]

PARSERS: Dict[str, Callable[[str], ParsedValue]] = {
    "phone": parse_phone,
    "account_no": parse_account_no,
    "ticket_no": parse_ticket_no,
    "capacity_kw": parse_capacity_kw,
    "month": parse_month,
    "customer_type": parse_customer_type,
    "change_direction": parse_change_direction,
    "address": parse_address,
    "name": parse_customer_name,
    "customer_name": parse_customer_name,
    "description": parse_description,
    "area": parse_area,
    "ticket_lookup": parse_ticket_lookup,
    "last4": parse_last4,
}


def parse_value(kind: str, text: str) -> ParsedValue:
    """Normalise and validate `text` as a value of `kind` (see PARSERS)."""
    try:
        parser = PARSERS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}") from None
    return parser(text)


# --------------------------------------------------------------------------- privacy


def mask_phone(phone: str) -> str:
    """138****5678 — for logs and for anyone not signed in."""
    digits = digits_of(phone)
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
