"""Compare a new model with the previous one on the same held-out examples.

Shows a trainer what a batch of labels did: accuracy and macro-F1 before/after and the
per-intent F1 change (largest first), using bot.tools.evaluation's `evaluate()`/`score()` so the
figures are the ones `make evaluate` prints. Writes reports/compare.json and, unless told
not to, Rasa's confusion-matrix image of the new model (reports/compare/) for the console.

    python -m bot trainer compare --old /tmp/old.tar.gz --new models/intake.tar.gz
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from bot.core.settings import PROJECT_ROOT

if TYPE_CHECKING:  # bot.tools.evaluation imports Rasa: only when a comparison actually runs
    from bot.tools.evaluation import Metrics

HOLDOUT = PROJECT_ROOT / "tests" / "nlu" / "holdout.yml"
REPORTS = PROJECT_ROOT / "reports"
COMPARE_JSON = REPORTS / "compare.json"
COMPARE_DIR = REPORTS / "compare"
CONFUSION_IMAGE = COMPARE_DIR / "intent_confusion_matrix.png"


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


def _summary(metrics: "Metrics") -> Dict[str, float]:
    return {"accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1,
            "fallback_rate": metrics.fallback_rate, "examples": metrics.examples}


def compare_metrics(old: "Metrics", new: "Metrics", data: str = "", old_model: str = "",
                    new_model: str = "") -> Comparison:
    """Per-intent F1 deltas, largest change first (pure: for tests and the console)."""
    rows = []
    for intent in sorted(set(old.per_intent) | set(new.per_intent)):
        before = old.per_intent.get(intent, {}).get("f1", 0.0)
        after = new.per_intent.get(intent, {}).get("f1", 0.0)
        support = new.per_intent.get(intent, old.per_intent.get(intent, {})).get("support", 0)
        rows.append({"intent": intent, "old_f1": round(before, 4), "new_f1": round(after, 4),
                     "delta": round(after - before, 4), "support": support})
    rows.sort(key=lambda r: (-abs(r["delta"]), r["intent"]))
    return Comparison(data, old_model, new_model, _summary(old), _summary(new), rows)


def compare_models(old_model: str, new_model: str, data: Path = HOLDOUT) -> Comparison:
    """Evaluate both models (one after the other: each holds ~1 GB) and compare."""
    from bot.tools.evaluation import evaluate

    old = evaluate(old_model, data)
    new = evaluate(new_model, data)
    return compare_metrics(old, new, str(data), old_model, new_model)


def print_comparison(comparison: Comparison) -> None:
    old, new = comparison.old, comparison.new
    print(f"\n{comparison.data}: {new['examples']:.0f} examples")
    for name in ("accuracy", "macro_f1", "fallback_rate"):
        print(f"  {name:14s} {old[name]:.4f} → {new[name]:.4f}  ({new[name] - old[name]:+.4f})")
    print("\nPer-intent F1 (largest change first):")
    for row in comparison.per_intent:
        mark = "▲" if row["delta"] > 0 else "▼" if row["delta"] < 0 else " "
        print(f"  {mark} {row['intent']:24s} {row['old_f1']:.3f} → {row['new_f1']:.3f} "
              f"({row['delta']:+.3f})  n={row['support']:.0f}")


def save_comparison(comparison: Comparison, path: Path = COMPARE_JSON) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(comparison.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def load_comparison(path: Path = COMPARE_JSON) -> Optional[Dict[str, Any]]:
    """The last saved comparison, or None."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def confusion_image(new_model: str, data: Path = HOLDOUT, out: Path = COMPARE_DIR) -> Path:
    """Rasa's confusion matrix of `new_model` on `data` (rasa test nlu)."""
    from bot.tools.evaluation import rasa_reports

    rasa_reports(new_model, data, out)
    return out / "intent_confusion_matrix.png"
