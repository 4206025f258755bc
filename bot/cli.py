"""Command line of the application: `python -m bot <command>`.

    python -m bot run                 start Rasa, the action server and the console (make run)
    python -m bot catalog generate    write domain/catalog.yml and data/catalog_rules.yml
    python -m bot catalog check       fail if those files are out of date with bot/catalog.yml
    python -m bot db upgrade          apply database migrations (DATABASE_URL)
    python -m bot db seed             add the demo billing accounts and outages
    python -m bot console             serve the console / JSON API only
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional


def _catalog(args: argparse.Namespace) -> int:
    from bot.domain_export import stale_generated, write_generated

    if args.action == "generate":
        for path in write_generated():
            print(f"wrote {path}")
        return 0
    stale = stale_generated()
    for path in stale:
        print(f"{path} is out of date with bot/catalog.yml: run `python -m bot catalog generate`")
    return 1 if stale else 0


def _db(args: argparse.Namespace) -> int:
    from bot.db import upgrade_database

    upgrade_database()
    if args.action == "seed":
        from bot.seed import seed_default_database

        print(f"demo data: {seed_default_database()}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from bot.runner import run_stack

    return run_stack(model=args.model)


def _console(args: argparse.Namespace) -> int:
    from bot.console.__main__ import main as console_main

    console_main(["--seed-demo"] if args.seed_demo else [])
    return 0


def main(argv: Optional[List[str]] = None) -> None:
    """Parse the command line and run one command."""
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    catalog = commands.add_parser("catalog", help="generated domain and rules")
    catalog.add_argument("action", choices=["generate", "check"])
    catalog.set_defaults(handler=_catalog)

    db = commands.add_parser("db", help="database migrations and demo data")
    db.add_argument("action", choices=["upgrade", "seed"])
    db.set_defaults(handler=_db)

    run = commands.add_parser("run", help="start the whole assistant in the foreground")
    run.add_argument("--model", default="models", help="model file or directory")
    run.set_defaults(handler=_run)

    console = commands.add_parser("console", help="serve the console and JSON API")
    console.add_argument("--seed-demo", action="store_true")
    console.set_defaults(handler=_console)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(args.handler(args))
