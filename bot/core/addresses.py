"""Where an address in a customer's message starts and ends, read as a chain of its parts.

The statistical extractor finds that a message holds an address, but its edges drift: it
stops at 街道 before the road (「达濠街道青篮路的新铺面」), runs on into the words after it
(「…5栋602房产」, 「…莲下镇本月计划」) or splits one address in two (「濠江区」「达濠」).
`refine` reads the address around the span as a chain of parts, district → town/street →
village → road → number → building, each a name plus its suffix (区, 镇, 街道, 村, 路, 巷,
号, 栋 …) or a place named in config/areas.yml (达濠, 陈店 …), and grows the span to the
whole chain. It never cuts what the extractor found: where the two disagree at the end, a
too-long span loses less for the crew than a too-short one.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, List, Optional, Tuple

# Characters that never sit inside a place name: function words, verbs of moving, fillers.
_NOT_IN_A_PLACE = "的在是了我你他她它们有会要想往迁由于从把被给这那个吗呢吧啊呀嗯呃就也还又请问嘅喺系咗嗰度去到至为得地址住位置某"
_NAME = rf"(?:(?![{_NOT_IN_A_PLACE}])[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f])"
_ADMIN = (
    rf"(?:(?![路街巷号栋条线]){_NAME}){{2,6}}?"
    r"(?:街道|社区|管区|村委会|村委|居委会|区|县|市(?![场民内])|镇|乡|村(?![民委里口头]))"
)
# The first part of an address a customer writes without any help from the extractor: a city,
# district, county, town or street office (汕头市, 潮阳区, 揭西县, 陈店镇, 广益街道).
_AREA = rf"(?:(?![路街巷号栋条线]){_NAME}){{2,6}}?(?:街道|区|县|市(?![场民内])|镇)"
_ROAD = rf"(?:(?![条线]){_NAME}){{1,6}}?(?:大道|大街|路(?![灯费线过])|街|巷|弄)(?:[东南西北中]段?)?"
_ESTATE = (
    rf"{_NAME}{{1,8}}?(?:花园|小区|新村|公寓|大厦|广场|商场|市场|工业区|工业园|宿舍|大院"
    r"|综合楼|商住楼|苑|园|庭|府|湾|港)"
)
# A number that belongs to the address (12号, 3栋, 602, 七十二号, B座), not a quantity (30千瓦,
# 200元): Chinese numerals and letters only with a suffix.
_NUMBER = (
    r"(?:[0-9]{1,5}(?:[-之][0-9]{1,4})?(?:号楼|号|栋|幢|座|单元|室|楼|层|铺|房(?![产子屋间])"
    r"|(?![0-9]|\s*(?:[0-9]|千|[kK]|元|块|度|月|年|点|分|个|天|小时|米|台|户|位)))"
    r"|[一二三四五六七八九十百零〇]{1,5}(?:号楼|号|栋|幢|座|单元|室|楼|铺)"
    r"|[A-Za-z](?:区|座|栋|幢|单元)"
    # a village's team or group (五队, 3组)
    r"|[0-9一二三四五六七八九十]{1,3}(?:队|组))"
)
# A village of one character plus 村 (陈村, 林村): only after another part (「电白区陈村」).
_SHORT_VILLAGE = rf"{_NAME}村(?![民委里口头])"
# Parts follow each other directly or after one space: a comma ends the address (「…5座2801，136…」).
_SEPARATOR = r"\s?"
_MOVE = re.compile(
    r"(?:迁往|迁到|迁至|迁装至|搬到|搬去|搬迁至|移到|移至|改到|挪到|新址为?|新地址是?)"
)


def follows_a_move(text: str, start: int) -> bool:
    """Whether the address at `start` comes right after a move (「迁往」, 「新地址」 …)."""
    before = text[max(0, start - 6) : start]
    return bool(_MOVE.search(before))


def _known(places: Tuple[str, ...]) -> Tuple[str, str, str]:
    """The places of config/areas.yml as a pattern and as an address part (达濠, 达濠街道), and
    any part of an address, those places included."""
    known = "|".join(re.escape(p) for p in sorted(places, key=len, reverse=True))
    known_part = rf"(?:{known})(?:街道|镇|乡|村|社区)?" if known else r"(?!)"
    return (
        known,
        known_part,
        rf"(?:{_ADMIN}|{_ROAD}|{_ESTATE}|{known_part}|{_NUMBER}|{_SHORT_VILLAGE})",
    )


@lru_cache(maxsize=8)
def _grammar(places: Tuple[str, ...]) -> Tuple["re.Pattern[str]", "re.Pattern[str]"]:
    known, known_part, part = _known(places)
    # Alternatives in this order: the first that fits is kept (金砂路 before the town 金砂).
    first = rf"(?:{_ADMIN}|{_ROAD}|{known_part})"
    chain = re.compile(rf"{first}(?:{_SEPARATOR}{part})*")
    known_start = re.compile(known) if known else re.compile(r"(?!)")
    return chain, known_start


# What may come before a known place in one address: areas only (「汕头市」金平区…); a time word
# before an address (「明天」濠江区…) is no part of it.
_AREA_ALONE = re.compile(rf"(?:{_AREA})+")
_LEADING_TIME = re.compile(r"(?:今天|明天|昨天|后天|现在|目前|刚才|刚刚|听日|琴日|而家)?")


@lru_cache(maxsize=8)
def _grammar_on_its_own(places: Tuple[str, ...]) -> "re.Pattern[str]":
    _, known_part, part = _known(places)
    # An area first, then at least one more part: 「东莞市虎门镇」, not a lone 「龙湖区」.
    return re.compile(rf"(?:{_AREA}|{known_part})(?:{_SEPARATOR}{part})+")


def chains(text: str, places: Iterable[str]) -> List[Tuple[int, int]]:
    """(start, end) of every address a customer wrote as a chain of parts that begins with an
    area (「潮州市潮安区金石镇仙都村」, 「东莞市虎门镇」): found without the extractor, which
    misses addresses of places it has not seen."""
    places = tuple(sorted(set(places)))
    pattern = _grammar_on_its_own(places)
    _, known_start = _grammar(places)
    found: List[Tuple[int, int]] = []
    position = 0
    while position < len(text):
        match = pattern.search(text, position)
        if not match:
            break
        leading_time = _LEADING_TIME.match(text, match.start())
        start = match.start() + (len(leading_time.group()) if leading_time else 0)
        # a known place a little after where the match began starts the address (「明天濠江区」)
        known = known_start.search(text, start + 1, min(start + 8, match.end()))
        if (
            known
            and not _AREA_ALONE.fullmatch(text, start, known.start())
            and not known_start.fullmatch(text, start, known.start())  # 「深圳」龙华区…
        ):
            again = pattern.match(text, known.start())
            if again and again.end() == match.end():
                start = known.start()
        found.append((start, match.end()))
        position = match.end()
    return found


def _starts(text: str, start: int, end: int, known_start: "re.Pattern[str]") -> Iterable[int]:
    """Where a chain may begin: the span's own start, a known place inside or just before it,
    and up to three characters before a span that begins with a suffix (「龙胡」+「区长平路」)."""
    yield start
    for match in known_start.finditer(text, max(0, start - 6), end):
        yield match.start()
    if start and text[start] in "区县镇村":
        yield from range(max(0, start - 3), start)


def refine(text: str, start: int, end: int, places: Iterable[str]) -> Optional[Tuple[int, int]]:
    """(start, end) of the extractor's span text[start:end] grown to the whole address chain
    it is part of, or None when no chain overlaps it. The span only grows: words the
    extractor kept after the chain (a landmark, 那家五金店) stay. Where the span names a
    move (「由金平区迁往龙湖区泰山路88号」), the chain after the move is the address."""
    chain, known_start = _grammar(tuple(sorted(set(places))))
    moved = _MOVE.search(text, start, end)
    if moved:
        start = moved.end()
    best: Optional[Tuple[int, int]] = None
    for begin in _starts(text, start, end, known_start):
        match = chain.match(text, begin)
        if not match or match.end() <= start or match.start() >= end:
            continue
        found = (min(match.start(), start), max(match.end(), end))
        if best is None or found[1] - found[0] > best[1] - best[0]:
            best = found
    return best if best else ((start, end) if moved else None)
