"""Where the time goes: py-spy samples the Rasa server and the action server while
`--customers` customers (default 20) run full conversations against this assistant without
pauses, as `bench.latency` does. It prints, per process, the share of samples spent in each
of the top functions (own time, and time including what they call), and keeps py-spy's raw
collapsed stacks under reports/profile/ for a flame graph.

    python -m bench.profile --model models/intake.tar.gz [--customers 20] [--seconds 30]

Needs py-spy (in the venv) and the right to trace processes (root, or ptrace allowed).
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import threading
from pathlib import Path
from typing import Counter, Dict, Iterator, List, Optional, Tuple

from bench.latency import ASSISTANT_TURNS, Bot, concurrent_customers
from bench.stack import throwaway_stack
from bot.tools.runner import PROJECT_ROOT

REPORT_DIR = PROJECT_ROOT / "reports" / "profile"
PROFILED = ("rasa", "actions")
SAMPLE_RATE = 100  # per second
# Leaf frames that mean "waiting for work": the event loop's select, an idle thread-pool worker,
# Sanic's serve loop, a thread waiting on a lock or condition.
IDLE_FRAMES = (
    "select (selectors.py",
    "_run_once (asyncio",
    "run_forever (asyncio",
    "_worker (concurrent/futures/thread.py",
    "serve (sanic/server/runners.py",
    "wait (threading.py",
)


def py_spy() -> str:
    """The py-spy of this venv."""
    return str(Path(sys.executable).with_name("py-spy"))


def record(pid: int, seconds: float, output: Path) -> subprocess.Popen:
    """Start py-spy recording `pid` (and its children) as raw collapsed stacks."""
    return subprocess.Popen(
        [
            py_spy(),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--rate",
            str(SAMPLE_RATE),
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--output",
            str(output),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stacks(collapsed: Path) -> Iterator[Tuple[List[str], int]]:
    """(frames, count) per line of py-spy's raw output (`frame;frame;…;leaf count`, outermost
    frame first; py-spy's process and thread pseudo-frames left out)."""
    for line in collapsed.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if frames and count_text.isdigit():
            yield frames, int(count_text)


def summarise(collapsed: Path, top: int) -> Tuple[int, int, List[Tuple[str, float, float]]]:
    """(samples, busy samples, [(function, own share, total share)]): shares of the busy
    samples, those whose leaf is not a wait (IDLE_FRAMES)."""
    own: Counter[str] = collections.Counter()
    total: Counter[str] = collections.Counter()
    samples = busy = 0
    for frames, count in stacks(collapsed):
        samples += count
        if frames[-1].startswith(IDLE_FRAMES):
            continue
        busy += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    rows = [(frame, own[frame] / busy, total[frame] / busy) for frame, _ in own.most_common(top)]
    return samples, busy, rows


def share_in(collapsed: Path, path_part: str) -> float:
    """The share of samples with a frame whose file path contains `path_part` (e.g. `yaml/`)."""
    counted = [(any(path_part in f for f in frames), count) for frames, count in stacks(collapsed)]
    samples = sum(count for _, count in counted)
    return sum(count for hit, count in counted if hit) / samples if samples else 0.0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/intake.tar.gz")
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    outputs = {name: REPORT_DIR / f"{name}.txt" for name in PROFILED}
    with throwaway_stack(args.model, "bench-profile-") as stack:
        bot = Bot(
            "assistant",
            f"http://127.0.0.1:{stack.settings.rasa_port}/webhooks/rest/webhook",
            ASSISTANT_TURNS,
        )
        concurrent_customers(bot, args.customers, 5)  # warm-up
        recorders: Dict[str, subprocess.Popen] = {
            name: record(stack.processes[name].pid, args.seconds, outputs[name])
            for name in PROFILED
        }
        load_thread = threading.Thread(
            target=lambda: concurrent_customers(bot, args.customers, args.seconds + 2)
        )
        load_thread.start()
        failed = False
        for name, recorder in recorders.items():
            _, errors = recorder.communicate(timeout=args.seconds + 60)
            if recorder.returncode != 0 or not outputs[name].exists():
                print(f"py-spy on {name} failed: {errors.decode(errors='replace')[-400:]}")
                failed = True
        load_thread.join()
    if failed:
        return 1
    for name in PROFILED:
        samples, busy, rows = summarise(outputs[name], args.top)
        print(
            f"\n{name}: {samples} samples in {args.seconds:.0f} s at {args.customers} customers; "
            f"busy {busy / max(samples, 1):.0%} of them; "
            f"in YAML parsing {share_in(outputs[name], 'yaml/'):.1%} of all"
        )
        print(f"  {'own':>6} {'total':>6}  function (file:line), shares of the busy samples")
        for frame, own_share, total_share in rows:
            print(f"  {own_share:6.1%} {total_share:6.1%}  {frame[:110]}")
        print(f"  raw stacks: {outputs[name].relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
