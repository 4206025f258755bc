"""Model comparison: per-intent F1 deltas, on two small models trained for the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.training.comparison import compare_metrics, load_comparison, save_comparison
from bot.tools.trainer.compare import compare_models

CONFIG = """\
recipe: default.v1
language: zh
assistant_id: compare-test
pipeline:
  - name: JiebaTokenizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 2
  - name: DIETClassifier
    epochs: 30
    number_of_transformer_layers: 0
    entity_recognition: false
    random_seed: 1
policies: []
"""

FAULT = [
    "家里停电了",
    "没电了快来修",
    "跳闸了推不上去",
    "灯一直闪",
    "电压太低",
    "全屋没电",
    "停电了帮忙报修",
    "电表黑屏没电",
]
BILL = [
    "查电费",
    "这个月电费多少",
    "我欠费了吗",
    "查一下账单",
    "上个月用了多少度",
    "电费单",
    "帮我查电费",
    "要交多少钱",
]
CANCEL = ["算了", "不办了", "取消", "不用了", "先不弄了", "撤回申请", "唔搞喇", "不报了"]


def _nlu(path: Path, intents: dict) -> Path:
    lines = ['version: "3.1"', "nlu:"]
    for intent, examples in intents.items():
        lines += [f"- intent: {intent}", "  examples: |"] + [f"    - {e}" for e in examples]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _train(tmp: Path, name: str, intents: dict) -> str:
    from rasa.model_training import train_nlu

    (tmp / "config.yml").write_text(CONFIG, encoding="utf-8")
    data = _nlu(tmp / f"{name}.yml", intents)
    return train_nlu(str(tmp / "config.yml"), str(data), str(tmp), fixed_model_name=name)


def test_compare_metrics_orders_by_largest_change() -> None:
    from bot.tools.evaluation import Metrics

    def metrics(f1: dict) -> Metrics:
        per_intent = {i: {"f1": v, "support": 4} for i, v in f1.items()}
        return Metrics(8, 0.5, sum(f1.values()) / len(f1), 0.0, 0.5, per_intent, {}, [], {}, 1.0)

    result = compare_metrics(metrics({"a": 0.5, "b": 0.9}), metrics({"a": 0.8, "b": 0.7, "c": 1.0}))
    assert [(r["intent"], r["delta"]) for r in result.per_intent] == [
        ("c", 1.0),
        ("a", 0.3),
        ("b", -0.2),
    ]


def test_two_small_models(tmp_path: Path) -> None:
    old = _train(tmp_path, "old", {"report_fault": FAULT, "query_bill": BILL})
    new = _train(tmp_path, "new", {"report_fault": FAULT, "query_bill": BILL, "cancel": CANCEL})
    holdout = _nlu(
        tmp_path / "holdout.yml",
        {
            "report_fault": ["停电了", "家里跳闸了"],
            "query_bill": ["查电费", "电费多少"],
            "cancel": ["算了吧", "不办了"],
        },
    )
    comparison = compare_models(old, new, holdout)
    rows = {r["intent"]: r for r in comparison.per_intent}
    assert set(rows) == {"report_fault", "query_bill", "cancel"}
    assert rows["cancel"]["old_f1"] == 0.0 and rows["cancel"]["delta"] > 0.5  # new intent learnt
    assert comparison.new["accuracy"] > comparison.old["accuracy"]
    for row in rows.values():
        assert row["delta"] == pytest.approx(row["new_f1"] - row["old_f1"], abs=1e-3)
    saved = save_comparison(comparison, tmp_path / "compare.json")
    assert load_comparison(saved)["per_intent"][0]["intent"] == comparison.per_intent[0]["intent"]
