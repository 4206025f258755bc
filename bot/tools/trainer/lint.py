"""NLU data lint: the problems `rasa data validate` does not look for.

* ``conflict``        the same text (after width/script/space folding) under two intents
* ``near_duplicate``  almost the same text under two intents (character-bigram Jaccard)
* ``too_few``         an intent with fewer examples than config/trainer.yml asks for
* ``entity_span``     an annotation whose span does not fit the text (blank or punctuation at
                      its edges, cutting a number in two, a name with 我叫 inside it)
* ``entity_value``    an annotation whose value does not parse to the contract's normalised
                      form, or whose explicit value disagrees with it (``[工厂]`` = 居民)
* ``leak``            a training example that is also in a test set (tests/nlu/*.yml)

``near_duplicate`` is a warning (two intents may share a phrase on purpose); the others
are errors and make ``python -m bot trainer lint`` (and ``make validate``) fail.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from bot.core.normalize import InvalidValue, normalize_text, parse_customer_name
from bot.core.settings import PROJECT_ROOT, LintConfig, get_settings
from bot.core.training.inbox import text_key

DATA_DIR = PROJECT_ROOT / "data" / "nlu"
TESTS_DIR = PROJECT_ROOT / "tests" / "nlu"
WARNINGS = ("near_duplicate",)
_BAD_EDGE = ("Po", "Pd", "Pc")  # commas, full stops, dashes; brackets may enclose an area code
_CONTRACT_VALUES = (
    "phone",
    "account_no",
    "ticket_no",
    "capacity_kw",
    "month",
    "customer_type",
    "change_direction",
    "business",
)


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    entities: tuple
    file: str


@dataclass(frozen=True)
class Issue:
    kind: str
    intent: str
    text: str
    file: str
    detail: str

    @property
    def is_error(self) -> bool:
        return self.kind not in WARNINGS

    def __str__(self) -> str:
        return f"{self.kind:14s} {self.file}  {self.intent}: {self.text}  — {self.detail}"


def lint_config() -> LintConfig:
    return get_settings().trainer.lint


def load_examples(paths: Iterable[Path]) -> List[Example]:
    """Intent examples of the given YAML files, parsed by Rasa (entities with start/end)."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader
    from rasa.shared.nlu.training_data.loading import load_data

    examples = []
    for path in sorted(paths):
        if not RasaYAMLReader.is_yaml_nlu_file(path):
            continue  # e.g. tests/nlu/floors.yml
        for message in load_data(str(path)).intent_examples:
            examples.append(
                Example(
                    message.get("text"),
                    message.get("intent"),
                    tuple(message.get("entities") or ()),
                    Path(path).name,
                )
            )
    return examples


def _same_text(text: str) -> str:
    return " ".join(normalize_text(text).lower().split()).strip(" ,，.。!！?？~～")


def conflicts(examples: Sequence[Example]) -> List[Issue]:
    by_text: Dict[str, List[Example]] = defaultdict(list)
    for example in examples:
        by_text[_same_text(example.text)].append(example)
    issues = []
    for group in by_text.values():
        intents = sorted({e.intent for e in group})
        if len(intents) > 1:
            for example in group:
                issues.append(
                    Issue(
                        "conflict",
                        example.intent,
                        example.text,
                        example.file,
                        f"same text under {', '.join(intents)}",
                    )
                )
    return issues


def _bigrams(text: str) -> frozenset:
    key = text_key(text) or _same_text(text)
    return frozenset(key[i : i + 2] for i in range(max(len(key) - 1, 1)))


def near_duplicates(examples: Sequence[Example], threshold: float) -> List[Issue]:
    """Pairs of different intents whose bigram sets overlap ≥ threshold (same text excluded)."""
    grams = [_bigrams(e.text) for e in examples]
    postings: Dict[str, List[int]] = defaultdict(list)
    issues = []
    for i, (example, mine) in enumerate(zip(examples, grams)):
        shared = Counter(j for gram in mine for j in postings[gram])
        for j, common in shared.items():
            other = examples[j]
            if other.intent == example.intent or _same_text(other.text) == _same_text(example.text):
                continue
            if common / (len(mine) + len(grams[j]) - common) >= threshold:
                issues.append(
                    Issue(
                        "near_duplicate",
                        example.intent,
                        example.text,
                        example.file,
                        f"almost the same as {other.intent}: {other.text} ({other.file})",
                    )
                )
        for gram in mine:
            postings[gram].append(i)
    return issues


def too_few(examples: Sequence[Example], minimum: int) -> List[Issue]:
    counts = Counter(e.intent for e in examples)
    files = {e.intent: e.file for e in examples}
    return [
        Issue("too_few", intent, "", files[intent], f"{n} examples, at least {minimum} needed")
        for intent, n in sorted(counts.items())
        if n < minimum
    ]


