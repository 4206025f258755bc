"""Extracted entities → the contract's values (spec §2), independent of Rasa.

Used by the NLU pipeline's `EntityNormalizer` (bot/plugins/nlu.py), by the evaluation and by
the training-data lint, so all three read an annotation the same way. Structured numbers come
from RegexEntityExtractor; a statistical guess for them is kept only when no regex match covers
it and it parses. Phone and account number on the same span are told apart by the words before
them (电话… / 户号…).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Dict, List, Optional, Tuple

from bot.core import addresses, normalize
from bot.core.catalog import load_catalog
from bot.core.settings import get_settings

ENTITY_ATTRIBUTE_START, ENTITY_ATTRIBUTE_END = "start", "end"
ENTITY_ATTRIBUTE_TYPE, ENTITY_ATTRIBUTE_VALUE, EXTRACTOR = "entity", "value", "extractor"

CUE_WINDOW = 12  # characters before a number where 户号/电话 decide what it is
STRUCTURED_ENTITIES = ("phone", "account_no", "ticket_no", "capacity_kw", "month")
REGEX_EXTRACTOR = "RegexEntityExtractor"


def _overlaps(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    return (
        a[ENTITY_ATTRIBUTE_START] < b[ENTITY_ATTRIBUTE_END]
        and b[ENTITY_ATTRIBUTE_START] < a[ENTITY_ATTRIBUTE_END]
    )


def _number_role(text: str, entity: Dict[str, Any]) -> str:
    """`phone` or `account_no` for a number span, from the words just before it."""
    fields = load_catalog().fields
    before = text[
        max(0, entity[ENTITY_ATTRIBUTE_START] - CUE_WINDOW) : entity[ENTITY_ATTRIBUTE_START]
    ]
    account_cue = max((before.rfind(c) for c in fields["account_no"].cues), default=-1)
    phone_cue = max((before.rfind(c) for c in fields["phone"].cues), default=-1)
    if account_cue > phone_cue:
        return "account_no"
    if phone_cue > account_cue:
        return "phone"
    span = text[entity[ENTITY_ATTRIBUTE_START] : entity[ENTITY_ATTRIBUTE_END]]
    try:
        normalize.parse_phone(span)
        digits = normalize.digits_of(span)
        # Written as a landline: an area code in brackets, or a Guangdong one set apart.
        bracketed = digits.startswith("0") and any(c in span for c in "()（）")
        set_apart = any(c in span for c in "- ") and normalize.looks_like_landline(digits)
        landline = bracketed or set_apart or normalize.looks_like_landline(digits)
        return "phone" if digits.startswith("1") or landline else "account_no"
    except normalize.InvalidValue:
        return "account_no"


_YEAR_AFTER = re.compile(r"(?:19|20)[0-9]{2}$")


def _without_a_following_year(text: str, entity: Dict[str, Any]) -> Dict[str, Any]:
    """A number run on into the year written after it (「户号0346778899112026年10月」) ends
    before the year, when what is left is still an account number's length."""
    end = entity[ENTITY_ATTRIBUTE_END]
    span = text[entity[ENTITY_ATTRIBUTE_START] : end]
    if not text.startswith("年", end) or not _YEAR_AFTER.search(span):
        return entity
    if not 10 <= len(normalize.digits_of(span[:-4])) <= 16:
        return entity
    return {**entity, ENTITY_ATTRIBUTE_END: end - 4}


def value_for(entity_type: str, span: str, value: Any, today: dt.date) -> Optional[Any]:
    """The contract value of one entity, or None when it does not parse."""
    try:
        if entity_type == "month":
            return normalize.parse_month(span, today)
        if entity_type in ("phone", "account_no", "ticket_no", "capacity_kw"):
            return normalize.parse_value(entity_type, span)
        if entity_type in ("customer_type", "change_direction"):
            # EntitySynonymMapper may already have set the canonical value.
            source = value if value in ("居民", "非居民", "增容", "减容") else span
            return normalize.parse_value(entity_type, str(source))
        if entity_type == "business":
            catalog = load_catalog()
            service = catalog.business_for_text(str(value)) or catalog.business_for_text(span)
            return service.code if service else None
    except normalize.InvalidValue:
        return None
    return span.strip() or None


