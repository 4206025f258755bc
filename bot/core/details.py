"""What a customer's message says about the details of a request, beyond the NLU's entities.

* `named_details` — details the message names with a cue word (「户号写错了，应该是0301 5566
  7789」 names the 户号): the named detail gets the value whatever the digits look like.
* `declined_details` — details the customer declines (「不方便留电话」「我想匿名」).
* `address_gap` — what a visit address still lacks (a town alone is not a place a crew can
  find), as the key of the question to ask for the missing part.
* `is_attempt` — whether a message tried to give a detail at all (a wrong number is a try,
  「嗯嗯那个」 is not: the first counts as a failed attempt, the second as not understood).
* `invalid_text` — what to tell the customer about a value that did not pass, naming it.
* `split_joint_answer` — the answer to a joint question (「姓名和联系电话」) cut in two.

The words come from the catalog (fields' `cues`, `decline_words`).
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, Optional, Set, Tuple

from bot.core.catalog import Catalog, JointQuestion, load_catalog
from bot.core.normalize import CN_DIGITS, TICKET_RE, digits_of, normalize_text

NUMBER_KINDS = ("phone", "account_no", "ticket_lookup", "capacity_kw")
_NUMBER = re.compile(f"[0-9{CN_DIGITS}](?:[\\s-]?[0-9{CN_DIGITS}])*")
# Words between a cue and its value: 「户号写错了，应该是…」「电话改成…」「地址：…」
_FILLER = re.compile(
    r"^[\s,，:：]*(?:(?:写|填|打|说|给|记)?错了|不对|有误|搞错了?|写错|"
    r"应该|正确的|其实|改成|改为|换成|变成|更正为|更正|要改|改|是|系|为|叫|在|喺|呢个|这个|"
    r"[\s,，:：。])*"
)
_CLAUSE_END = re.compile(r"[。；;!！?？\n,，]")

# Parts of an address (bot/core/normalize.py keeps what is an address at all).
_ROAD = re.compile(r"(?:路|大道|大街|街(?!道)|巷|弄|胡同|马路|公路|国道|省道)")
_HOUSE_NUMBER = re.compile(
    f"[0-9{CN_DIGITS}十百]+\\s*(?:号|號|栋|幢|座|单元|室|楼|层|房|巷|弄|组|排|铺|档)"
)
_VILLAGE = re.compile(r"(?:村|社区|寨|围|厝|乡|屯|农场|渔港)")
_VILLAGE_DETAIL = re.compile(
    f"(?:[0-9{CN_DIGITS}十]+\\s*(?:巷|组|队|号|排|座)|村民小组|片区|[东西南北中]片)"
)
_ESTATE = re.compile(
    r"(?:小区|花园|大厦|公寓|苑|广场|新村|山庄|楼盘|宿舍|工业区|工业园|园区|市场|商场)"
)
_PLACE = re.compile(
    r"(?:加油站|学校|小学|中学|幼儿园|医院|卫生院|祠堂|宗祠|市场|菜市场|银行|超市|公园|车站|桥|庙|"
    r"政府|派出所|工厂|厂|仓库|码头|球场|广场|酒店|祠|变压器|电房|配电房)"
)
_LANDMARK = re.compile(
    r"(?:旁边|旁|对面|附近|后面|后边|前面|门口|隔壁|路口|交界|斜对面|边上|侧|背后|入口|里面)"
)


def _cue_positions(text: str, catalog: Catalog, names: Iterable[str]) -> Dict[str, Tuple[int, int]]:
    """For each field named in `text`, (start, end) of its last cue (longer cues win overlaps)."""
    found: Dict[str, Tuple[int, int]] = {}
    taken: Set[int] = set()
    cues = sorted(
        ((cue, name) for name in names for cue in catalog.fields[name].cues),
        key=lambda pair: -len(pair[0]),
    )
    for cue, name in cues:
        for match in re.finditer(re.escape(cue), text):
            span = set(range(match.start(), match.end()))
            if span & taken:
                continue  # 「联系电话」: 电话 is already part of a longer cue
            taken |= span
            if match.end() > found.get(name, (-1, -1))[1]:
                found[name] = (match.start(), match.end())
    return found


def named_details(
    text: str, names: Iterable[str], catalog: Optional[Catalog] = None
) -> Dict[str, str]:
    """Details among `names` that the message names with a cue, with the text that follows.

    Only a value that comes after its cue counts (「电话不方便」 names nothing). Numbers are
    cut out as written (spaces and dashes kept, the validator reads them)."""
    catalog = catalog or load_catalog()
    folded = normalize_text(text)
    names = list(names)
    positions = _cue_positions(folded, catalog, names)
    starts = sorted(start for start, _ in positions.values())
    values: Dict[str, str] = {}
    for name, (_, end) in positions.items():
        following = [s for s in starts if s >= end]
        rest = folded[end : min(following) if following else len(folded)]
        rest = _FILLER.sub("", rest, count=1)
        rest = _CLAUSE_END.split(rest, maxsplit=1)[0].strip(" ,，、")
        kind = catalog.fields[name].kind
        ticket = TICKET_RE.search(rest[:40]) if kind == "ticket_lookup" else None
        if ticket:
            values[name] = ticket.group(0)
        elif kind in NUMBER_KINDS:
            number = _NUMBER.search(rest[:24])
            if number and (kind == "capacity_kw" or len(digits_of(number.group())) >= 3):
                values[name] = (
                    (number.group() + rest[number.end() : number.end() + 4]).strip()
                    if kind == "capacity_kw"
                    else number.group()
                )
        elif rest:
            values[name] = rest
    return values


def declined_details(
    text: str,
    names: Iterable[str],
    requested: Optional[str] = None,
    catalog: Optional[Catalog] = None,
) -> Set[str]:
    """Details among `names` the customer declines: a decline word with the detail's cue, or
    as the answer to the detail just asked; 「匿名」 declines the phone and the name."""
    catalog = catalog or load_catalog()
    folded = normalize_text(text)
    if not any(word in folded for word in catalog.decline_words):
        return set()
    names = list(names)
    declined = {n for n in names if any(cue in folded for cue in catalog.fields[n].cues)}
    if requested in names:
        declined.add(requested)
    if "匿名" in folded:
        declined |= {n for n in ("phone", "customer_name") if n in names}
    return declined


def address_gap(address: str) -> Optional[str]:
    """None when a crew can find the place; else the `dialogue_messages` key of the question
    for the missing part: a road and number, a village and its lane or group, or a building
    with its unit all count as precise (a landmark next to a road or village does too)."""
    text = normalize_text(address)
    has_number = bool(_HOUSE_NUMBER.search(text))
    road, village, estate = _ROAD.search(text), _VILLAGE.search(text), _ESTATE.search(text)
    landmark = bool(_LANDMARK.search(text))
    if road and (has_number or landmark):
        return None
    if village and (_VILLAGE_DETAIL.search(text) or has_number or landmark):
        return None
    if estate and has_number:
        return None
    if landmark and (estate or _PLACE.search(text)):
        return None
    if road:
        return "address_needs_number"
    if estate:
        return "address_needs_unit"
    if village:
        return "address_needs_lane"
    return "address_needs_road"


def join_address(partial: str, answer: str) -> str:
    """The partial address completed by the customer's answer (「两英镇」 + 「古溪村三巷12号」);
    an answer that names its own district or town is a whole address and stands alone."""
    partial, answer = partial.strip(), answer.strip(" ,，。")
    if not partial or partial in answer or place_mention(answer):
        return answer
    return partial + answer


def is_attempt(kind: str, text: str) -> bool:
    """Whether `text` tries to give a detail of `kind` at all (digits for a number, place
    words for an address …); 「嗯嗯那个」 tries nothing."""
    folded = normalize_text(text)
    if kind in NUMBER_KINDS or kind in ("month",):
        return bool(_NUMBER.search(folded)) or "十" in folded
    if kind in ("address", "area"):
        return bool(
            _ROAD.search(folded)
            or _VILLAGE.search(folded)
            or _ESTATE.search(folded)
            or re.search(r"[区县镇市街道号栋楼]", folded)
        )
    if kind == "name":
        return bool(re.search(r"[\u4e00-\u9fa5A-Za-z]{2,}", folded)) and len(folded) <= 20
    return len(re.sub(r"\W", "", folded)) >= 2


def invalid_text(
    field_name: str, reason: str, value: str, catalog: Optional[Catalog] = None
) -> str:
    """What to say about a value of `field_name` that failed with `reason`, naming it."""
    catalog = catalog or load_catalog()
    field = catalog.fields[field_name]
    template = field.invalid.get(reason)
    if not template:
        return field.reask
    shown = digits_of(value) if field.kind in NUMBER_KINDS else value.strip()
    return template.format(value=shown, length=len(digits_of(value)))


_TOWN = re.compile(r"([\u4e00-\u9fa5]{2,3}(?:镇|街道|乡))")


def place_mention(text: str) -> Optional[str]:
    """A district and/or town the message mentions (「刚搬来潮南区两英镇」 → 潮南区两英镇), for
    a visit address the NLU did not find: kept as its first part."""
    from bot.core.settings import get_settings

    folded = normalize_text(text)
    districts = sorted(get_settings().areas.districts, key=len, reverse=True)
    for district in districts:
        start = folded.find(district)
        if start >= 0:
            town = _TOWN.match(folded, start + len(district))
            return district + (town.group(1) if town else "")
    town = _TOWN.search(folded)
    return town.group(1) if town else None


_CLAUSE = re.compile(r"[,，。；;!！?？\n]")


def answer_clause(text: str, span: str) -> str:
    """The whole clause of `text` that contains the NLU's `span` (an address answer the
    entity extractor cut short: 「大布上村三巷8号」 read as 「上村三巷8号」)."""
    folded = normalize_text(text)
    start = folded.find(span)
    if start < 0:
        return span
    clause_start = max((m.end() for m in _CLAUSE.finditer(folded, 0, start)), default=0)
    following = _CLAUSE.search(folded, start + len(span))
    clause = folded[clause_start : following.start() if following else len(folded)].strip()
    return clause or span


_SEPARATORS = " ,，、。.;；/|\n\t"


def split_joint_answer(
    text: str, joint: JointQuestion, catalog: Optional[Catalog] = None
) -> Dict[str, str]:
    """The answer to a joint question cut into its two details (「陈伟明 13800138000」 →
    name and phone): the phone is the last number of seven digits or more, with its cue
    (「电话是」) left out of the rest; the rest is the other detail. A detail the answer does not
    give is missing from the result."""
    catalog = catalog or load_catalog()
    first, number_field = joint.fields
    folded = normalize_text(text)
    numbers = [m for m in _NUMBER.finditer(folded) if len(digits_of(m.group())) >= 7]
    values: Dict[str, str] = {}
    rest = folded
    if numbers:
        number = numbers[-1]
        values[number_field] = number.group()
        rest = folded[: number.start()] + " " + folded[number.end() :]
        cues = sorted(
            (c for c in catalog.fields[number_field].cues if len(c) > 1), key=len, reverse=True
        )
        cue_pattern = "|".join(re.escape(cue) for cue in cues)
        if cue_pattern:
            rest = re.sub(
                f"(?:联系|留)?(?:{cue_pattern})号?(?:码)?\\s*(?:是|系|为|：|:)?", " ", rest
            )
    rest = re.sub(r"\s+", " ", rest).strip(_SEPARATORS)
    if rest:
        values[first] = rest
    return values
