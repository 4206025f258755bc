"""Evaluate a trained model on the held-out sets (`make evaluate`, the trainer's comparison).

* tests/nlu/holdout.yml — intent accuracy, macro-F1, per-intent F1, accuracy per `style`
  (plain, cantonese, traditional, typo, …), the most confused pairs, and entity precision /
  recall per entity, scored on their normalised VALUES (spec §2): `１３８ 1234 5678` must come
  out as `13812345678` to count. `unclear` and `nlu_fallback` are the same answer: "not
  understood".
* tests/nlu/out_of_domain.yml — the false-accept rate: foreign messages (hotels, travel, …)
  taken for a service, a query or a hand-over, overall and per foreign `domain`.
* tests/nlu/unclear.yml — filler, noise and half sentences that must read as not understood.

    python -m bot.tools.evaluation --model models/intake.tar.gz
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from bot.core.catalog import load_catalog
from bot.core.entities import STRUCTURED_ENTITIES, normalize_entities
from bot.core.settings import PROJECT_ROOT

HOLDOUT = PROJECT_ROOT / "tests" / "nlu" / "holdout.yml"
OUT_OF_DOMAIN = PROJECT_ROOT / "tests" / "nlu" / "out_of_domain.yml"
UNCLEAR = PROJECT_ROOT / "tests" / "nlu" / "unclear.yml"
REPORTS = PROJECT_ROOT / "reports"
FALLBACK_INTENT = "nlu_fallback"
NOT_UNDERSTOOD = {FALLBACK_INTENT, "unclear"}


@dataclass
class Example:
    text: str
    intent: str
    entities: List[Dict[str, Any]]
    tag: str = ""  # the example's style (holdout) or foreign domain (out-of-domain set)


@dataclass
class Prediction:
    intent: str  # after the FallbackClassifier (nlu_fallback possible)
    top_intent: str  # the classifier's best guess, ignoring the fallback
    confidence: float
    entities: List[Dict[str, Any]]
    seconds: float = 0.0


@dataclass
class Metrics:
    examples: int
    accuracy: float
    macro_f1: float
    fallback_rate: float
    accuracy_without_fallback: float
    per_intent: Dict[str, Dict[str, float]]
    per_style: Dict[str, Dict[str, float]]
    confused: List[Tuple[str, str, int]]
    entities: Dict[str, Dict[str, float]]
    structured_recall: float
    errors: List[Dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RejectionMetrics:
    """How a set of messages the bot must not act on was read."""

    examples: int
    false_accept_rate: float  # read as a service, a query or a hand-over
    not_understood_rate: float  # read as nlu_fallback / unclear
    out_of_scope_rate: float
    per_tag: Dict[str, Dict[str, float]]
    accepted: List[Dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def same_answer(intent: Optional[str]) -> Optional[str]:
    """`unclear` and `nlu_fallback` both mean "not understood"."""
    return FALLBACK_INTENT if intent in NOT_UNDERSTOOD else intent


def acting_intents() -> Set[str]:
    """Intents the bot acts on: a service (a form, a ticket), a query, or a hand-over."""
    catalog = load_catalog()
    return {
        *catalog.service_intents,
        *(q.intent for q in catalog.queries.values()),
        *catalog.answers,
        "request_human",
        "complaint",
    } - {"out_of_scope", "greet", "bot_challenge", "ask_capabilities"}


def load_examples(path: Path = HOLDOUT) -> List[Example]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    examples = []
    for message in data.intent_examples:
        metadata = (message.get("metadata") or {}).get("example") or {}
        tag = metadata.get("style") or metadata.get("domain") or metadata.get("kind") or ""
        examples.append(
            Example(
                message.get("text"),
                message.get("intent"),
                list(message.get("entities") or []),
                str(tag),
            )
        )
    return examples


def gold_values(example: Example, today: dt.date) -> Set[Tuple[str, str]]:
    """(entity, normalised value) pairs the annotation means, normalised like predictions."""
    from bot.core.normalize import normalize_text

    text = normalize_text(example.text)
    annotated = [
        {**e, "extractor": "RegexEntityExtractor" if e["entity"] in STRUCTURED_ENTITIES else "gold"}
        for e in example.entities
    ]
    return {
        (e["entity"], str(e["value"]))
        for e in normalize_entities(text, annotated, today, as_annotated=True)
    }


def predicted_values(prediction: Prediction) -> Set[Tuple[str, str]]:
    return {(e["entity"], str(e["value"])) for e in prediction.entities}


def load_agent(model: str) -> Any:
    from rasa.core.agent import Agent

    return Agent.load(model)


def predict(agent: Any, texts: Sequence[str]) -> List[Prediction]:
    async def run() -> List[Prediction]:
        results = []
        for text in texts:
            started = time.perf_counter()
            parsed = await agent.parse_message(text)
            seconds = time.perf_counter() - started
            ranking = [r for r in parsed.get("intent_ranking", []) if r["name"] != FALLBACK_INTENT]
            top = ranking[0] if ranking else parsed["intent"]
            results.append(
                Prediction(
                    intent=parsed["intent"]["name"],
                    top_intent=top["name"],
                    confidence=float(top.get("confidence") or 0.0),
                    entities=parsed.get("entities", []),
                    seconds=seconds,
                )
            )
        return results

    return asyncio.run(run())


def _f1(tp: int, fp: int, fn: int) -> Tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score(
    examples: Sequence[Example], predictions: Sequence[Prediction], today: dt.date
) -> Metrics:
    """All figures of one evaluation of the holdout."""
    intents = sorted({same_answer(e.intent) or "" for e in examples})
    counts: Dict[str, Counter] = {i: Counter() for i in intents}
    styles: Dict[str, Counter] = defaultdict(Counter)
    confused: Counter = Counter()
    entity_counts: Dict[str, Counter] = defaultdict(Counter)
    errors = []
    correct = correct_top = fallbacks = 0
    for example, prediction in zip(examples, predictions):
        gold, said = same_answer(example.intent) or "", same_answer(prediction.intent) or ""
        styles[example.tag or "-"]["n"] += 1
        if said == gold:
            correct += 1
            counts[gold]["tp"] += 1
            styles[example.tag or "-"]["correct"] += 1
        else:
            counts[gold]["fn"] += 1
            if said in counts:
                counts[said]["fp"] += 1
            confused[(gold, said)] += 1
            errors.append(
                {
                    "text": example.text,
                    "gold": gold,
                    "predicted": said,
                    "style": example.tag,
                    "confidence": round(prediction.confidence, 3),
                }
            )
        correct_top += same_answer(prediction.top_intent) == gold
        fallbacks += said == FALLBACK_INTENT
        gold_set, predicted = gold_values(example, today), predicted_values(prediction)
        for entity, value in gold_set | predicted:
            key = (
                "tp"
                if (entity, value) in gold_set and (entity, value) in predicted
                else ("fn" if (entity, value) in gold_set else "fp")
            )
            entity_counts[entity][key] += 1
        for entity, value in gold_set - predicted:
            errors.append({"text": example.text, "entity": entity, "missed": value})
        for entity, value in predicted - gold_set:
            errors.append({"text": example.text, "entity": entity, "spurious": value})

    per_intent = {}
    for intent in intents:
        c = counts[intent]
        p, r, f = _f1(c["tp"], c["fp"], c["fn"])
        per_intent[intent] = {"precision": p, "recall": r, "f1": f, "support": c["tp"] + c["fn"]}
    entities = {}
    for entity, c in sorted(entity_counts.items()):
        p, r, f = _f1(c["tp"], c["fp"], c["fn"])
        entities[entity] = {"precision": p, "recall": r, "f1": f, "support": c["tp"] + c["fn"]}
    structured = [entity_counts[e] for e in STRUCTURED_ENTITIES]
    s_tp = sum(c["tp"] for c in structured)
    s_fn = sum(c["fn"] for c in structured)
    n = len(examples)
    return Metrics(
        examples=n,
        accuracy=correct / n,
        macro_f1=sum(v["f1"] for v in per_intent.values()) / len(per_intent),
        fallback_rate=fallbacks / n,
        accuracy_without_fallback=correct_top / n,
        per_intent=per_intent,
        per_style={
            s: {"accuracy": c["correct"] / c["n"], "n": c["n"]} for s, c in sorted(styles.items())
        },
        confused=[(g, p, k) for (g, p), k in confused.most_common(12)],
        entities=entities,
        structured_recall=s_tp / (s_tp + s_fn) if s_tp + s_fn else 1.0,
        errors=errors,
    )


def score_rejections(
    examples: Sequence[Example], predictions: Sequence[Prediction]
) -> RejectionMetrics:
    """False accepts, not-understood and out-of-scope rates of a set the bot must not act on."""
    acting = acting_intents()
    tags: Dict[str, Counter] = defaultdict(Counter)
    accepted = []
    for example, prediction in zip(examples, predictions):
        said = same_answer(prediction.intent)
        tag = tags[example.tag or "-"]
        tag["n"] += 1
        tag["accepted"] += said in acting
        tag["not_understood"] += said == FALLBACK_INTENT
        tag["out_of_scope"] += said == "out_of_scope"
        if said in acting:
            accepted.append(
                {
                    "text": example.text,
                    "tag": example.tag,
                    "predicted": said,
                    "confidence": round(prediction.confidence, 3),
                }
            )
    n = max(len(examples), 1)
    return RejectionMetrics(
        examples=len(examples),
        false_accept_rate=sum(t["accepted"] for t in tags.values()) / n,
        not_understood_rate=sum(t["not_understood"] for t in tags.values()) / n,
        out_of_scope_rate=sum(t["out_of_scope"] for t in tags.values()) / n,
        per_tag={
            k: {"false_accept": t["accepted"] / t["n"], "n": t["n"]}
            for k, t in sorted(tags.items())
        },
        accepted=accepted,
    )


@dataclass
class Evaluation:
    holdout: Metrics
    out_of_domain: Optional[RejectionMetrics]
    unclear: Optional[RejectionMetrics]
    parse_p50_ms: float

    def as_dict(self) -> Dict[str, Any]:
        return {
            "holdout": self.holdout.as_dict(),
            "out_of_domain": self.out_of_domain.as_dict() if self.out_of_domain else None,
            "unclear": self.unclear.as_dict() if self.unclear else None,
            "parse_p50_ms": self.parse_p50_ms,
        }


def evaluate(model: str, data: Path = HOLDOUT, today: Optional[dt.date] = None) -> Metrics:
    """Load the model, predict every example of `data`, and score (the holdout figures)."""
    return evaluate_all(model, data, with_rejections=False, today=today).holdout


def evaluate_all(
    model: str, data: Path = HOLDOUT, with_rejections: bool = True, today: Optional[dt.date] = None
) -> Evaluation:
    """The holdout figures and, when present, the out-of-domain and not-understood ones."""
    from bot.core.clock import local_zone

    agent = load_agent(model)
    examples = load_examples(data)
    predictions = predict(agent, [e.text for e in examples])
    holdout = score(examples, predictions, today or dt.datetime.now(local_zone()).date())
    rejections: List[Optional[RejectionMetrics]] = []
    for path in (OUT_OF_DOMAIN, UNCLEAR):
        if with_rejections and path.exists():
            foreign = load_examples(path)
            rejections.append(score_rejections(foreign, predict(agent, [e.text for e in foreign])))
        else:
            rejections.append(None)
    p50 = statistics.median(p.seconds for p in predictions) * 1000 if predictions else 0.0
    return Evaluation(holdout, rejections[0], rejections[1], p50)


def print_report(evaluation: Evaluation) -> None:
    metrics = evaluation.holdout
    print(f"\nHoldout: {metrics.examples} examples")
    print(f"  intent accuracy       {metrics.accuracy:.4f}")
    print(f"  macro-F1              {metrics.macro_f1:.4f}")
    print(
        f"  fallback rate         {metrics.fallback_rate:.4f}  "
        f"(accuracy if fallback ignored: {metrics.accuracy_without_fallback:.4f})"
    )
    print(
        f"  structured-entity recall (phone, account_no, ticket_no, capacity_kw, month): "
        f"{metrics.structured_recall:.4f}"
    )
    print(f"  /model/parse p50      {evaluation.parse_p50_ms:.1f} ms (in process)")
    print("\nAccuracy per style:")
    for style, v in sorted(metrics.per_style.items(), key=lambda kv: kv[1]["accuracy"]):
        print(f"  {style:16s} {v['accuracy']:.3f}  n={v['n']:.0f}")
    print("\nPer-intent F1 (lowest first):")
    for intent, v in sorted(metrics.per_intent.items(), key=lambda kv: kv[1]["f1"]):
        print(
            f"  {intent:24s} F1 {v['f1']:.3f}  P {v['precision']:.3f}  R {v['recall']:.3f}  n={v['support']:.0f}"
        )
    print("\nMost confused (gold → predicted):")
    for gold, predicted, count in metrics.confused:
        print(f"  {gold:24s} → {predicted:24s} {count}")
    print("\nEntities (normalised values):")
    for entity, v in metrics.entities.items():
        print(
            f"  {entity:16s} P {v['precision']:.3f}  R {v['recall']:.3f}  F1 {v['f1']:.3f}  n={v['support']:.0f}"
        )
    for title, rejection in (
        ("Out of domain", evaluation.out_of_domain),
        ("Not understood", evaluation.unclear),
    ):
        if rejection is None:
            continue
        print(
            f"\n{title}: {rejection.examples} messages — false accept {rejection.false_accept_rate:.4f}, "
            f"not understood {rejection.not_understood_rate:.3f}, out of scope {rejection.out_of_scope_rate:.3f}"
        )
        worst = sorted(rejection.per_tag.items(), key=lambda kv: -kv[1]["false_accept"])[:5]
        print("  worst: " + ", ".join(f"{k} {v['false_accept']:.2f}" for k, v in worst))


def rasa_reports(model: str, data: Path, out: Path) -> None:
    """Rasa's own evaluation files (confusion matrix PNG, intent report) for trainers."""
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    subprocess.run(
        [
            str(Path(sys.executable).parent / "rasa"),
            "test",
            "nlu",
            "--model",
            model,
            "--nlu",
            str(data),
            "--out",
            str(out),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/intake.tar.gz")
    parser.add_argument("--data", type=Path, default=HOLDOUT)
    parser.add_argument("--out", type=Path, default=REPORTS / "holdout_metrics.json")
    parser.add_argument("--no-rasa-report", action="store_true")
    parser.add_argument(
        "--no-rejections",
        action="store_true",
        help="score --data only, without the out-of-domain and not-understood sets",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    evaluation = evaluate_all(args.model, args.data, with_rejections=not args.no_rejections)
    print_report(evaluation)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(evaluation.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    print(
        f"\nWrote {args.out} ({len(evaluation.holdout.errors)} errors listed) in "
        f"{time.monotonic() - started:.0f} s"
    )
    if not args.no_rasa_report:
        rasa_reports(args.model, args.data, REPORTS / "nlu")
        print(f"Rasa's reports (confusion matrix image, intent report): {REPORTS / 'nlu'}")


if __name__ == "__main__":
    main()