def _family(entity_type: str) -> Tuple[str, ...]:
    """Entity types that compete for the same span (a number is a phone OR an account)."""
    return ("phone", "account_no") if entity_type in ("phone", "account_no") else (entity_type,)


_LANDMARK_AFTER = re.compile(
    r"^的?(?:[\u4e00-\u9fa5]{0,4}?(?:市场|菜市场|学校|小学|中学|幼儿园|医院|卫生院|加油站|祠堂|公园"
    r"|车站|银行|超市|广场|桥头|牌坊))?(?:斜对面|门口|旁边|附近|对面|楼下|后面|前面|隔壁|边上|路口)"
)


def known_places() -> Tuple[str, ...]:
    """The cities, districts, counties and towns of config/areas.yml (汕头市, 金平区, 达濠 …), and the
    cities as customers write them without 市 (东莞长安镇, 深圳龙华区): parts of an address."""
    areas = get_settings().areas
    return tuple(
        {*areas.districts, *areas.cities, *areas.counties}
        | {t for b in areas.branches for t in b.towns}
        | {t.name for t in areas.towns}
        | {c[:-1] for c in areas.cities if c.endswith("市") and len(c) > 2}
    )


def _with_landmark(text: str, entity: Dict[str, Any]) -> Dict[str, Any]:
    """The address `entity` including a landmark just after it: 门口/旁边/对面, 市场旁边,
    中心小学门口 … (the crew needs it)."""
    following = _LANDMARK_AFTER.match(text[entity[ENTITY_ATTRIBUTE_END] :])
    if not following:
        return entity
    return {**entity, ENTITY_ATTRIBUTE_END: entity[ENTITY_ATTRIBUTE_END] + following.end()}


def _address_edges(text: str, entity: Dict[str, Any]) -> Dict[str, Any]:
    """The extractor's address span re-read as a chain of address parts (bot/core/addresses.py),
    then including a landmark just after it."""
    refined = addresses.refine(
        text, entity[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_END], known_places()
    )
    if refined:
        entity = {**entity, ENTITY_ATTRIBUTE_START: refined[0], ENTITY_ATTRIBUTE_END: refined[1]}
    return _with_landmark(text, entity)


# A name after the words customers put before one (我叫…, 联系人…, 新户主是…): the
# statistical extractor misses names it has not seen, the lead-in is the reliable cue.
# 我是/我系 are left out on purpose (「我是居民」, 「我系业主」).
_LEAD_IN_VERB = r"(?:是|叫|系|为|写成|写|填成|填)?"
_NAME_LEAD_IN = re.compile(
    r"(?:我叫|我个名叫|名叫|(?:我的)?名字(?:是|叫|就是|系)|姓名|(?:联系|联络|联细|连系|联西)人"
    r"|(?:新)?户主(?:名字|姓名)?|户名(?=写|填)|申请人(?:姓名)?|登记人|权利人|新业主|负责人|经办人"
    r"|(?:佢|他|她|老公|老婆|老豆|阿爸|阿妈|我爸|我妈)叫"
    r"|my name is|name is|name[:：\s]|contact(?: person)?[:：\s])" + _LEAD_IN_VERB + r"[:：\s]*"
    # who the name belongs to, or a filler, between the lead-in and the name
    r"(?:我(?:妈妈|爸爸|妈|爸|老婆|老公|太太|先生|爱人|儿子|女儿|父亲|母亲)叫?|那个|就是|嗯|呃)?[:：\s]*",
    re.IGNORECASE,
)
# A name ends at punctuation, a digit, or the words customers put after one (电话…, 然后…,
# 口天吴 — how a character is written).
_NAME_AFTER_LEAD_IN = re.compile(
    r"([\u4e00-\u9fa5]{2,4}?)(?=$|[^\u4e00-\u9fa5]|电话|手机|联系|号码|的|嘅|啊|呀|吗|呢|先生|女士"
    r"|小姐|然后|就是|就|户号|地址|口天|弓长|立早|耳东|木子|古月|双木|言午|草头)"
)
_NOT_A_NAME_START = set("这那什怎谁哪一不是要我你他她们的了在有没")
_CUE_WORDS = ("电话", "手机", "号码", "联系", "地址", "户号", "姓名", "名字")
LEAD_IN_EXTRACTOR = "LeadInNames"


