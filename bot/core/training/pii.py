"""Replace personal data in a labelled example with realistic fakes before it is saved.

Phones, 户号, ticket numbers, names after 我叫/户主…, and house numbers in addresses are
replaced by values of the same shape — same length, same digit style (１３８ stays full-width,
一三八 stays Chinese), the same carrier prefix / area code / ticket date — so the example
teaches the model exactly what the original did. Fakes are deterministic per text (the
random generators are seeded with its hash), and entity spans are moved with the text.

    text, entities = pseudonymise("我叫陈伟明，电话13812345678", [])
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import cn2an
from faker import Faker

from bot.core.normalize import digits_of, normalize_text
from bot.core.settings import PiiConfig, get_settings

PERSONAL_ENTITIES = ("phone", "account_no", "ticket_no", "customer_name", "address")
_STYLES = ("0123456789", "０１２３４５６７８９", "零一二三四五六七八九")
_CHINESE_DIGITS = "零〇一二三四五六七八九幺两"
_DIGIT = f"0-9０-９{_CHINESE_DIGITS}"
# A run of at least 6 digits, spaces and dashes allowed inside (138 1234-5678).
_NUMBER = re.compile(rf"(?<![{_DIGIT}])[{_DIGIT}](?:[{_DIGIT}]|[ \-](?=[{_DIGIT}])){{5,}}")
_TICKET_PREFIX = re.compile(r"[Gg][Dd]$")


@dataclass(frozen=True)
class Replacement:
    start: int
    end: int
    new: str


def _config() -> PiiConfig:
    return get_settings().trainer.pii


def _digit_style(char: str) -> str:
    return next((s for s in _STYLES if char in s), _STYLES[2])


def _write_digits(shape: str, digits: str) -> str:
    """`digits` written into `shape`: each digit character replaced in its own style."""
    fresh = iter(digits)
    out = []
    for char in shape:
        if char in "".join(_STYLES) + _CHINESE_DIGITS:
            out.append(_digit_style(char)[int(next(fresh))])
        else:
            out.append(char)
    return "".join(out)


def _fake_number(digits: str, before: str, rng: random.Random) -> str:
    """Fake digits of the same length, keeping what identifies no one (prefix, area, date)."""
    if _TICKET_PREFIX.search(before) and len(digits) == 14:
        keep = 8  # GD + date: the 6-digit sequence identifies the ticket
    elif len(digits) == 11 and digits.startswith("1"):
        keep = 3  # the mobile carrier prefix
    elif digits.startswith("0") and 10 <= len(digits) <= 12:
        keep = 4 if digits[1] not in "12" else 3  # the area code (010/02x are three digits)
    else:
        keep = 2  # 户号: the region prefix
    tail = "".join(rng.choice("0123456789") for _ in range(len(digits) - keep))
    return digits[:keep] + tail


def _fake_name(original: str, faker: Faker) -> str:
    for _ in range(50):
        name = faker.name()
        if len(name) == len(original):
            return name
    return (faker.last_name() + faker.first_name() * 2)[: len(original)]


def _fake_house_number(span: str, folded: str, rng: random.Random) -> str:
    """A house number of the same magnitude, written like `span` (its folded form: `folded`)."""
    if folded[0].isascii():
        digits = str(
            rng.randint(10 ** (len(span) - 1) if len(span) > 1 else 1, 10 ** len(span) - 1)
        )
        return _write_digits(span, digits)
    value = int(cn2an.cn2an(folded, "smart"))
    fake = rng.randint(max(1, value // 2), max(2, value * 2))
    return cn2an.an2cn(str(fake))


def _name_spans(text: str, cues: Sequence[str]) -> List[Tuple[int, int]]:
    pattern = re.compile(
        rf"(?:{'|'.join(map(re.escape, sorted(cues, key=len, reverse=True)))})[:：\s]*"
        r"([\u4e00-\u9fff]{2,3}?)(?=[^\u4e00-\u9fff]|$|电话|手机|地址|户号|住|的)"
    )
    return [m.span(1) for m in pattern.finditer(text)]


def find_replacements(
    text: str, entities: Sequence[Dict[str, Any]], seed: int
) -> List[Replacement]:
    """Every personal-data span of `text` and its fake, non-overlapping, left to right."""
    rng = random.Random(seed)
    faker = Faker("zh_CN")
    faker.seed_instance(seed)
    config = _config()
    scan = normalize_text(text)  # same length: Traditional and full-width folded for matching
    found: List[Replacement] = []

    def add(start: int, end: int, new: str) -> None:
        if new != text[start:end] and not any(r.start < end and start < r.end for r in found):
            found.append(Replacement(start, end, new))

    names = [(e["start"], e["end"]) for e in entities if e["entity"] == "customer_name"]
    for start, end in names + _name_spans(scan, config.name_cues):
        add(start, end, _fake_name(text[start:end], faker))
    for match in _NUMBER.finditer(scan):
        span = text[match.start() : match.end()]
        digits = digits_of(span)
        if len(digits) >= 6:
            fake = _fake_number(digits, scan[: match.start()], rng)
            add(match.start(), match.end(), _write_digits(span, fake))
    units = "|".join(map(re.escape, config.house_number_units))
    for match in re.finditer(
        rf"([0-9]+|[０-９]+|[零〇一二三四五六七八九十百两]+)(?={units})", scan
    ):
        span = text[match.start() : match.end()]
        add(match.start(), match.end(), _fake_house_number(span, match.group(), rng))
    return sorted(found, key=lambda r: r.start)


def _shift(position: int, replacements: Sequence[Replacement], is_end: bool) -> int:
    """Where `position` of the old text lands in the new text."""
    offset = 0
    for r in replacements:
        inside = r.start < position < r.end
        if r.end <= position or (is_end and inside):
            offset += len(r.new) - (r.end - r.start)
    return position + offset


def pseudonymise(
    text: str, entities: Sequence[Dict[str, Any]] = ()
) -> Tuple[str, List[Dict[str, Any]]]:
    """`text` with personal data faked, and `entities` (start/end/entity[/value]) moved to match."""
    seed = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16)
    replacements = find_replacements(text, entities, seed)
    pieces, cursor = [], 0
    for r in replacements:
        pieces.append(text[cursor : r.start] + r.new)
        cursor = r.end
    new_text = "".join(pieces) + text[cursor:]
    moved = []
    for entity in entities:
        start = _shift(entity["start"], replacements, is_end=False)
        end = _shift(entity["end"], replacements, is_end=True)
        updated = {**entity, "start": start, "end": end}
        if (
            entity["entity"] in PERSONAL_ENTITIES
            or updated.get("value") == text[entity["start"] : entity["end"]]
        ):
            updated.pop("value", None)  # the value is the (new) span itself
        moved.append(updated)
    return new_text, moved
