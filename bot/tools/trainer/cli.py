"""`python -m bot trainer …` — the inbox, labelling, lint and model comparison from a terminal.

python -m bot trainer inbox [--tracker-url URL]         collect, then list open items
python -m bot trainer label ID INTENT [--entity 3:14:phone] [--user NAME] [--patch FILE]
python -m bot trainer discard ID [--reason noise|personal_data|duplicate]
python -m bot trainer flush [--data data/nlu]           write labels recorded but not written
python -m bot trainer lint [--data data/nlu] [--tests tests/nlu]
python -m bot trainer compare --old OLD.tar.gz --new NEW.tar.gz [--data tests/nlu/holdout.yml]
python -m bot trainer retrain [--run N] [--user NAME]   train a candidate, evaluate, judge it
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import Any, Dict

from bot.core.privacy import mask_personal_data


def _entity(spec: str) -> Dict[str, Any]:
    """START:END:ENTITY[=VALUE] → an entity dict."""
    start, end, rest = spec.split(":", 2)
    name, _, value = rest.partition("=")
    entity: Dict[str, Any] = {"start": int(start), "end": int(end), "entity": name}
    if value:
        entity["value"] = value
    return entity


def _inbox(args: argparse.Namespace) -> int:
    from bot.core.db import session_scope, upgrade_database
    from bot.core.training.inbox import collect_candidates, open_items, sync_inbox, tracker_url

    upgrade_database()
    candidates = collect_candidates(args.tracker_url or tracker_url())
    with session_scope() as session:
        added = sync_inbox(session, candidates)
        items = open_items(session)
        print(f"{len(candidates)} groups in the tracker store, {added} new; {len(items)} open:")
        for item in items:
            print(
                f"  #{item.id:<4d} ×{item.count:<3d} {item.predicted_intent or '-':22s} "
                f"{item.confidence or 0:.2f}  {','.join(item.reasons):28s} "
                f"{mask_personal_data(item.text)}"
            )
    return 0


def _label(args: argparse.Namespace) -> int:
    from bot.core.db import session_scope
    from bot.core.training.labelling import LabelError, label_item

    try:
        with session_scope() as session:
            result = label_item(
                session,
                args.id,
                args.intent,
                [_entity(e) for e in args.entity],
                args.user,
                args.data,
                patch_only=bool(args.patch),
            )
    except LabelError as error:
        print(f"error: {error}")
        return 2
    if args.patch:
        Path(args.patch).write_text(result.patch or "", encoding="utf-8")
        print(f"wrote {args.patch} (review, then `git apply {args.patch}`)")
    elif not result.written:
        print(
            f"#{result.item_id} recorded, but not written to {result.data_file}: "
            f"{result.write_error}\nretry with `python -m bot trainer flush`"
        )
        return 1
    else:
        print(f"#{result.item_id} → {result.data_file}: {result.example}")
    return 0


def _flush(args: argparse.Namespace) -> int:
    from bot.core.db import session_scope, upgrade_database
    from bot.core.training.intents import nlu_dir
    from bot.core.training.labelling import flush_labels

    upgrade_database()
    with session_scope() as session:
        report = flush_labels(session, args.data or nlu_dir())
    for label_id, error in report.failed:
        print(f"label {label_id} not written: {error}")
    print(f"{len(report.written)} labels written, {len(report.failed)} still not written")
    return 1 if report.failed else 0


def _discard(args: argparse.Namespace) -> int:
    from bot.core.db import session_scope
    from bot.core.training.labelling import LabelError, discard_item

    try:
        with session_scope() as session:
            discard_item(session, args.id, args.reason, args.user)
    except LabelError as error:
        print(f"error: {error}")
        return 2
    return 0


def _lint(args: argparse.Namespace) -> int:
    from bot.tools.trainer.lint import lint

    issues = lint(args.data, args.tests)
    for issue in issues:
        print(("ERROR " if issue.is_error else "warn  ") + str(issue))
    errors = sum(issue.is_error for issue in issues)
    print(f"{errors} errors, {len(issues) - errors} warnings")
    return 1 if errors else 0


def _compare(args: argparse.Namespace) -> int:
    from bot.core.training.comparison import save_comparison
    from bot.tools.trainer.compare import compare_models, confusion_image, print_comparison

    comparison = compare_models(args.old, args.new, args.data)
    print_comparison(comparison)
    print(f"\nwrote {save_comparison(comparison)}")
    if not args.no_image:
        print(f"confusion matrix: {confusion_image(args.new, args.data)}")
    return 0


def _retrain(args: argparse.Namespace) -> int:
    from bot.core.db import upgrade_database
    from bot.core.settings import get_settings
    from bot.tools.trainer.retrain import retrain

    upgrade_database()
    return retrain(get_settings(), args.run, args.user)


def add_parser(commands: Any) -> None:
    """Register `trainer` and its sub-commands on the main parser's subparsers."""
    from bot.core.training.intents import NLU_DIR
    from bot.core.training.models import DISCARD_REASONS
    from bot.tools.trainer.lint import TESTS_DIR

    trainer = commands.add_parser("trainer", help="inbox, labelling, NLU lint, model comparison")
    actions = trainer.add_subparsers(dest="trainer_command", required=True)

    inbox = actions.add_parser("inbox", help="collect misunderstood messages and list them")
    inbox.add_argument("--tracker-url", help="SQLAlchemy URL (default: RASA_TRACKER_DB)")
    inbox.set_defaults(handler=_inbox)

    label = actions.add_parser("label", help="label one inbox item")
    label.add_argument("id", type=int)
    label.add_argument("intent")
    label.add_argument("--entity", action="append", default=[], metavar="START:END:ENTITY[=VALUE]")
    label.add_argument("--user", default=getpass.getuser())
    label.add_argument("--data", type=Path, default=NLU_DIR)
    label.add_argument("--patch", help="write a unified diff here instead of the data file")
    label.set_defaults(handler=_label)

    discard = actions.add_parser("discard", help="drop one inbox item")
    discard.add_argument("id", type=int)
    discard.add_argument("--reason", choices=DISCARD_REASONS, default="noise")
    discard.add_argument("--user", default=getpass.getuser())
    discard.set_defaults(handler=_discard)

    flush = actions.add_parser(
        "flush", help="write labels recorded but not yet in their data file (exit 1 if some fail)"
    )
    flush.add_argument(
        "--data", type=Path, default=None, help="default: INTAKE_NLU_DIR, else data/nlu"
    )
    flush.set_defaults(handler=_flush)

    lint = actions.add_parser("lint", help="NLU data problems (exit 1 on errors)")
    lint.add_argument("--data", type=Path, default=NLU_DIR)
    lint.add_argument("--tests", type=Path, default=TESTS_DIR)
    lint.set_defaults(handler=_lint)

    compare = actions.add_parser("compare", help="per-intent F1 of two models on held-out data")
    compare.add_argument("--old", required=True)
    compare.add_argument("--new", required=True)
    compare.add_argument("--data", type=Path, default=TESTS_DIR / "holdout.yml")
    compare.add_argument("--no-image", action="store_true")
    compare.set_defaults(handler=_compare)

    retrain = actions.add_parser(
        "retrain",
        help="train a candidate from config/trainer.yml `retrain`, evaluate it against the "
        "serving model and judge it (exit 0 ready, 1 rejected, 2 failed)",
    )
    retrain.add_argument("--run", type=int, help="carry out this recorded run (the console's)")
    retrain.add_argument("--user", default=getpass.getuser())
    retrain.set_defaults(handler=_retrain)
