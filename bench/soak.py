"""The soak (`make bench`, issue: nothing lost when things break): simulated Telegram customers
filing fault reports through the door of the production profile for a fixed time, while a
random process (a Rasa server, an action server or the console) is killed with SIGKILL every
minute and staff change ticket statuses, so notices go out meanwhile.

Customers behave as Telegram and people do: an update that gets no 200 is sent again (the same
update id); an apology (「系统有点忙…请稍等一会儿再发一次」) or no answer at all is answered by
writing the same thing again, a few seconds later. At the end it reports, and requires to be 0:
tickets expected vs filed, duplicate tickets, notices delivered twice, customers left without
an answer.

    python -m bench.soak --model models/intake.tar.gz [--customers 200] [--seconds 600] [--kill-every 60] [--seed 2026]
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import requests

from bench.load import SharedIds, telegram_environment
from bench.stack import throwaway_prod_stack
from bot.core.catalog import load_catalog
from bot.core.rasa_api import RasaClient
from bot.plugins.channels.telegram import SECRET_HEADER, sender_id_of
from bot.tools.runner import ProductionStack
from tests.fakes.fake_telegram import FakeBotApi, callback_update, text_update

SECRET = "bench-soak-secret"
API_TOKEN = "bench-soak-token"
BUSY = load_catalog().system_messages["busy"]
KILLABLE = ("rasa-1", "rasa-2", "actions-1", "actions-2", "console")


@dataclass
class SoakReport:
    conversations_started: int = 0
    conversations_confirmed: int = 0
    turns: int = 0
    resent_updates: int = 0
    repeated_messages: int = 0
    unanswered: List[Tuple[int, str]] = field(default_factory=list)  # (chat, what it last saw)
    kills: List[str] = field(default_factory=list)
    status_changes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class SoakCustomer:
    """One Telegram customer: conversations one after another until the time is up."""

    def __init__(
        self, door_url: str, fake: FakeBotApi, chat_id: int, ids: Any, report: SoakReport
    ) -> None:
        self.url, self.fake, self.chat_id, self.ids, self.report = (
            door_url,
            fake,
            chat_id,
            ids,
            report,
        )
        self.rng = random.Random(chat_id)
        self.last_seen = ""

    def _post(self, update: Dict[str, Any]) -> bool:
        """Send until a 200, as Telegram does (bounded); False when it never got one."""
        for attempt in range(30):
            try:
                answer = requests.post(
                    self.url, json=update, headers={SECRET_HEADER: SECRET}, timeout=120
                )
                if answer.status_code == 200:
                    return True
            except requests.RequestException:
                pass
            with self.report.lock:
                self.report.resent_updates += 1
            time.sleep(min(2 + attempt, 10))
        return False

    def turn(self, make_update: Any, expect: str) -> Optional[List[Dict[str, Any]]]:
        """One customer turn; the bot's new messages, or None when it never answered (after
        writing the same thing up to 10 times, 5 s apart: about a minute, the time a killed
        server needs to come back)."""
        self.last_seen = ""
        for _ in range(10):
            before = len(self.fake.sent(chat_id=self.chat_id))
            if not self._post(make_update(next(self.ids))):
                continue
            replies = self.fake.sent(chat_id=self.chat_id)[before:]
            with self.report.lock:
                self.report.turns += 1
            text = "\n".join(str(r.get("text", "")) for r in replies)
            if replies and BUSY not in text and expect in str(replies):
                return replies
            self.last_seen = text[:80] or "(nothing)"
            with self.report.lock:  # an apology, or nothing: write it again
                self.report.repeated_messages += 1
            time.sleep(5)
        return None

    def conversation(self) -> bool:
        rng = self.rng
        address = f"潮南区峡山街道东山路{rng.randint(1, 300)}号"
        phone = f"13{rng.randint(0, 9)}{rng.randint(10**7, 10**8 - 1)}"
        with self.report.lock:
            self.report.conversations_started += 1
        chat = self.chat_id
        first = self.turn(lambda u: text_update(u, chat, f"家里停电了，{address}"), "电话")
        summary = first and self.turn(lambda u: text_update(u, chat, phone), "确认提交")
        if not summary:
            with self.report.lock:
                self.report.unanswered.append((chat, self.last_seen))
            return False
        data = next(
            b["callback_data"]
            for r in summary
            for row in r.get("reply_markup", {}).get("inline_keyboard", [])
            for b in row
            if b["text"] == "确认提交"
        )
        done = self.turn(lambda u: callback_update(u, chat, data), "工单")
        with self.report.lock:
            if done:
                self.report.conversations_confirmed += 1
            else:
                self.report.unanswered.append((chat, f"(confirm) {self.last_seen}"))
        return bool(done)


def soak(model: str, customers: int, seconds: float, kill_every: float, seed: int = 2026) -> int:
    fake = FakeBotApi()
    fake.start()
    report = SoakReport()
    env = telegram_environment(fake, SECRET, API_TOKEN)
    try:
        with throwaway_prod_stack(model, "intake-soak-", env) as stack:
            stack.supervise_in_background()
            return run(stack, fake, report, customers, seconds, kill_every, seed)
    finally:
        fake.stop()


def run(
    stack: ProductionStack,
    fake: FakeBotApi,
    report: SoakReport,
    customers: int,
    seconds: float,
    kill_every: float,
    seed: int = 2026,
) -> int:
    assert stack.door is not None
    door_url = f"{stack.door.url}/webhooks/telegram/webhook"
    deadline = time.monotonic() + seconds
    rng = random.Random(seed)
    base = rng.randrange(10**8, 9 * 10**8)
    update_ids = SharedIds(base * 100)
    # a customer's chat id is per conversation, so "one ticket per conversation" is checkable
    chats = SharedIds(base)

    def customer_loop() -> None:
        while time.monotonic() < deadline:
            SoakCustomer(door_url, fake, next(chats), update_ids, report).conversation()

    def killer() -> None:
        while time.monotonic() + kill_every < deadline:
            time.sleep(kill_every)
            name = rng.choice(KILLABLE)
            stack.kill_process(name)
            report.kills.append(name)
            print(f"  killed {name} at {seconds - (deadline - time.monotonic()):.0f} s", flush=True)

    console = f"http://127.0.0.1:{stack.settings.console_port}/api/v1"
    auth = {"Authorization": f"Bearer {API_TOKEN}"}

    def staff() -> None:  # staff move filed tickets on: notices go out during the kills
        while time.monotonic() < deadline:
            time.sleep(2)
            try:
                filed = requests.get(
                    f"{console}/tickets",
                    params={"status": "new", "limit": 5},
                    headers=auth,
                    timeout=10,
                ).json()
                for ticket in filed[:2]:
                    requests.patch(
                        f"{console}/tickets/{ticket['ticket_no']}",
                        json={"status": "in_progress"},
                        headers=auth,
                        timeout=10,
                    )
                    report.status_changes += 1
            except (requests.RequestException, ValueError):
                pass  # the console is being restarted

    threads = [threading.Thread(target=customer_loop) for _ in range(customers)]
    threads += [threading.Thread(target=killer), threading.Thread(target=staff)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stack.wait_ready()
    return check(stack, report, console, auth)


def all_tickets(stack: ProductionStack) -> List[Dict[str, Any]]:
    """Every ticket (the API pages at 1,000; the soak files more)."""
    from sqlalchemy import select

    from bot.core.db import session_scope
    from bot.core.tickets.models import Ticket

    with session_scope(stack.settings.database_url) as session:
        rows = session.execute(select(Ticket.conversation_id, Ticket.ticket_no)).all()
    return [{"conversation_id": c, "ticket_no": n} for c, n in rows]


def event_trail(events: List[Dict[str, Any]]) -> List[str]:
    """A conversation's events a line each (when, what): how a customer was left unanswered."""
    lines = []
    for event in events:
        kind = event.get("event")
        when = time.strftime("%H:%M:%S", time.localtime(float(event.get("timestamp") or 0)))
        if kind == "user":
            intent = (event.get("parse_data") or {}).get("intent", {}).get("name")
            what = f"customer: {intent} {str(event.get('text'))[:30]!r}"
        elif kind == "bot":
            what = f"bot: {str(event.get('text'))[:40]!r}"
        elif kind == "action":
            what = f"action {event.get('name')}"
        elif kind == "active_loop":
            what = f"form {event.get('name')}"
        elif kind == "slot":
            what = f"slot {event.get('name')}"
        else:
            what = str(kind)
        lines.append(f"{when} {what}")
    return lines