# The commonest surnames of Guangdong and China (compound ones first): a weak cue (我系, 找,
# 改成) or a bare answer counts as a name only when it starts with one of them.
COMPOUND_SURNAMES = (
    "欧阳",
    "司徒",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "令狐",
    "夏侯",
)
SURNAMES = set(
    "陈林黄李张王刘吴郑蔡杨许谢郭洪曾周赖邱罗何徐苏叶庄卢詹江余朱胡沈高梁马方姚彭萧肖廖潘"
    "钟钱孙赵冯韩唐董袁邓傅田宋丁魏蒋程吕熊任孔邹康伍严汤欧柯翁池魏纪卓温邝麦冼龚游连"
    "黎颜凌谭崔汪尤姜范金石陆贺顾毛郝白孟秦易雷文施薛龚邵万侯段雷钱章鲁韦龙覃莫岑植甘"
    "佘阮骆古巫饶关简戴夏蓝涂练邬庞聂陶武乔俞贾邢丘霍尹闫左宁"
)
_RELATIVES = (
    r"(?:阿爸|阿妈|阿爷|阿嫲|阿婆|阿公|老豆|老母|爸爸|妈妈|我爸|我妈|父亲|母亲|老公|老婆"
    r"|爷爷|奶奶|公公|婆婆|儿子|女儿|哥哥|弟弟|姐姐|妹妹|老弟|细佬)"
)
_WEAK_NAME_LEAD_IN = re.compile(
    r"(?:我系|我係|我是|本人|叫我|找|搵|(?:过户给|过户到|转到|转给|转俾|过俾|改成|换成|改为)我?"
    r"|户名(?:是|为)?|名字(?:写成|写|填成|填)?|称呼|(?:联系|联络)(?!方式|电话|号码|人|我|你)"
    rf"|业主(?:是|叫|系)?我?|{_RELATIVES})[:：\s]*"
)
_NAME_END = (
    r"(?=$|[，,。.！!？?；;、/\s\d]|电话|手机|联系|号码|的|嘅|啊|呀|吗|呢|先生|女士|小姐|名下"
    r"|于|就|得|啦|吧)"
)
_SURNAME_NAME = re.compile(
    "((?:"
    + "|".join(COMPOUND_SURNAMES)
    + ")[\u4e00-\u9fa5]{1,2}|[\u4e00-\u9fa5]{2,3}?)"
    + _NAME_END
)
_NOT_IN_A_NAME = set("你我他她它的了吗呢吧啊呀哦嗯喔里来去是不有没在这那么个些上下就要想说")
_PLACE_OR_THING_ENDINGS = set("区县镇市村乡路街巷号栋楼层室线厂站房店铺表箱电灯闸费")
_HONORIFIC = re.compile(r"(?:先生|女士|小姐|生|太|姨|伯)$")
_NUMBERS_AND_SEPARATORS = re.compile(r"[0-9０-９\-－()（）+\s,，、。.;；/:：]+")


def _has_surname(name: str) -> bool:
    return name[:2] in COMPOUND_SURNAMES or name[0] in SURNAMES


def _plausible_name(word: str) -> bool:
    """A common surname first, no function word inside, not a place or a thing (龙湖区, 电表箱)."""
    return (
        _has_surname(word)
        and not set(word) & _NOT_IN_A_NAME
        and word[-1] not in _PLACE_OR_THING_ENDINGS
    )


def names_after_lead_ins(text: str) -> List[Tuple[int, int]]:
    """(start, end) of the names that follow a lead-in such as 我叫 or 新户主是; after a weak
    cue (我系, 找, 改成 …) only a name that starts with a common surname."""
    spans = []
    for lead in _NAME_LEAD_IN.finditer(text):
        match = _NAME_AFTER_LEAD_IN.match(text, lead.end())
        if (
            match
            and match.group(1)[0] not in _NOT_A_NAME_START
            and not match.group(1).startswith(_CUE_WORDS)  # 「联系人电话1369…」 names nobody
        ):
            spans.append((match.start(1), match.end(1)))
    for lead in _WEAK_NAME_LEAD_IN.finditer(text):
        match = _SURNAME_NAME.match(text, lead.end())
        if (
            match
            and _plausible_name(match.group(1))
            and not any(s < match.end(1) and match.start(1) < e for s, e in spans)
        ):
            spans.append((match.start(1), match.end(1)))
    return spans


