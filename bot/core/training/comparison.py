"""What a trainer's comparison of two models says: the figures the console shows.

`bot.tools.trainer.compare` evaluates two models and saves a `Comparison` here
(reports/compare.json); the console's trainer page only reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol

from bot.core.settings import PROJECT_ROOT

REPORTS = PROJECT_ROOT / "reports"
COMPARE_JSON = REPORTS / "compare.json"
COMPARE_DIR = REPORTS / "compare"
CONFUSION_IMAGE = COMPARE_DIR / "intent_confusion_matrix.png"


class IntentFigures(Protocol):
    """The part of an evaluation a comparison reads (bot.tools.evaluation.Metrics)."""

    accuracy: float
    macro_f1: float
    fallback_rate: float
    examples: int
    per_intent: Dict[str, Dict[str, float]]


@dataclass
class Comparison:
    data: str
    old_model: str
    new_model: str
    old: Dict[str, float]
    new: Dict[str, float]
    per_intent: List[Dict[str, Any]]  # intent, old_f1, new_f1, delta, support

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def _summary(metrics: IntentFigures) -> Dict[str, float]:
    return {
        "accuracy": metrics.accuracy,
        "macro_f1": metrics.macro_f1,
        "fallback_rate": metrics.fallback_rate,
        "examples": metrics.examples,
    }


def compare_metrics(
    old: IntentFigures, new: IntentFigures, data: str = "", old_model: str = "", new_model: str = ""
) -> Comparison:
    """Per-intent F1 deltas, largest change first (pure: for tests and the console)."""
    rows: List[Dict[str, Any]] = []
    for intent in sorted(set(old.per_intent) | set(new.per_intent)):
        before = old.per_intent.get(intent, {}).get("f1", 0.0)
        after = new.per_intent.get(intent, {}).get("f1", 0.0)
        support = new.per_intent.get(intent, old.per_intent.get(intent, {})).get("support", 0)
        rows.append(
            {
                "intent": intent,
                "old_f1": round(before, 4),
                "new_f1": round(after, 4),
                "delta": round(after - before, 4),
                "support": support,
            }
        )
    rows.sort(key=lambda r: (-abs(r["delta"]), r["intent"]))
    return Comparison(data, old_model, new_model, _summary(old), _summary(new), rows)


def save_comparison(comparison: Comparison, path: Path = COMPARE_JSON) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(comparison.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return path


def load_comparison(path: Path = COMPARE_JSON) -> Optional[Dict[str, Any]]:
    """The last saved comparison, or None."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
