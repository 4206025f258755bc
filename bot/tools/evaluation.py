"""Evaluate the trained model on the held-out set (`make evaluate`).

Prints intent accuracy, macro-F1, per-intent F1, the most confused pairs, and entity
precision/recall per entity. Entities are scored on their normalised VALUES (the contract,
spec §2): `１３８ 1234 5678` must come out as `13812345678` to count. Writes
reports/holdout_metrics.json and, unless --no-rasa-report, Rasa's own reports (confusion
matrix image, per-intent report) under reports/nlu/.

    python -m bot.tools.evaluation --model models/intake.tar.gz [--data tests/nlu/holdout.yml]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from bot.core.settings import PROJECT_ROOT
from bot.core.entities import STRUCTURED_ENTITIES, normalize_entities

HOLDOUT = PROJECT_ROOT / "tests" / "nlu" / "holdout.yml"
REPORTS = PROJECT_ROOT / "reports"
FALLBACK_INTENT = "nlu_fallback"


@dataclass
class Example:
    text: str
    intent: str
    entities: List[Dict[str, Any]]


@dataclass
class Prediction:
    intent: str           # after the FallbackClassifier (nlu_fallback possible)
    top_intent: str       # the classifier's best guess, ignoring the fallback
    confidence: float
    entities: List[Dict[str, Any]]


@dataclass
class Metrics:
    examples: int
    accuracy: float
    macro_f1: float
    fallback_rate: float
    accuracy_without_fallback: float
    per_intent: Dict[str, Dict[str, float]]
    confused: List[Tuple[str, str, int]]
    entities: Dict[str, Dict[str, float]]
    structured_recall: float
    errors: List[Dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def load_examples(path: Path = HOLDOUT) -> List[Example]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [
        Example(m.get("text"), m.get("intent"), list(m.get("entities") or []))
        for m in data.intent_examples
    ]


def gold_values(example: Example, today: dt.date) -> Set[Tuple[str, str]]:
    """(entity, normalised value) pairs the annotation means, normalised like predictions."""
    from bot.core.normalize import normalize_text

    text = normalize_text(example.text)
    annotated = [
        {**e, "extractor": "RegexEntityExtractor" if e["entity"] in STRUCTURED_ENTITIES else "gold"}
        for e in example.entities
    ]
    return {(e["entity"], str(e["value"])) for e in normalize_entities(text, annotated, today)}


def predicted_values(prediction: Prediction) -> Set[Tuple[str, str]]:
    return {(e["entity"], str(e["value"])) for e in prediction.entities}


def load_agent(model: str) -> Any:
    from rasa.core.agent import Agent

    return Agent.load(model)


def predict(agent: Any, texts: Sequence[str]) -> List[Prediction]:
    async def run() -> List[Prediction]:
        results = []
        for text in texts:
            parsed = await agent.parse_message(text)
            ranking = [r for r in parsed.get("intent_ranking", []) if r["name"] != FALLBACK_INTENT]
            top = ranking[0] if ranking else parsed["intent"]
            results.append(
                Prediction(
                    intent=parsed["intent"]["name"],
                    top_intent=top["name"],
                    confidence=float(top.get("confidence") or 0.0),
                    entities=parsed.get("entities", []),
                )
            )
        return results

    return asyncio.run(run())


def _f1(tp: int, fp: int, fn: int) -> Tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score(examples: Sequence[Example], predictions: Sequence[Prediction], today: dt.date) -> Metrics:
    """All figures of one evaluation."""
    intents = sorted({e.intent for e in examples})
    counts = {i: Counter() for i in intents}
    confused: Counter = Counter()
    entity_counts: Dict[str, Counter] = defaultdict(Counter)
    errors = []
    correct = correct_top = fallbacks = 0
    for example, prediction in zip(examples, predictions):
        if prediction.intent == example.intent:
            correct += 1
            counts[example.intent]["tp"] += 1
        else:
            counts[example.intent]["fn"] += 1
            if prediction.intent in counts:
                counts[prediction.intent]["fp"] += 1
            confused[(example.intent, prediction.intent)] += 1
            errors.append({"text": example.text, "gold": example.intent, "predicted": prediction.intent,
                           "confidence": round(prediction.confidence, 3)})
        correct_top += prediction.top_intent == example.intent
        fallbacks += prediction.intent == FALLBACK_INTENT
        gold, predicted = gold_values(example, today), predicted_values(prediction)
        for entity, value in gold | predicted:
            key = "tp" if (entity, value) in gold and (entity, value) in predicted else (
                "fn" if (entity, value) in gold else "fp")
            entity_counts[entity][key] += 1
        for entity, value in gold - predicted:
            errors.append({"text": example.text, "entity": entity, "missed": value})

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
        confused=[(g, p, k) for (g, p), k in confused.most_common(12)],
        entities=entities,
        structured_recall=s_tp / (s_tp + s_fn) if s_tp + s_fn else 1.0,
        errors=errors,
    )


def evaluate(model: str, data: Path = HOLDOUT, today: Optional[dt.date] = None) -> Metrics:
    """Load the model, predict every example of `data`, and score."""
    from bot.core.clock import local_zone

    examples = load_examples(data)
    agent = load_agent(model)
    predictions = predict(agent, [e.text for e in examples])
    return score(examples, predictions, today or dt.datetime.now(local_zone()).date())


def print_report(metrics: Metrics) -> None:
    print(f"\nHoldout: {metrics.examples} examples")
    print(f"  intent accuracy       {metrics.accuracy:.4f}")
    print(f"  macro-F1              {metrics.macro_f1:.4f}")
    print(f"  fallback rate         {metrics.fallback_rate:.4f}  "
          f"(accuracy if fallback ignored: {metrics.accuracy_without_fallback:.4f})")
    print(f"  structured-entity recall (phone, account_no, ticket_no, capacity_kw, month): "
          f"{metrics.structured_recall:.4f}")
    print("\nPer-intent F1 (lowest first):")
    for intent, v in sorted(metrics.per_intent.items(), key=lambda kv: kv[1]["f1"]):
        print(f"  {intent:24s} F1 {v['f1']:.3f}  P {v['precision']:.3f}  R {v['recall']:.3f}  n={v['support']:.0f}")
    print("\nMost confused (gold → predicted):")
    for gold, predicted, count in metrics.confused:
        print(f"  {gold:24s} → {predicted:24s} {count}")
    print("\nEntities (normalised values):")
    for entity, v in metrics.entities.items():
        print(f"  {entity:16s} P {v['precision']:.3f}  R {v['recall']:.3f}  F1 {v['f1']:.3f}  n={v['support']:.0f}")


def rasa_reports(model: str, data: Path, out: Path) -> None:
    """Rasa's own evaluation files (confusion matrix PNG, intent report) for trainers."""
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    subprocess.run(
        [str(Path(sys.executable).parent / "rasa"), "test", "nlu", "--model", model,
         "--nlu", str(data), "--out", str(out)],
        cwd=PROJECT_ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
    )


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/intake.tar.gz")
    parser.add_argument("--data", type=Path, default=HOLDOUT)
    parser.add_argument("--no-rasa-report", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    metrics = evaluate(args.model, args.data)
    print_report(metrics)
    REPORTS.mkdir(exist_ok=True)
    out = REPORTS / "holdout_metrics.json"
    out.write_text(json.dumps(metrics.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nWrote {out} ({len(metrics.errors)} errors listed) in {time.monotonic() - started:.0f} s")
    if not args.no_rasa_report:
        rasa_reports(args.model, args.data, REPORTS / "nlu")
        print(f"Rasa's reports (confusion matrix image, intent report): {REPORTS / 'nlu'}")


if __name__ == "__main__":
    main()