def bare_name(text: str) -> Optional[Tuple[int, int]]:
    """(start, end) of a name that is the whole answer, maybe beside a phone number
    (「陈伟明」「林小红 13800138000」「黄生」): two to four characters, a common surname first."""
    parts = [p for p in _NUMBERS_AND_SEPARATORS.split(text) if p]
    if len(parts) != 1:
        return None
    word = parts[0]
    core = _HONORIFIC.sub("", word)  # 黄生 → 黄, 林小姐 → 林
    if (
        not 2 <= len(word) <= 5
        or not core
        or len(core) > 4
        or not re.fullmatch(r"[\u4e00-\u9fa5]+", word)
    ):
        return None
    if not _plausible_name(core) or word[-1] in _PLACE_OR_THING_ENDINGS:
        return None
    # two characters are too often a word (方便, 马上, 周末): a name only beside a phone number
    # or with a title (黄生, 林小姐)
    beside_a_number = len(text.strip()) > len(word)
    if (
        len(core) == 2
        and core == word
        and not beside_a_number
        and core[:2] not in COMPOUND_SURNAMES
    ):
        return None
    start = text.find(word)
    return start, start + len(word)


_A_NUMBER = re.compile(r"(?:[0-9][\s-]?){7}|[一二三四五六七八九零〇幺两]{7}")
# What stands between the items of a list: punctuation, spaces, emoji — anything but Chinese.
_ITEM_EDGE = r"[^\u4e00-\u9fa5A-Za-z0-9]"
_LISTED_ITEM = re.compile(rf"(?:^|(?<={_ITEM_EDGE}))([\u4e00-\u9fa5]{{2,4}})(?=$|{_ITEM_EDGE})")
# A surname with a title, the way customers sign (梁太, 骆生, 谢总, 麦主管, 何姑娘).
_TITLED = re.compile(r"(?:先生|女士|小姐|姑娘|师傅|经理|主管|老板|生|太|总|工|姨|伯|叔|哥|姐)")
# Two-character words that start like a surname but are no name (…13800138000，谢谢).
_NOT_A_TWO_CHARACTER_NAME = frozenset(
    {"谢谢", "多谢", "麻烦", "方便", "马上", "尽快", "白天", "晚上", "周末", "高兴", "辛苦", "何时"}
)


def _titled_name(word: str) -> bool:
    return word[0] in SURNAMES and bool(_TITLED.fullmatch(word, 1))


def listed_name(text: str) -> Optional[Tuple[int, int]]:
    """(start, end) of a name given as one item of a list (「光伏并网，陈秋霞，1871…」,
    「写我名字就行，王晓丹」, 「…石城镇，黎生」): an item between punctuation, spaces or emoji
    that is a surname with a title (梁太, 骆生, 谢总), or, in a message that also gives a number
    or speaks of a name, three characters (four with a compound surname) with a common surname
    first; two characters only right beside the number at the start or the end (「…，李燕」)."""
    with_a_number = bool(_A_NUMBER.search(text) or "名" in text)
    for match in _LISTED_ITEM.finditer(text):
        word = match.group(1)
        compound = word[:2] in COMPOUND_SURNAMES
        if _titled_name(word) and (match.start(1) > 0 or with_a_number):  # 「…石城镇，黎生」
            return match.start(1), match.end(1)
        if not with_a_number:
            continue
        if (len(word) == 3 or compound) and _plausible_name(word):
            return match.start(1), match.end(1)
        if len(word) == 2 and _plausible_name(word) and word not in _NOT_A_TWO_CHARACTER_NAME:
            before, after = text[: match.start(1)].rstrip(), text[match.end(1) :].lstrip()
            at_the_end = not after.strip("。.！!~～") and _A_NUMBER.search(before[-16:])
            at_the_start = not before and _A_NUMBER.match(
                re.sub(r"^[^0-9\u4e00-\u9fa5]*", "", after)
            )
            if at_the_end or at_the_start:
                return match.start(1), match.end(1)
    return None


