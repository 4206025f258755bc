"""Compare NLU pipelines over several seeds (the table in the README, "NLU pipeline — measured").

Each variant is config.yml with its pipeline replaced; each is trained NLU-only on data/nlu
with 3 seeds and evaluated on the held-out sets (holdout, out-of-domain, not understood).

    python -m bench.nlu_pipelines                      # every variant, seeds 2026 7 42
    python -m bench.nlu_pipelines --variants linear --seeds 2026
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from bot.core.settings import PROJECT_ROOT
from bot.tools.evaluation import evaluate_all

NORMALIZE = {"name": "bot.plugins.nlu.ChineseTextNormalizer"}
TOKENIZE = [
    {"name": "JiebaTokenizer", "dictionary_path": "data/jieba"},
    {"name": "RegexFeaturizer", "use_word_boundaries": False, "case_sensitive": False},
    {"name": "LexicalSyntacticFeaturizer"},
]
COUNTS = [
    {"name": "CountVectorsFeaturizer"},
    {
        "name": "CountVectorsFeaturizer",
        "analyzer": "char_wb",
        "min_ngram": 1,
        "max_ngram": 2,
        "min_df": 2,
    },
]
ENCODER = [{"name": "bot.plugins.nlu.SentenceEncoderFeaturizer", "encoder_threads": 2}]
DIET = [
    {
        "name": "DIETClassifier",
        "epochs": 200,
        "constrain_similarities": True,
        "number_of_transformer_layers": 0,
        "entity_recognition": False,
        "batch_size": [128, 256],
    }
]
LINEAR = [{"name": "bot.plugins.nlu.LinearIntentClassifier", "C": 50, "dense_weight": 2.0}]
ENTITIES = [
    {"name": "CRFEntityExtractor"},
    {
        "name": "RegexEntityExtractor",
        "use_word_boundaries": False,
        "use_lookup_tables": True,
        "use_regexes": True,
    },
    {"name": "EntitySynonymMapper"},
    {"name": "bot.plugins.nlu.EntityNormalizer"},
]
FALLBACK = [
    {"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": 0.05},
    {"name": "bot.plugins.nlu.NotUnderstood"},
]

VARIANTS: Dict[str, List[Dict[str, Any]]] = {
    "diet": [NORMALIZE, *TOKENIZE, *COUNTS, *DIET, *ENTITIES, *FALLBACK],
    "diet_e5": [NORMALIZE, *TOKENIZE, *COUNTS, *ENCODER, *DIET, *ENTITIES, *FALLBACK],
    "linear": [NORMALIZE, *TOKENIZE, *ENCODER, *LINEAR, *ENTITIES, *FALLBACK],
    "ensemble": [
        NORMALIZE,
        *TOKENIZE,
        *COUNTS,
        *ENCODER,
        *DIET,
        {**LINEAR[0], "ensemble_weight": 0.5},
        *ENTITIES,
        *FALLBACK,
    ],
}


def config_for(variant: str, seed: int) -> Dict[str, Any]:
    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    pipeline = copy.deepcopy(VARIANTS[variant])
    for component in pipeline:
        if component["name"] == "DIETClassifier":
            component["random_seed"] = seed
        if component["name"].endswith("LinearIntentClassifier"):
            component["random_seed"] = seed
    config["pipeline"] = pipeline
    return config


def train(variant: str, seed: int, out: Path) -> tuple:
    config_path = out / f"{variant}-{seed}.yml"
    config_path.write_text(
        yaml.safe_dump(config_for(variant, seed), allow_unicode=True), encoding="utf-8"
    )
    started = time.monotonic()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "rasa"),
            "train",
            "nlu",
            "--config",
            str(config_path),
            "--nlu",
            "data/nlu",
            "--out",
            str(out),
            "--fixed-model-name",
            f"{variant}-{seed}",
        ],
        cwd=PROJECT_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return str(out / f"{variant}-{seed}.tar.gz"), time.monotonic() - started


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[2026, 7, 42])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "nlu_pipelines.json")
    args = parser.parse_args(argv)
    results: Dict[str, List[Dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="intake-nlu-") as scratch:
        for variant in args.variants:
            for seed in args.seeds:
                model, seconds = train(variant, seed, Path(scratch))
                evaluation = evaluate_all(model)
                holdout = evaluation.holdout
                row = {
                    "seed": seed,
                    "train_s": round(seconds),
                    "accuracy": holdout.accuracy,
                    "macro_f1": holdout.macro_f1,
                    "worst_style": min(holdout.per_style.items(), key=lambda kv: kv[1]["accuracy"]),
                    "false_accept": evaluation.out_of_domain.false_accept_rate
                    if evaluation.out_of_domain
                    else None,
                    "not_understood": evaluation.unclear.not_understood_rate
                    if evaluation.unclear
                    else None,
                    "parse_p50_ms": evaluation.parse_p50_ms,
                    "entities": {k: round(v["recall"], 3) for k, v in holdout.entities.items()},
                }
                results.setdefault(variant, []).append(row)
                print(
                    f"{variant:9s} seed {seed:5d}: acc {row['accuracy']:.4f} F1 {row['macro_f1']:.4f} "
                    f"worst {row['worst_style'][0]} {row['worst_style'][1]['accuracy']:.3f} "
                    f"FA {row['false_accept']:.4f} unclear {row['not_understood']:.3f} "
                    f"train {row['train_s']} s parse p50 {row['parse_p50_ms']:.1f} ms",
                    flush=True,
                )
    print("\nvariant    accuracy (mean, min–max)   macro-F1   false accept   train")
    for variant, rows in results.items():
        acc = [r["accuracy"] for r in rows]
        print(
            f"{variant:9s}  {statistics.mean(acc):.4f} ({min(acc):.4f}–{max(acc):.4f})   "
            f"{statistics.mean(r['macro_f1'] for r in rows):.4f}     "
            f"{statistics.mean(r['false_accept'] for r in rows):.4f}        "
            f"{statistics.mean(r['train_s'] for r in rows):.0f} s"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(results, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
    )


if __name__ == "__main__":
    main()
