"""Load through the door: many Telegram customers filing fault reports through nginx, every
update sent twice (as Telegram does when it got no answer in time), on the production profile
with one Rasa server and then with two (`make bench`; a smaller run is in tests/prod).

Asserts what must hold under load — every conversation got exactly one ticket, no ticket number
twice, no retried update processed twice, no 5xx — and prints throughput and latency of both.

    python -m bench.load --model models/intake.tar.gz [--conversations 500] [--customers 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import requests

from bench.stack import percentile, throwaway_prod_stack
from bot.core.rasa_api import RasaClient
from bot.plugins.channels.telegram import SECRET_HEADER
from bot.tools.runner import ProductionStack
from tests.fakes.fake_telegram import TOKEN as TELEGRAM_TOKEN
from tests.fakes.fake_telegram import FakeBotApi, callback_update, text_update

SECRET = "bench-load-secret"
API_TOKEN = "bench-load-token"
ROADS = ["东山路", "长平路", "金砂路", "中山路", "黄山路", "汕樟路", "海滨路", "天山路"]
DISTRICTS = ["潮南区峡山街道", "龙湖区", "金平区", "濠江区", "澄海区凤翔街道", "潮阳区文光街道"]


@dataclass
class LoadReport:
    """What one run measured and what it found wrong."""

    servers: int
    conversations: int
    seconds: float = 0.0
    turn_seconds: List[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    problems: List[str] = field(default_factory=list)

    @property
    def conversations_per_s(self) -> float:
        return self.conversations / self.seconds if self.seconds else 0.0

    @property
    def turns_per_s(self) -> float:
        return len(self.turn_seconds) / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        p50 = statistics.median(self.turn_seconds) * 1000 if self.turn_seconds else 0
        p95 = percentile(self.turn_seconds, 95) * 1000 if self.turn_seconds else 0
        return (
            f"{self.servers} Rasa server(s): {self.conversations} conversations in "
            f"{self.seconds:.1f} s = {self.conversations_per_s:.2f} conv/s, "
            f"{self.turns_per_s:.1f} updates/s (each sent twice), turn p50 {p50:.0f} ms, "
            f"p95 {p95:.0f} ms; answers {dict(self.statuses)}; problems {len(self.problems)}"
        )


class Door:
    """Posts Telegram updates through nginx, each one twice at once (a retry)."""

    def __init__(
        self, stack: ProductionStack, fake: FakeBotApi, report: LoadReport, secret: str
    ) -> None:
        assert stack.door is not None
        self.secret = secret
        self.url = f"{stack.door.url}/webhooks/telegram/webhook"
        self.fake, self.report = fake, report
        self.lock = threading.Lock()
        self.http = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self.http, "session"):
            self.http.session = requests.Session()
        return self.http.session

    def post_twice(self, update: Dict[str, Any]) -> None:
        started = time.monotonic()
        codes: List[int] = []

        def post() -> None:
            try:
                answer = requests.post(
                    self.url, json=update, headers={SECRET_HEADER: self.secret}, timeout=60
                )
                codes.append(answer.status_code)
            except requests.RequestException as error:
                codes.append(599)
                with self.lock:
                    self.report.problems.append(f"update {update['update_id']}: {error}")

        retry = threading.Thread(target=post)
        retry.start()
        post()
        retry.join()
        with self.lock:
            self.report.turn_seconds.append(time.monotonic() - started)
            self.report.statuses.update(codes)
            if any(code >= 500 for code in codes):
                self.report.problems.append(f"update {update['update_id']}: answers {codes}")


def one_conversation(door: Door, chat_id: int, update_ids: Any, rng: random.Random) -> None:
    """Opening with the address, the phone when asked, then 确认提交."""
    address = f"{rng.choice(DISTRICTS)}{rng.choice(ROADS)}{rng.randint(1, 300)}号"
    phone = f"13{rng.randint(0, 9)}{rng.randint(10**7, 10**8 - 1)}"
    door.post_twice(text_update(next(update_ids), chat_id, f"家里停电了，{address}"))
    door.post_twice(text_update(next(update_ids), chat_id, phone))
    buttons = [
        b
        for r in door.fake.sent(chat_id=chat_id)
        for row in r.get("reply_markup", {}).get("inline_keyboard", [])
        for b in row
        if b["text"] == "确认提交"
    ]
    if not buttons:
        with door.lock:
            door.report.problems.append(f"chat {chat_id}: no summary to confirm")
        return
    door.post_twice(callback_update(next(update_ids), chat_id, buttons[-1]["callback_data"]))


def check(stack: ProductionStack, chats: List[int], report: LoadReport, api_token: str) -> None:
    """Exactly one ticket per conversation, no number twice, no update processed twice."""
    response = requests.get(
        f"http://127.0.0.1:{stack.settings.console_port}/api/v1/tickets",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {api_token}"},
        timeout=30,
    )
    response.raise_for_status()
    tickets = response.json()
    per_conversation = Counter(t["conversation_id"] for t in tickets)
    numbers = Counter(t["ticket_no"] for t in tickets)
    for chat in chats:
        if per_conversation[f"tg-{chat}"] != 1:
            report.problems.append(f"tg-{chat}: {per_conversation[f'tg-{chat}']} tickets")
    report.problems += [f"ticket {n} twice" for n, c in numbers.items() if c > 1]
    rasa = RasaClient(stack.settings)
    for chat in rng_sample(chats, 20):  # the trackers of a sample: each user message once
        users = [e for e in rasa.events(f"tg-{chat}") if e.get("event") == "user"]
        if len(users) != 3:
            report.problems.append(f"tg-{chat}: {len(users)} customer messages in the tracker")


def rng_sample(items: List[int], k: int) -> List[int]:
    return random.Random(7).sample(items, min(k, len(items)))


def drive(
    stack: ProductionStack,
    fake: FakeBotApi,
    conversations: int,
    customers: int,
    secret: str = SECRET,
    api_token: str = API_TOKEN,
    seed: int = 2026,
) -> LoadReport:
    """`conversations` customers, `customers` at a time, through the door of `stack`."""
    report = LoadReport(len(stack.rasa_ports()), conversations)
    rng = random.Random(seed)
    base = rng.randrange(10**8, 9 * 10**8)
    chats = [base + i for i in range(conversations)]
    update_ids = SharedIds(base * 10)
    door = Door(stack, fake, report, secret)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=customers) as pool:
        list(
            pool.map(
                lambda chat: one_conversation(door, chat, update_ids, random.Random(chat)), chats
            )
        )
    report.seconds = time.monotonic() - started
    check(stack, chats, report, api_token)
    return report


class SharedIds:
    """Telegram update ids from `start` on, handed out once each across threads."""

    def __init__(self, start: int) -> None:
        self._next = start
        self._lock = threading.Lock()

    def __next__(self) -> int:
        with self._lock:
            self._next += 1
            return self._next - 1


def telegram_environment(fake: FakeBotApi, secret: str, api_token: str) -> Dict[str, str]:
    """A benchmark stack's environment: its API token, no rate limits, Telegram on the fake."""
    return {
        "INTAKE_API_TOKEN": api_token,
        "INTAKE_RATE_LIMITS": "off",
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": secret,
        "TELEGRAM_API_BASE_URL": fake.base_url,
    }


def run_load(model: str, servers: int, conversations: int, customers: int) -> LoadReport:
    """One run on a fresh production profile with `servers` Rasa servers."""
    fake = FakeBotApi()
    fake.start()
    env = {**telegram_environment(fake, SECRET, API_TOKEN), "CONSOLE_SWEEP_SECONDS": "0"}
    try:
        with throwaway_prod_stack(model, "intake-load-", env, servers=servers) as stack:
            return drive(stack, fake, conversations, customers)
    finally:
        fake.stop()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/intake.tar.gz")
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--customers", type=int, default=20)
    args = parser.parse_args(argv)
    reports = [run_load(args.model, n, args.conversations, args.customers) for n in (1, 2)]
    for report in reports:
        print(report.line())
        for problem in report.problems[:20]:
            print(f"   ✗ {problem}")
    ratio = reports[1].conversations_per_s / max(reports[0].conversations_per_s, 1e-9)
    print(f"two servers / one server throughput: {ratio:.2f}× (target ≥ 1.3×)")
    return 0 if not any(r.problems for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
