"""Reply latency and throughput through the REST channel, against the stock `rasa init` bot
(`make bench`).

Starts this assistant's real stack (Rasa server, action server, console) on free ports with a
throw-away SQLite database, and the stock `rasa init` assistant (bench/stock.py: Rasa's own
template, trained once under var/bench-stock/ with the same venv, SQLite tracker store, no
action server). Both run in the same run, interleaved, so machine noise hits both alike:
1. one customer at a time, `--rounds` rounds; each round runs one conversation on each bot,
   the order alternating round by round. The stock bot's is its template's sad path
   (hello → I am sad → yes); this assistant's a full fault-repair conversation (greet, the
   form's details, the confirmation that files the ticket). p50/p95 per message, and for
   this assistant the cost of each turn type: rule (greet), form (details), filing (confirm);
2. `--customers` concurrent customers (default 20), each running full conversations without
   pauses, `--seconds` per bot, in two halves ordered stock, assistant, assistant, stock:
   messages/s and p95;
3. optionally (--train) the time of a full training run of this assistant from scratch.
It prints both bots, the ratios (assistant / stock) and the targets (printed, not asserted:
one customer p50 ≤ 1.3×, filing turn p50 ≤ 2× the stock bot's turn p50, throughput at 20
concurrent ≥ 0.9×) and writes reports/latency.json. The exit status is 1 only when a request
failed or a reply left the script (the figures would not measure the intended path).
Every request goes to 127.0.0.1 only; loops are bounded in count and time.

    python -m bench.latency --model models/intake.tar.gz [--customers 20] [--seconds 40]
                            [--rounds 30] [--train]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import requests

from bench.stack import percentile, throwaway_stack
from bench.stock import stock_bot
from bot.core.settings import PROJECT_ROOT

REPORT_PATH = PROJECT_ROOT / "reports" / "latency.json"
REQUEST_TIMEOUT_S = 60
CONCURRENT_SLICES = 2  # halves of --seconds per bot, ordered stock, assistant | assistant, stock
ERROR_PAUSE_S = 0.2  # a customer whose request failed waits this long before the next one


@dataclass(frozen=True)
class Turn:
    message: str
    kind: str  # this assistant: rule / form / filing; the stock bot: its story's step
    expect: str  # a piece of the reply that shows the conversation is on its path


# A full fault-repair conversation: greet (a rule), the form's details, the confirmation that
# files the ticket.
ASSISTANT_TURNS = (
    Turn("你好", "rule", "您好"),
    Turn("家里停电了，龙湖区长平路88号3栋502", "form", "联系电话"),
    Turn("13812345678", "form", "请核对"),
    Turn("/affirm", "filing", "工单号"),
)
# The stock template's "sad path 1" story.
STOCK_TURNS = (
    Turn("hello", "greet", "How are you"),
    Turn("I am sad", "mood", "Did that help"),
    Turn("yes", "affirm", "Great"),
)
TURN_TYPES = (("rule", "greet"), ("form", "details"), ("filing", "confirm"))
TARGETS = {
    "one_customer_p50": ("≤", 1.3),
    "filing_turn_p50": ("≤", 2.0),
    "concurrent_messages_per_s": ("≥", 0.9),
}


@dataclass(frozen=True)
class Bot:
    key: str  # "stock" or "assistant"
    url: str
    turns: Tuple[Turn, ...]


@dataclass
class Conversation:
    turns: List[Tuple[str, float]] = field(default_factory=list)  # (kind, ms)
    off_script: List[str] = field(default_factory=list)


def converse(session: requests.Session, bot: Bot) -> Conversation:
    """One full conversation; the latency of each message in ms, with its turn's kind."""
    sender = f"bench-{uuid.uuid4().hex[:12]}"
    conversation = Conversation()
    for turn in bot.turns:
        started = time.perf_counter()
        response = session.post(
            bot.url, json={"sender": sender, "message": turn.message}, timeout=REQUEST_TIMEOUT_S
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        response.raise_for_status()
        reply = " ".join(str(message.get("text", "")) for message in response.json())
        if turn.expect not in reply:
            conversation.off_script.append(f"{turn.message!r} → {reply[:120]!r}")
        conversation.turns.append((turn.kind, elapsed_ms))
    return conversation


def one_customer(bots: Sequence[Bot], rounds: int) -> Dict[str, Conversation]:
    """`rounds` rounds of one conversation per bot, one customer at a time, the bots' order
    alternating round by round. A warm-up conversation per bot is not counted."""
    results = {bot.key: Conversation() for bot in bots}
    sessions = {bot.key: requests.Session() for bot in bots}
    try:
        for bot in bots:
            converse(sessions[bot.key], bot)  # warm-up
        for index in range(rounds):
            for bot in bots if index % 2 == 0 else list(reversed(bots)):
                conversation = converse(sessions[bot.key], bot)
                results[bot.key].turns.extend(conversation.turns)
                results[bot.key].off_script.extend(conversation.off_script)
    finally:
        for session in sessions.values():
            session.close()
    return results


@dataclass
class Load:
    latencies: List[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: List[str] = field(default_factory=list)
    off_script: List[str] = field(default_factory=list)

    def add(self, other: Load) -> None:
        self.latencies.extend(other.latencies)
        self.seconds += other.seconds
        self.errors.extend(other.errors)
        self.off_script.extend(other.off_script)


def concurrent_customers(bot: Bot, customers: int, seconds: float) -> Load:
    """`customers` customers, each running full conversations without pauses until `seconds`
    have passed (a conversation under way is finished)."""
    deadline = time.monotonic() + seconds
    load = Load()
    lock = threading.Lock()

    def customer() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                try:
                    conversation = converse(session, bot)
                except (requests.RequestException, ValueError) as exc:
                    with lock:
                        load.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    time.sleep(ERROR_PAUSE_S)
                    continue
                with lock:
                    load.latencies.extend(ms for _, ms in conversation.turns)
                    load.off_script.extend(conversation.off_script)

    started = time.monotonic()
    threads = [threading.Thread(target=customer, daemon=True) for _ in range(customers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.monotonic() - started
    return load


def interleaved_load(bots: Sequence[Bot], customers: int, seconds: float) -> Dict[str, Load]:
    """`seconds` of load per bot, in CONCURRENT_SLICES slices, the order alternating."""
    loads = {bot.key: Load() for bot in bots}
    for index in range(CONCURRENT_SLICES):
        for bot in bots if index % 2 == 0 else list(reversed(bots)):
            loads[bot.key].add(concurrent_customers(bot, customers, seconds / CONCURRENT_SLICES))
    return loads


def time_training() -> float:
    out = Path(tempfile.mkdtemp(prefix="bench-train-"))
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "RASA_CACHE_DIRECTORY": str(out / "cache"),
    }
    started = time.monotonic()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "rasa"),
            "train",
            "--domain",
            "domain",
            "--data",
            "data",
            "--config",
            "config.yml",
            "--out",
            str(out),
            "--force",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    shutil.rmtree(out, ignore_errors=True)
    return elapsed


# ------------------------------------------------------------------------ figures and report
def summary(values: List[float]) -> Dict[str, float]:
    if not values:
        return {"messages": 0}
    return {
        "messages": len(values),
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "max_ms": round(max(values), 2),
    }


def ratio(assistant: Optional[float], stock: Optional[float]) -> Optional[float]:
    if assistant is None or not stock:
        return None
    return round(assistant / stock, 3)


def met(name: str, value: Optional[float]) -> Optional[bool]:
    if value is None:
        return None
    sign, bound = TARGETS[name]
    return value <= bound if sign == "≤" else value >= bound


def build_report(
    bots: Sequence[Bot],
    single: Dict[str, Conversation],
    loads: Dict[str, Load],
    args: argparse.Namespace,
) -> Dict[str, Any]:
    one: Dict[str, Any] = {}
    for bot in bots:
        turns = single[bot.key].turns
        one[bot.key] = {
            **summary([ms for _, ms in turns]),
            "by_turn": {
                kind: summary([ms for k, ms in turns if k == kind])
                for kind in dict.fromkeys(turn.kind for turn in bot.turns)
            },
            "off_script": single[bot.key].off_script[:20],
        }
    concurrent: Dict[str, Any] = {}
    for bot in bots:
        load = loads[bot.key]
        concurrent[bot.key] = {
            "messages_per_s": round(len(load.latencies) / load.seconds, 2) if load.seconds else 0,
            "seconds": round(load.seconds, 1),
            **summary(load.latencies),
            "errors": len(load.errors),
            "first_errors": load.errors[:10],
            "off_script": len(load.off_script),
            "first_off_script": load.off_script[:10],
        }
    stock_p50 = one["stock"].get("p50_ms")
    ratios: Dict[str, Optional[float]] = {
        "one_customer_p50": ratio(one["assistant"].get("p50_ms"), stock_p50),
        "one_customer_p95": ratio(one["assistant"].get("p95_ms"), one["stock"].get("p95_ms")),
        **{
            f"{kind}_turn_p50": ratio(one["assistant"]["by_turn"][kind].get("p50_ms"), stock_p50)
            for kind, _ in TURN_TYPES
        },
        "concurrent_messages_per_s": ratio(
            concurrent["assistant"]["messages_per_s"], concurrent["stock"]["messages_per_s"]
        ),
        "concurrent_p95": ratio(
            concurrent["assistant"].get("p95_ms"), concurrent["stock"].get("p95_ms")
        ),
    }
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": args.model,
        "rounds": args.rounds,
        "customers": args.customers,
        "seconds_per_bot": args.seconds,
        "conversations": {bot.key: [turn.message for turn in bot.turns] for bot in bots},
        "one_customer": one,
        "concurrent": concurrent,
        "ratios": ratios,
        "ratio_note": "assistant / stock; turn-type ratios are against the stock bot's turn p50",
        "targets": {
            name: {
                "ratio": ratios[name],
                "target": f"{sign} {bound}",
                "met": met(name, ratios[name]),
            }
            for name, (sign, bound) in TARGETS.items()
        },
    }


def _ms(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.1f}"


def _x(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.2f}×"


def print_report(report: Dict[str, Any]) -> None:
    one, conc, ratios = report["one_customer"], report["concurrent"], report["ratios"]
    customers = report["customers"]
    print("Latency: this assistant vs the stock `rasa init` bot (same venv, same run, interleaved)")
    print(
        f"One customer at a time: {report['rounds']} rounds, each one stock conversation "
        f"({' → '.join(report['conversations']['stock'])}) and one fault-repair conversation "
        f"({len(report['conversations']['assistant'])} messages), warm-up not counted"
    )
    print(
        f"{customers} concurrent customers: full conversations without pauses, "
        f"{report['seconds_per_bot']:g} s per bot in {CONCURRENT_SLICES} slices"
    )
    print()
    header = f"{'':34}{'stock':>10}{'assistant':>11}{'ratio':>9}   target"
    print(header)
    print("-" * len(header))

    def row(label: str, stock: str, assistant: str, key: str) -> None:
        target = ""
        if key in report["targets"]:
            goal = report["targets"][key]
            verdict = {True: "met", False: "MISSED", None: "—"}[goal["met"]]
            target = f"{goal['target']}×  {verdict}"
        print(f"{label:34}{stock:>10}{assistant:>11}{_x(ratios.get(key)):>9}   {target}".rstrip())

    row(
        "one customer  p50 ms",
        _ms(one["stock"].get("p50_ms")),
        _ms(one["assistant"].get("p50_ms")),
        "one_customer_p50",
    )
    row(
        "one customer  p95 ms",
        _ms(one["stock"].get("p95_ms")),
        _ms(one["assistant"].get("p95_ms")),
        "one_customer_p95",
    )
    for kind, what in TURN_TYPES:
        row(
            f"{kind} turn ({what}) p50 ms",
            _ms(one["stock"].get("p50_ms")),
            _ms(one["assistant"]["by_turn"][kind].get("p50_ms")),
            f"{kind}_turn_p50",
        )
    row(
        f"{customers} concurrent  messages/s",
        f"{conc['stock']['messages_per_s']:.1f}",
        f"{conc['assistant']['messages_per_s']:.1f}",
        "concurrent_messages_per_s",
    )
    row(
        f"{customers} concurrent  p95 ms",
        _ms(conc["stock"].get("p95_ms")),
        _ms(conc["assistant"].get("p95_ms")),
        "concurrent_p95",
    )
    print()
    print(
        "Turn types are compared with the stock bot's p50 over all its turns. Per turn, p50/p95 ms:"
    )
    for key, name in (("stock", "stock"), ("assistant", "assistant")):
        parts = [
            f"{kind} {_ms(figures.get('p50_ms'))}/{_ms(figures.get('p95_ms'))}"
            for kind, figures in one[key]["by_turn"].items()
        ]
        print(f"  {name:10} " + "   ".join(parts))
    for key in ("stock", "assistant"):
        problems = len(one[key]["off_script"]) + conc[key]["errors"] + conc[key]["off_script"]
        if problems:
            print(
                f"PROBLEMS ({key}): {len(one[key]['off_script'])} off-script replies one at a time, "
                f"{conc[key]['errors']} failed conversations and {conc[key]['off_script']} "
                f"off-script replies under load; first: "
                f"{(one[key]['off_script'] + conc[key]['first_errors'] + conc[key]['first_off_script'])[:3]}"
            )


def has_problems(report: Dict[str, Any]) -> bool:
    return any(
        report["one_customer"][key]["off_script"]
        or report["concurrent"][key]["errors"]
        or report["concurrent"][key]["off_script"]
        for key in ("stock", "assistant")
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/intake.tar.gz")
    parser.add_argument("--rounds", type=int, default=30, help="one-customer rounds (≥ 1)")
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=40, help="load per bot, in seconds")
    parser.add_argument("--train", action="store_true", help="also time a full training run")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.customers < 1 or args.seconds <= 0:
        parser.error("--rounds and --customers must be ≥ 1, --seconds > 0")

    with stock_bot() as stock, throwaway_stack(args.model, "bench-var-") as stack:
        bots = (
            Bot("stock", stock.webhook_url, STOCK_TURNS),
            Bot(
                "assistant",
                f"http://127.0.0.1:{stack.settings.rasa_port}/webhooks/rest/webhook",
                ASSISTANT_TURNS,
            ),
        )
        single = one_customer(bots, args.rounds)
        loads = interleaved_load(bots, args.customers, args.seconds)
    report = build_report(bots, single, loads, args)
    if args.train:
        report["training_from_scratch_s"] = round(time_training(), 1)
    print_report(report)
    if args.train:
        print(f"Full training from scratch (no cache): {report['training_from_scratch_s']:.0f} s")
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    REPORT_PATH.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"Written: {REPORT_PATH.relative_to(PROJECT_ROOT)}")
    return 1 if has_problems(report) else 0


if __name__ == "__main__":
    sys.exit(main())