def _lead_in_names(
    text: str, spans: List[Tuple[int, int]], kept: List[Dict[str, Any]], today: dt.date
) -> List[Dict[str, Any]]:
    """Names after lead-ins that no other entity covers; where there is none and nothing else
    was read as a name, a bare or listed name (「陈伟明」, 「…，梁太 1363…」)."""
    found = []
    named = any(k[ENTITY_ATTRIBUTE_TYPE] == "customer_name" for k in kept)
    whole = None if spans or named else bare_name(text) or listed_name(text)
    if whole:
        spans = [whole]
    for start, end in spans:
        candidate = {
            ENTITY_ATTRIBUTE_TYPE: "customer_name",
            ENTITY_ATTRIBUTE_START: start,
            ENTITY_ATTRIBUTE_END: end,
            EXTRACTOR: LEAD_IN_EXTRACTOR,
        }
        if any(_overlaps(candidate, k) for k in kept):
            continue
        value = value_for("customer_name", text[start:end], None, today)
        if value is not None:
            found.append(
                {**candidate, ENTITY_ATTRIBUTE_VALUE: value, "processors": ["EntityNormalizer"]}
            )
    return found


def _against_lead_ins(
    spans: List[Tuple[int, int]], entities: List[Dict[str, Any]]
) -> List[Dict[str, Any]]:
    """A statistical name that overlaps a name after a lead-in (`spans`) but has other edges
    (「联系人：郑雅琳女士」 → 郑雅琳女士) gives way to the lead-in's."""
    lead_ins = [{ENTITY_ATTRIBUTE_START: start, ENTITY_ATTRIBUTE_END: end} for start, end in spans]
    return [
        e
        for e in entities
        if e[ENTITY_ATTRIBUTE_TYPE] != "customer_name"
        or (e[ENTITY_ATTRIBUTE_START], e[ENTITY_ATTRIBUTE_END]) in spans
        or not any(_overlaps(e, lead_in) for lead_in in lead_ins)
    ]


def normalize_entities(
    text: str, entities: List[Dict[str, Any]], today: dt.date, as_annotated: bool = False
) -> List[Dict[str, Any]]:
    """Resolve overlaps between extractors and normalise every value (see module doc).

    `as_annotated` (a person's annotation, for the evaluation) normalises the values only: the
    spans stay where the annotator put them, and no name is added from a lead-in."""
    lead_in_spans = [] if as_annotated else names_after_lead_ins(text)
    entities = _against_lead_ins(lead_in_spans, entities)
    regex_spans = [
        e
        for e in entities
        if e.get(EXTRACTOR) == REGEX_EXTRACTOR and e[ENTITY_ATTRIBUTE_TYPE] in STRUCTURED_ENTITIES
    ]
    # Regex matches first, so that a DIET guess on the same span is the one dropped.
    ordered = sorted(
        entities,
        key=lambda e: (e.get(EXTRACTOR) != REGEX_EXTRACTOR, e[ENTITY_ATTRIBUTE_START]),
    )
    kept: List[Dict[str, Any]] = []
    for entity in ordered:
        entity_type = entity[ENTITY_ATTRIBUTE_TYPE]
        from_regex = entity.get(EXTRACTOR) == REGEX_EXTRACTOR
        if (
            not from_regex
            and entity_type in STRUCTURED_ENTITIES
            and any(_overlaps(entity, r) for r in regex_spans)
        ):
            continue
        if from_regex and entity_type in ("phone", "account_no"):
            entity = _without_a_following_year(text, entity)
            entity_type = _number_role(text, entity)
        if any(
            _overlaps(k, entity) and k[ENTITY_ATTRIBUTE_TYPE] in _family(entity_type) for k in kept
        ):
            continue
        if entity_type == "address" and not as_annotated:
            entity = _address_edges(text, entity)
            if any(_overlaps(k, entity) and k[ENTITY_ATTRIBUTE_TYPE] == "address" for k in kept):
                continue  # two pieces of one address (「濠江区」「达濠」) read as one
        span = text[entity[ENTITY_ATTRIBUTE_START] : entity[ENTITY_ATTRIBUTE_END]]
        value = value_for(entity_type, span, entity.get(ENTITY_ATTRIBUTE_VALUE), today)
        if value is None:
            continue
        kept.append(
            {
                **entity,
                ENTITY_ATTRIBUTE_TYPE: entity_type,
                ENTITY_ATTRIBUTE_VALUE: value,
                "processors": [*entity.get("processors", []), "EntityNormalizer"],
            }
        )
    if not as_annotated:
        kept = _with_address_chains(text, kept)
    if not as_annotated:
        kept += _lead_in_names(text, lead_in_spans, kept, today)
    return sorted(kept, key=lambda e: e[ENTITY_ATTRIBUTE_START])