def check(stack: ProductionStack, report: SoakReport, console: str, auth: Dict[str, str]) -> int:
    # notices still owed are delivered by the console loop: wait for them (bounded)
    for _ in range(60):
        pending = requests.get(
            f"{console}/notifications", params={"state": "pending"}, headers=auth, timeout=10
        ).json()
        if not pending:
            break
        time.sleep(2)
    tickets = all_tickets(stack)
    per_conversation = Counter(t["conversation_id"] for t in tickets)
    duplicates = sum(c - 1 for c in per_conversation.values() if c > 1)
    numbers = Counter(t["ticket_no"] for t in tickets)
    notices = requests.get(
        f"{console}/notifications", params={"limit": 1000}, headers=auth, timeout=30
    ).json()
    rasa = RasaClient(stack.settings)
    twice = 0
    for conversation in {n["conversation_id"] for n in notices if n["state"] == "sent"}:
        ids = Counter(
            (e.get("metadata") or {}).get("notification")
            for e in rasa.events(conversation)
            if e.get("event") == "bot" and (e.get("metadata") or {}).get("notification")
        )
        twice += sum(c - 1 for c in ids.values() if c > 1)
    rows = [
        ("conversations started", report.conversations_started),
        ("confirmed by the customer (tickets expected)", report.conversations_confirmed),
        ("tickets filed", len(tickets)),
        ("conversations with more than one ticket", duplicates),
        ("ticket numbers used twice", sum(c - 1 for c in numbers.values() if c > 1)),
        ("status changes by staff", report.status_changes),
        (
            "notices sent / failed / pending",
            "{} / {} / {}".format(
                *(sum(n["state"] == s for n in notices) for s in ("sent", "failed", "pending"))
            ),
        ),
        ("notices delivered twice", twice),
        ("customers left without an answer", len(report.unanswered)),
        (
            "customer turns / updates resent / messages repeated",
            f"{report.turns} / {report.resent_updates} / {report.repeated_messages}",
        ),
        ("processes killed", ", ".join(report.kills)),
        ("restarts by the runner", dict(stack.restarts)),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    for chat, last_seen in report.unanswered[:20]:
        print(f"   unanswered {sender_id_of(chat)}: {last_seen}")
    for chat, _ in report.unanswered[:5]:
        print(f"   what the tracker of {sender_id_of(chat)} holds:")
        for line in event_trail(rasa.events(sender_id_of(chat))):
            print(f"     {line}")
    lost = report.conversations_confirmed - len(tickets)
    bad = duplicates + twice + len(report.unanswered) + max(lost, 0)
    return 0 if bad == 0 else 1


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/intake.tar.gz")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--kill-every", type=float, default=60)
    parser.add_argument(
        "--seed", type=int, default=2026, help="which processes are killed when, and the chat ids"
    )
    args = parser.parse_args(argv)
    return soak(args.model, args.customers, args.seconds, args.kill_every, args.seed)


if __name__ == "__main__":
    sys.exit(main())
