"""Read a customer's 1–5 satisfaction rating from what they wrote (「5」「五分」「非常满意」)."""

from __future__ import annotations

import re
from typing import Optional

from bot.core.normalize import normalize_text

# Longest phrases first: 「非常不满意」 must not be read as 「满意」.
RATING_WORDS = (
    ("非常不满意", 1),
    ("很不满意", 1),
    ("极差", 1),
    ("太差", 1),
    ("很差", 1),
    ("不满意", 2),
    ("不太满意", 2),
    ("一般", 3),
    ("还行", 3),
    ("凑合", 3),
    ("马马虎虎", 3),
    ("非常满意", 5),
    ("很满意", 5),
    ("超满意", 5),
    ("特别满意", 5),
    ("非常好", 5),
    ("很好", 5),
    ("满意", 4),
    ("不错", 4),
    ("挺好", 4),
)
_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_SCORE = re.compile(
    r"(?<![\d.])([1-5])(?![\d.])\s*(?:分|星|颗星)?|([一二两三四五])\s*(?:分|星|颗星)"
)


def parse_rating(text: Optional[str]) -> Optional[int]:
    """The 1–5 rating in `text`, or None when it is not a rating."""
    if not text:
        return None
    cleaned = normalize_text(str(text)).strip()
    if cleaned in _CHINESE_DIGITS:
        return _CHINESE_DIGITS[cleaned]
    match = _SCORE.search(cleaned)
    if match:
        return int(match.group(1)) if match.group(1) else _CHINESE_DIGITS[match.group(2)]
    for phrase, score in sorted(RATING_WORDS, key=lambda item: -len(item[0])):
        if phrase in cleaned:
            return score
    return None