ADDRESS_CHAIN_EXTRACTOR = "AddressChains"


def _with_address_chains(text: str, kept: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Addresses written as a chain from an area on (bot/core/addresses.py `chains`): an
    extracted address that overlaps one grows to cover it (「金石镇仙都村」 →
    「潮州市潮安区金石镇仙都村」) and a statistical name inside one goes («汕头市金平区民权路» is no
    name). When nothing was extracted as an address, the chain is the address: the one after a
    move (迁往, 搬到 …) if the message names one, else the first."""
    chains = [
        {ENTITY_ATTRIBUTE_START: start, ENTITY_ATTRIBUTE_END: end}
        for start, end in addresses.chains(text, known_places())
    ]
    result = [
        e
        for e in kept
        if not (
            e[ENTITY_ATTRIBUTE_TYPE] == "customer_name"
            and e.get(EXTRACTOR) != LEAD_IN_EXTRACTOR
            and any(
                c[ENTITY_ATTRIBUTE_START] <= e[ENTITY_ATTRIBUTE_START]
                and e[ENTITY_ATTRIBUTE_END] <= c[ENTITY_ATTRIBUTE_END]
                for c in chains
            )
        )
    ]
    extracted = [e for e in result if e[ENTITY_ATTRIBUTE_TYPE] == "address"]

    def joins(chain: Dict[str, Any], address: Dict[str, Any]) -> bool:
        """The chain overlaps the address or ends where it begins (「阳春市马水镇」+「加油站对面」)."""
        return (
            _overlaps(chain, address)
            or chain[ENTITY_ATTRIBUTE_END] == address[ENTITY_ATTRIBUTE_START]
        )

    for entity in extracted:
        for chain in chains:
            if joins(chain, entity):
                entity[ENTITY_ATTRIBUTE_START] = min(
                    chain[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_START]
                )
                entity[ENTITY_ATTRIBUTE_END] = max(
                    chain[ENTITY_ATTRIBUTE_END], entity[ENTITY_ATTRIBUTE_END]
                )
        entity[ENTITY_ATTRIBUTE_END] = _with_landmark(text, entity)[ENTITY_ATTRIBUTE_END]
        span = text[entity[ENTITY_ATTRIBUTE_START] : entity[ENTITY_ATTRIBUTE_END]]
        entity[ENTITY_ATTRIBUTE_VALUE] = span.strip()
    free = [
        c
        for c in chains
        if not any(_overlaps(e, c) for e in result) and not any(joins(c, e) for e in extracted)
    ]
    if extracted or not free:
        return result
    after_a_move = [c for c in free if addresses.follows_a_move(text, c[ENTITY_ATTRIBUTE_START])]
    chain = _with_landmark(text, after_a_move[-1] if after_a_move else free[0])
    span = text[chain[ENTITY_ATTRIBUTE_START] : chain[ENTITY_ATTRIBUTE_END]]
    return result + [
        {
            **chain,
            ENTITY_ATTRIBUTE_TYPE: "address",
            ENTITY_ATTRIBUTE_VALUE: span,
            EXTRACTOR: ADDRESS_CHAIN_EXTRACTOR,
            "processors": ["EntityNormalizer"],
        }
    ]
