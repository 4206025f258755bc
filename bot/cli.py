"""Command line of the application: `python -m bot <command>`.

python -m bot run                 start Rasa, the action server and the console (make run)
python -m bot catalog generate    write domain/catalog.yml and data/catalog_rules.yml
python -m bot catalog check       fail if those files are out of date with bot/catalog.yml
python -m bot db upgrade          apply database migrations (DATABASE_URL)
python -m bot db seed             add the demo billing accounts and outages
python -m bot console             serve the console / JSON API only
python -m bot trainer …           inbox, labelling, NLU lint, model comparison (bot/trainer)
python -m bot users add NAME --role agent [--display-name 张三]
                                  add a console user (password from stdin or a prompt)
python -m bot users list          console users and their roles
python -m bot telegram poll       Telegram by long polling (no public HTTPS address needed)
python -m bot telegram set-webhook URL   register the public Telegram webhook
python -m bot report --month 2026-11 [--out report-2026-11.xlsx]
                                  the monthly report (branches, departments, agents) as Excel
python -m bot dead-letters [--limit N] [--source S]
                                  work given up after its retries (newest first, no payload)
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from bot.core.privacy import install_log_masking


def _catalog(args: argparse.Namespace) -> int:
    from bot.tools.generate import stale_generated, write_generated

    if args.action == "generate":
        for path in write_generated():
            print(f"wrote {path}")
        return 0
    stale = stale_generated()
    for path in stale:
        print(f"{path} is out of date with bot/catalog.yml: run `python -m bot catalog generate`")
    return 1 if stale else 0


def _db(args: argparse.Namespace) -> int:
    from bot.core.db import upgrade_database

    upgrade_database()
    if args.action == "seed":
        from bot.core.seed import seed_default_database

        print(f"demo data: {seed_default_database()}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from bot.tools.runner import run_stack

    return run_stack(model=args.model, profile=args.profile)


def _console(args: argparse.Namespace) -> int:
    from bot.console.__main__ import main as console_main

    console_main(["--seed-demo"] if args.seed_demo else [])
    return 0


def _telegram(args: argparse.Namespace) -> int:
    import asyncio

    from bot.core.settings import get_settings
    from bot.plugins.channels.telegram import TelegramSettings
    from bot.plugins.channels.telegram_poll import WEBHOOK_PATH, ForwardRefused, poll, set_webhook

    settings = TelegramSettings.from_settings()
    if settings.missing:
        print(f"Telegram channel off: {settings.missing[0]} not set (see .env.example)")
        return 1
    if args.action == "set-webhook":
        if not args.url:
            print("set-webhook needs the public URL, e.g. https://example.cn" + WEBHOOK_PATH)
            return 2
        asyncio.run(set_webhook(settings, args.url))
        print(f"webhook set: {args.url}")
        return 0
    from bot.core.db import upgrade_database

    upgrade_database()  # updates given up are recorded as dead letters
    try:
        asyncio.run(poll(settings, get_settings().rasa_url + WEBHOOK_PATH))
    except ForwardRefused as error:
        print(error)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _read_password() -> str:
    """The new password: typed twice at a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("密码 / password: ")
        if first != getpass.getpass("再输入一次 / again: "):
            raise SystemExit("两次输入的密码不一致 / passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def _users(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bot.core.db import session_scope, upgrade_database
    from bot.core.staff import ConsoleUser, add_user, disable, set_password, unlock

    upgrade_database()
    if args.action == "list":
        with session_scope() as session:
            for user in session.execute(
                select(ConsoleUser).order_by(ConsoleUser.username)
            ).scalars():
                state = "active" if user.active else "disabled"
                if user.locked_until is not None:
                    state += f", locked until {user.locked_until:%Y-%m-%d %H:%M} UTC"
                print(f"{user.username}\t{user.role}\t{user.display_name}\t{state}")
        return 0
    if not args.name:
        print(f"usage: python -m bot users {args.action} NAME", file=sys.stderr)
        return 2
    try:
        with session_scope() as session:
            if args.action == "add":
                add_user(session, args.name, _read_password(), args.role, args.display_name)
            elif args.action == "password":
                set_password(session, args.name, _read_password())
            elif args.action == "disable":
                disable(session, args.name)
            else:
                unlock(session, args.name)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    done = {
        "add": f"saved ({args.role})",
        "password": "has a new password; signed out everywhere",
        "disable": "disabled; signed out everywhere",
        "unlock": "unlocked",
    }
    print(f"user {args.name} {done[args.action]}")
    return 0


def _nginx(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.tools.nginx import render

    print(render(args.listen, args.rasa, args.console, Path(args.prefix)))
    return 0


def _privacy(args: argparse.Namespace) -> int:
    import json

    from bot.core import privacy
    from bot.core.db import upgrade_database

    upgrade_database()
    actor = args.actor
    if args.action == "purge":
        print(json.dumps(privacy.purge(actor=actor).as_dict(), ensure_ascii=False))
        return 0
    if not args.phone:
        print(f"usage: python -m bot privacy {args.action} --phone NUMBER", file=sys.stderr)
        return 2
    if args.action == "export":
        data = privacy.export_customer(args.phone, actor)
        print(json.dumps(data.as_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        print(json.dumps(privacy.erase_customer(args.phone, actor), ensure_ascii=False))
    return 0


def _dead_letters(args: argparse.Namespace) -> int:
    from bot.core import dead_letters
    from bot.core.db import upgrade_database

    upgrade_database()
    letters = dead_letters.recent(args.limit, source=args.source)
    if not letters:
        print("no dead letters")
        return 0
    print("id\ttime\tsource\tkey\tattempts\terror")
    for letter in letters:
        row = dead_letters.as_dict(letter)  # without the payload: it may hold personal data
        fields = ("id", "created_at", "source", "key", "attempts", "last_error")
        print("\t".join(str(row[name]) for name in fields))
    return 0


def _report(args: argparse.Namespace) -> int:
    from bot.core.db import session_scope, upgrade_database
    from bot.core.reports.workbook import monthly_report, save_workbook

    upgrade_database()
    try:
        with session_scope() as session:
            book, name = monthly_report(session, args.month)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {save_workbook(book, args.out or name)}")
    return 0


def main(argv: Optional[List[str]] = None) -> None:
    """Parse the command line and run one command."""
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    catalog = commands.add_parser("catalog", help="generated domain and rules")
    catalog.add_argument("action", choices=["generate", "check"])
    catalog.set_defaults(handler=_catalog)

    db = commands.add_parser("db", help="database migrations and demo data")
    db.add_argument("action", choices=["upgrade", "seed"])
    db.set_defaults(handler=_db)

    run = commands.add_parser("run", help="start the whole assistant in the foreground")
    run.add_argument("--model", default="models", help="model file or directory")
    run.add_argument(
        "--profile",
        choices=["embedded", "prod"],
        default="embedded",
        help="prod: INTAKE_SERVERS Rasa servers behind nginx, PostgreSQL, Redis, RabbitMQ",
    )
    run.set_defaults(handler=_run)

    console = commands.add_parser("console", help="serve the console and JSON API")
    console.add_argument("--seed-demo", action="store_true")
    console.set_defaults(handler=_console)

    from bot.tools.trainer.cli import add_parser as add_trainer_parser

    add_trainer_parser(commands)

    telegram = commands.add_parser("telegram", help="Telegram long polling or webhook set-up")
    telegram.add_argument("action", choices=["poll", "set-webhook"])
    telegram.add_argument("url", nargs="?", help="public webhook URL (set-webhook)")
    telegram.set_defaults(handler=_telegram)

    users = commands.add_parser("users", help="console users (agents, supervisors, …)")
    users.add_argument("action", choices=["add", "list", "password", "disable", "unlock"])
    users.add_argument("name", nargs="?")
    users.add_argument(
        "--role", default="agent", choices=["agent", "supervisor", "trainer", "admin"]
    )
    users.add_argument("--display-name", default=None)
    users.set_defaults(handler=_users)

    nginx = commands.add_parser("nginx", help="the reverse proxy's configuration")
    nginx.add_argument("action", choices=["render"])
    nginx.add_argument("--listen", default="8080")
    nginx.add_argument("--rasa", nargs="+", default=["127.0.0.1:5005"])
    nginx.add_argument("--console", default="127.0.0.1:8000")
    nginx.add_argument("--prefix", default="/var/lib/intake/nginx")
    nginx.set_defaults(handler=_nginx)

    privacy = commands.add_parser("privacy", help="retention purge, a customer's export/erasure")
    privacy.add_argument("action", choices=["purge", "export", "erase"])
    privacy.add_argument("--phone", help="the customer's phone (export, erase)")
    privacy.add_argument("--actor", default="operator", help="who asks (recorded in the audit log)")
    privacy.set_defaults(handler=_privacy)

    letters = commands.add_parser(
        "dead-letters", help="work given up after its retries (e.g. Telegram updates)"
    )
    letters.add_argument("--limit", type=_positive, default=50, help="how many, newest first")
    letters.add_argument("--source", default=None, help="only this source, e.g. telegram_poll")
    letters.set_defaults(handler=_dead_letters)

    report = commands.add_parser("report", help="the monthly report as an Excel workbook")
    report.add_argument("--month", required=True, help="local calendar month, e.g. 2026-11")
    report.add_argument("--out", default=None, help="file to write (default report-MONTH.xlsx)")
    report.set_defaults(handler=_report)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    install_log_masking()
    sys.exit(args.handler(args))
