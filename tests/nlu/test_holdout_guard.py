"""Regression guard on the held-out set: fails when the trained model gets worse.

The floors (tests/nlu/floors.yml) sit just under what was measured; `make evaluate` prints
the full report. Raise them when the model improves — never lower them silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from bot.core.settings import PROJECT_ROOT
from bot.tools.evaluation import Evaluation, Metrics, evaluate, evaluate_all

# INTAKE_MODEL lets a developer test a model trained elsewhere (default: what make trains).
MODEL = Path(os.environ.get("INTAKE_MODEL") or PROJECT_ROOT / "models" / "intake.tar.gz")
FLOORS = yaml.safe_load((Path(__file__).with_name("floors.yml")).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` (make test does)")
    return evaluate_all(str(MODEL))


@pytest.fixture(scope="module")
def metrics(evaluation: Evaluation) -> Metrics:
    return evaluation.holdout


def test_foreign_messages_are_not_taken_for_business(evaluation: Evaluation) -> None:
    assert evaluation.out_of_domain is not None
    rate = evaluation.out_of_domain.false_accept_rate
    assert rate <= FLOORS["out_of_domain_false_accept_max"], evaluation.out_of_domain.accepted


def test_unclear_messages_are_not_understood(evaluation: Evaluation) -> None:
    assert evaluation.unclear is not None
    assert evaluation.unclear.false_accept_rate <= FLOORS["unclear_false_accept_max"]
    assert evaluation.unclear.not_understood_rate >= FLOORS["unclear_not_understood"]


def test_intent_accuracy(metrics: Metrics) -> None:
    assert metrics.accuracy >= FLOORS["intent_accuracy"], metrics.confused


def test_macro_f1(metrics: Metrics) -> None:
    assert metrics.macro_f1 >= FLOORS["macro_f1"]


def test_structured_entity_recall(metrics: Metrics) -> None:
    assert metrics.structured_recall >= FLOORS["structured_entity_recall"], [
        e for e in metrics.errors if "missed" in e
    ]


def test_every_intent_is_recognised(metrics: Metrics) -> None:
    weak = {
        i: round(v["f1"], 3)
        for i, v in metrics.per_intent.items()
        if v["f1"] < FLOORS["per_intent_f1"]
    }
    assert not weak, weak


def test_every_style_of_writing_is_understood(metrics: Metrics) -> None:
    weak = {
        style: round(v["accuracy"], 3)
        for style, v in metrics.per_style.items()
        if v["accuracy"] < FLOORS["style_accuracy_min"]
    }
    assert metrics.per_style and not weak, weak


@pytest.mark.parametrize(
    "data, floors",
    [("entity_dev.yml", "entity_dev_recall"), ("entity_dev2.yml", "entity_dev2_recall")],
)
def test_entity_rules_keep_what_they_fixed_on_the_development_sets(data: str, floors: str) -> None:
    """tests/nlu/entity_dev.yml and entity_dev2.yml (two writers) are where the entity rules
    are tuned; entity_check.yml, the test set, is only measured (`make evaluate`)."""
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` (make test does)")
    dev = evaluate(str(MODEL), Path(__file__).with_name(data))
    low = {
        entity: round(dev.entities[entity]["recall"], 3)
        for entity, floor in FLOORS[floors].items()
        if dev.entities[entity]["recall"] < floor
    }
    assert not low, low
