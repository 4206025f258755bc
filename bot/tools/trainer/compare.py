"""Compare a new model with the previous one on the same held-out examples.

Shows a trainer what a batch of labels did: accuracy and macro-F1 before/after and the
per-intent F1 change (largest first), using bot.tools.evaluation so the figures are the ones
`make evaluate` prints. Writes reports/compare.json (bot/core/training/comparison.py, which
the console reads) and, unless told not to, Rasa's confusion-matrix image of the new model.

    python -m bot trainer compare --old /tmp/old.tar.gz --new models/intake.tar.gz
"""

from __future__ import annotations

from pathlib import Path

from bot.core.training.comparison import (
    COMPARE_DIR,
    Comparison,
    compare_metrics,
)
from bot.tools.evaluation import HOLDOUT, evaluate, rasa_reports


def compare_models(old_model: str, new_model: str, data: Path = HOLDOUT) -> Comparison:
    """Evaluate both models (one after the other: each holds ~1 GB) and compare."""
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
        print(
            f"  {mark} {row['intent']:24s} {row['old_f1']:.3f} → {row['new_f1']:.3f} "
            f"({row['delta']:+.3f})  n={row['support']:.0f}"
        )


def confusion_image(new_model: str, data: Path = HOLDOUT, out: Path = COMPARE_DIR) -> Path:
    """Rasa's confusion matrix of `new_model` on `data` (rasa test nlu)."""
    rasa_reports(new_model, data, out)
    return out / "intent_confusion_matrix.png"
