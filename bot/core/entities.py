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

from bot.core import normalize
from bot.core.catalog import load_catalog

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
    r"^的?(?:斜对面|门口|旁边|附近|对面|楼下|后面|前面|隔壁|边上|路口|那边|这边)"
)


def _with_landmark(text: str, entity: Dict[str, Any]) -> Dict[str, Any]:
    """An address span that stops just before 门口/旁边/对面… includes it: the crew needs it."""
    following = _LANDMARK_AFTER.match(text[entity[ENTITY_ATTRIBUTE_END] :])
    if not following:
        return entity
    return {**entity, ENTITY_ATTRIBUTE_END: entity[ENTITY_ATTRIBUTE_END] + following.end()}


# A name after the words customers put before one (我叫…, 联系人…, 新户主是…): the
# statistical extractor misses names it has not seen, the lead-in is the reliable cue.
# 我是/我系 are left out on purpose (「我是居民」, 「我系业主」).
_NAME_LEAD_IN = re.compile(
    r"(?:我叫|我的名字(?:是|叫)|名字(?:是|叫)|姓名(?:是|为)?|联系人(?:是|叫)?|联络人(?:是|叫)?"
    r"|(?:新)?户主(?:名字)?(?:是|叫|系|为)?|申请人(?:姓名)?(?:是|为)?|登记人(?:是|为)?)[:：\s]*"
)
_NAME_AFTER_LEAD_IN = re.compile(
    r"([\u4e00-\u9fa5]{2,4}?)(?=$|[，,。.！!？?；;、\s\d]|电话|手机|联系|号码|的|嘅|啊|呀|吗|呢|先生|女士)"
)
_NOT_A_NAME_START = set("这那什怎谁哪一不是要我你他她们的了在有没")
LEAD_IN_EXTRACTOR = "LeadInNames"


def names_after_lead_ins(text: str) -> List[Tuple[int, int]]:
    """(start, end) of the names that follow a lead-in such as 我叫 or 新户主是."""
    spans = []
    for lead in _NAME_LEAD_IN.finditer(text):
        match = _NAME_AFTER_LEAD_IN.match(text, lead.end())
        if match and match.group(1)[0] not in _NOT_A_NAME_START:
            spans.append((match.start(1), match.end(1)))
    return spans


def _lead_in_names(text: str, kept: List[Dict[str, Any]], today: dt.date) -> List[Dict[str, Any]]:
    found = []
    for start, end in names_after_lead_ins(text):
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


def normalize_entities(
    text: str, entities: List[Dict[str, Any]], today: dt.date
) -> List[Dict[str, Any]]:
    """Resolve overlaps between extractors and normalise every value (see module doc)."""
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
            entity_type = _number_role(text, entity)
        if any(
            _overlaps(k, entity) and k[ENTITY_ATTRIBUTE_TYPE] in _family(entity_type) for k in kept
        ):
            continue
        if entity_type == "address":
            entity = _with_landmark(text, entity)
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
    if not any(k[ENTITY_ATTRIBUTE_TYPE] == "customer_name" for k in kept):
        kept += _lead_in_names(text, kept, today)
    return sorted(kept, key=lambda e: e[ENTITY_ATTRIBUTE_START])