def _is_word_char(char: str) -> bool:
    return char.isdigit() or (char.isascii() and char.isalpha())


def _span_problem(text: str, entity: Dict[str, Any]) -> Optional[str]:
    start, end = entity["start"], entity["end"]
    span = text[start:end]
    if (
        not span
        or span != span.strip()
        or unicodedata.category(span[0]) in _BAD_EDGE
        or unicodedata.category(span[-1]) in _BAD_EDGE
    ):
        return f"span {span!r} has blank or punctuation at its edge"
    if (start > 0 and _is_word_char(text[start - 1]) and _is_word_char(span[0])) or (
        end < len(text) and _is_word_char(text[end]) and _is_word_char(span[-1])
    ):
        return f"span {span!r} cuts a number or word of the text in two"
    if entity["entity"] == "customer_name":
        try:
            if parse_customer_name(span) != normalize_text(span).strip():
                return f"span {span!r} holds more than the name"
        except InvalidValue:
            pass  # a surname alone (我姓陈) is allowed
    return None


def _value_problem(text: str, entity: Dict[str, Any], today: dt.date) -> Optional[str]:
    from bot.core.entities import value_for  # the one place contract values are computed

    if entity["entity"] not in _CONTRACT_VALUES:
        return None
    span = normalize_text(text[entity["start"] : entity["end"]])
    annotated = entity.get("value")
    explicit = annotated not in (None, text[entity["start"] : entity["end"]])
    value = value_for(entity["entity"], span, None, today)
    if value is None and explicit:
        value = value_for(entity["entity"], span, annotated, today)
    if value is None:
        return f"{span!r} does not parse as {entity['entity']}"
    if explicit and str(value) != str(annotated):
        return f"value {annotated!r} but {span!r} normalises to {value!r}"
    return None


def entity_problems(examples: Sequence[Example], today: Optional[dt.date] = None) -> List[Issue]:
    today = today or dt.date.today()
    issues = []
    for example in examples:
        for entity in example.entities:
            span = _span_problem(example.text, entity)
            if span:
                issues.append(
                    Issue("entity_span", example.intent, example.text, example.file, span)
                )
                continue
            value = _value_problem(example.text, entity, today)
            if value:
                issues.append(
                    Issue("entity_value", example.intent, example.text, example.file, value)
                )
    return issues


def leaks(
    training: Sequence[Example], tests: Sequence[Example], min_chars: int, similarity: float
) -> List[Issue]:
    """Training examples that are in a test set, or a paraphrase of one (character bigrams
    overlapping ≥ `similarity`); stock phrases (你好, 转人工) are too short to leak."""
    tested = {_same_text(e.text): e for e in tests if len(text_key(e.text)) >= min_chars}
    postings: Dict[str, List[Example]] = defaultdict(list)
    test_grams: Dict[int, frozenset] = {}
    for example in tested.values():
        test_grams[id(example)] = grams = _bigrams(example.text)
        for gram in grams:
            postings[gram].append(example)
    issues = []
    for example in training:
        if len(text_key(example.text)) < min_chars:
            continue
        if (key := _same_text(example.text)) in tested:
            issues.append(
                Issue(
                    "leak",
                    example.intent,
                    example.text,
                    example.file,
                    f"also in {tested[key].file}",
                )
            )
            continue
        mine = _bigrams(example.text)
        shared = Counter(id(t) for gram in mine for t in postings[gram])
        by_id = {id(t): t for gram in mine for t in postings[gram]}
        # the most similar test item (not merely the one sharing most bigrams: with ties, which
        # one `most_common` returned depended on the set's hash order, so the lint flickered)
        best = max(
            shared.items(),
            key=lambda item: (item[1] / (len(mine) + len(test_grams[item[0]]) - item[1]), -item[0]),
            default=None,
        )
        if best is not None:
            test_id, common = best
            if common / (len(mine) + len(test_grams[test_id]) - common) >= similarity:
                other = by_id[test_id]
                issues.append(
                    Issue(
                        "leak",
                        example.intent,
                        example.text,
                        example.file,
                        f"a paraphrase of「{other.text}」in {other.file}",
                    )
                )
    return issues


def lint(data_dir: Path = DATA_DIR, tests_dir: Optional[Path] = TESTS_DIR) -> List[Issue]:
    """Every issue of the NLU files in `data_dir` (and leaks into the sets in `tests_dir`)."""
    config = lint_config()
    training = load_examples(Path(data_dir).glob("*.yml"))
    issues = (
        conflicts(training)
        + entity_problems(training)
        + too_few(training, config.min_examples_per_intent)
    )
    if tests_dir is not None:
        issues += leaks(
            training,
            load_examples(Path(tests_dir).glob("*.yml")),
            config.leak_min_chars,
            config.leak_similarity,
        )
    issues += near_duplicates(training, config.near_duplicate_similarity)
    return issues
