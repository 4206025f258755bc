"""Reply latency and throughput through the REST channel (`make bench`).

Starts the real stack (Rasa server, action server, console) on free ports with a throw-away
SQLite database, then:
1. one customer at a time: full fault-repair conversations, p50/p95 per message;
2. N concurrent customers (default 20), each running full conversations without pauses
   for a fixed time: messages/s and p95;
3. optionally (--train) the time of a full training run from scratch.
Every request goes to 127.0.0.1 only; loops are bounded in count and time.

    python -m bench.latency --model models/intake.tar.gz [--customers 20] [--seconds 40] [--train]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import List, Optional, Tuple

import requests

from bench.stack import percentile, throwaway_stack
from bot.core.settings import PROJECT_ROOT

CONVERSATION = ("家里停电了，龙湖区长平路88号3栋502", "13812345678", "/affirm")


def converse(session: requests.Session, url: str) -> List[float]:
    """One full conversation; returns the latency of each message in ms."""
    sender = f"bench-{uuid.uuid4().hex[:12]}"
    latencies = []
    for message in CONVERSATION:
        started = time.perf_counter()
        response = session.post(url, json={"sender": sender, "message": message}, timeout=60)
        response.raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def single_customer(url: str, conversations: int) -> List[float]:
    with requests.Session() as session:
        converse(session, url)  # warm-up
        return [ms for _ in range(conversations) for ms in converse(session, url)]


def concurrent_customers(url: str, customers: int, seconds: float) -> Tuple[List[float], float]:
    deadline = time.monotonic() + seconds
    latencies: List[float] = []
    lock = threading.Lock()

    def customer() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                result = converse(session, url)
                with lock:
                    latencies.extend(result)

    started = time.monotonic()
    threads = [threading.Thread(target=customer) for _ in range(customers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.monotonic() - started


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


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/intake.tar.gz")
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--train", action="store_true", help="also time a full training run")
    args = parser.parse_args(argv)

    with throwaway_stack(args.model, "bench-var-") as stack:
        url = f"http://127.0.0.1:{stack.settings.rasa_port}/webhooks/rest/webhook"
        single = single_customer(url, args.conversations)
        print(
            f"One customer at a time: {len(single)} messages "
            f"({args.conversations} fault-repair conversations of {len(CONVERSATION)} messages)"
        )
        print(
            f"  p50 {statistics.median(single):.0f} ms   p95 {percentile(single, 95):.0f} ms   "
            f"max {max(single):.0f} ms"
        )
        loaded, elapsed = concurrent_customers(url, args.customers, args.seconds)
        print(
            f"{args.customers} concurrent customers, full conversations without pauses, {elapsed:.0f} s:"
        )
        print(
            f"  {len(loaded) / elapsed:.1f} messages/s   p50 {statistics.median(loaded):.0f} ms   "
            f"p95 {percentile(loaded, 95):.0f} ms"
        )
    if args.train:
        print(f"Full training from scratch (no cache): {time_training():.0f} s")


if __name__ == "__main__":
    main()
