"""Simulated customers: play the scenarios of tests/scenarios/*.yml against the real stack.

Each scenario is one customer (format: README, "Simulated customers"). The runner sends the
scripted messages through the REST channel, then answers whatever the bot asks for (the
form's requested slot, read from Rasa's tracker) from what the customer knows, and finally
checks the outcome from the outside, through the JSON API: tickets, their details,
hand-overs and their reasons, and the bot's words.

    python -m bench.scenarios                     # every scenario, report per category
    python -m bench.scenarios --fast              # the quick subset `make test` runs
    python -m bench.scenarios --only fault-town-only-rambling-02 -v
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import requests
import yaml

from bot.core.normalize import normalize_text
from bot.core.settings import PROJECT_ROOT

SCENARIO_DIR = PROJECT_ROOT / "tests" / "scenarios"
TICKET_RE = re.compile(r"GD\d{14}")
MAX_TURNS = 20
DEFAULT_DECLINE = "不知道"
DEFAULT_CONFIRMATION = "确认"
SERVICE_BUCKETS_WITHOUT_TICKET = {
    "query_bill",
    "query_outage",
    "query_ticket",
    "faq",
    "handover",
    "control",
    "out_of_scope",
}


@dataclass
class Scenario:
    """One simulated customer (format: README, "Simulated customers")."""

    id: str
    category: str
    says: List[str]
    knows: Dict[str, str] = field(default_factory=dict)
    answers: Dict[str, List[str]] = field(default_factory=dict)
    declines: List[str] = field(default_factory=list)
    at_confirmation: List[str] = field(default_factory=list)
    then: List[str] = field(default_factory=list)
    expect: Dict[str, Any] = field(default_factory=dict)
    fast: bool = False
    customer: str = ""
    file: str = ""

    @property
    def expected_tickets(self) -> int:
        default = 0 if self.category in SERVICE_BUCKETS_WITHOUT_TICKET else 1
        return int(self.expect.get("tickets", default))


def load_scenarios(directory: Path = SCENARIO_DIR) -> List[Scenario]:
    """Every scenario under `directory`, in file order."""
    scenarios = []
    for path in sorted(directory.glob("*.yml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8"))["scenarios"]:
            raw = dict(raw)
            raw["knows"] = {k: str(v) for k, v in (raw.get("knows") or {}).items()}
            raw["answers"] = {k: [str(a) for a in v] for k, v in (raw.get("answers") or {}).items()}
            for key in ("says", "declines", "at_confirmation", "then"):
                raw[key] = [str(item) for item in raw.get(key) or []]
            raw["expect"] = raw.get("expect") or {}
            scenarios.append(Scenario(file=path.name, **raw))
    return scenarios


@dataclass
class Turn:
    said: str
    replies: List[str]


@dataclass
class Outcome:
    scenario: Scenario
    turns: List[Turn]
    failures: List[str]
    turns_to_ticket: Optional[int]
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.failures


class StackClient:
    """The customer's REST channel, the tracker (what the bot asks) and the JSON API."""

    def __init__(
        self,
        rasa_url: str,
        console_url: str,
        api_token: str,
        rasa_token: str = "",
        timeout: float = 60,
    ) -> None:
        self.rasa_url, self.console_url = rasa_url.rstrip("/"), console_url.rstrip("/")
        self.api = {"Authorization": f"Bearer {api_token}"}
        self.rasa_params = {"token": rasa_token} if rasa_token else {}
        self.timeout = timeout
        self.http = requests.Session()

    def say(self, sender: str, text: str) -> List[str]:
        response = self.http.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=self.timeout,
        )
        response.raise_for_status()
        return [m.get("text") or "" for m in response.json()]

    def state(self, sender: str) -> Dict[str, Any]:
        response = self.http.get(
            f"{self.rasa_url}/conversations/{sender}/tracker",
            params=self.rasa_params,
            timeout=self.timeout,
        )
        response.raise_for_status()
        tracker = response.json()
        return {
            "requested": (tracker.get("slots") or {}).get("requested_slot"),
            "together": (tracker.get("slots") or {}).get("asked_together"),
            "active_loop": (tracker.get("active_loop") or {}).get("name"),
            "paused": bool(tracker.get("paused")),
        }

    def tickets(self, sender: str) -> List[Dict[str, Any]]:
        response = self.http.get(
            f"{self.console_url}/api/v1/tickets",
            headers=self.api,
            params={"conversation_id": sender},
            timeout=self.timeout,
        )
        response.raise_for_status()
        return response.json()

    def handoffs(self, sender: str) -> List[Dict[str, Any]]:
        response = self.http.get(
            f"{self.console_url}/api/v1/handoffs",
            headers=self.api,
            params={"conversation_id": sender},
            timeout=self.timeout,
        )
        response.raise_for_status()
        return response.json()


def _same(expected: Any, actual: Any) -> bool:
    """Values compared as the contract writes them: 50 == 50.0 == "50", and text in the
    script tickets are kept in (Simplified, half-width: 龍湖區 is stored as 龙湖区)."""
    try:
        return float(str(expected)) == float(str(actual))
    except ValueError:
        return normalize_text(str(expected)).strip() == str(actual).strip()


def play(scenario: Scenario, client: StackClient) -> Outcome:
    """One customer's conversation, then every check of its `expect`."""
    started = time.monotonic()
    sender = f"sim-{scenario.id}-{uuid.uuid4().hex[:8]}"
    turns: List[Turn] = []
    answers = {k: list(v) for k, v in scenario.answers.items()}
    confirmations = list(scenario.at_confirmation)
    turns_to_ticket: Optional[int] = None

    def send(text: str) -> None:
        nonlocal turns_to_ticket
        replies = client.say(sender, text)
        turns.append(Turn(text, replies))
        if turns_to_ticket is None and any(TICKET_RE.search(r) for r in replies):
            turns_to_ticket = len(turns)

    def answer(detail: Optional[str]) -> Optional[str]:
        """The customer's next answer for `detail` (scripted answers first), or None."""
        if not detail:
            return None
        if answers.get(detail):
            return answers[detail].pop(0)
        return scenario.knows.get(detail)

    def answer_questions() -> None:
        for _ in range(MAX_TURNS):
            state = client.state(sender)
            asked = state["requested"] if state["active_loop"] else None
            if state["paused"] or not asked or len(turns) >= MAX_TURNS:
                return
            if asked == "confirm_submission":
                reply = confirmations.pop(0) if confirmations else DEFAULT_CONFIRMATION
            else:
                # a joint question (「姓名和联系电话」) gets what the customer knows of both;
                # scripted answers are written one question at a time, so a partner with one
                # waits for its own question
                partner = state["together"]
                if partner and answers.get(partner):
                    partner = None
                given = [a for a in (answer(asked), answer(partner)) if a]
                if given:
                    reply = "，".join(given)
                else:
                    reply = scenario.declines[0] if scenario.declines else DEFAULT_DECLINE
            send(reply)

    for text in scenario.says:
        send(text)
    answer_questions()
    for text in scenario.then:
        send(text)
        answer_questions()
    failures = check(scenario, client, sender, turns, turns_to_ticket)
    return Outcome(scenario, turns, failures, turns_to_ticket, time.monotonic() - started)


def check(
    scenario: Scenario,
    client: StackClient,
    sender: str,
    turns: List[Turn],
    turns_to_ticket: Optional[int],
) -> List[str]:
    """What went against the scenario's expectations (and the rules every conversation keeps)."""
    failures: List[str] = []
    expect = scenario.expect
    tickets = client.tickets(sender)
    if len(tickets) != scenario.expected_tickets:
        failures.append(
            f"{len(tickets)} tickets, expected {scenario.expected_tickets}: "
            f"{[(t['ticket_no'], t['category']) for t in tickets]}"
        )
    wanted = expect.get("ticket") or {}
    if wanted and tickets:
        ticket = next((t for t in tickets if t["category"] == wanted.get("category")), tickets[0])
        for key, value in wanted.items():
            if key == "details":
                for name, detail in (value or {}).items():
                    if not _same(detail, ticket["details"].get(name)):
                        failures.append(
                            f"details.{name} = {ticket['details'].get(name)!r}, expected {detail!r}"
                        )
            elif not _same(value, ticket.get(key)):
                failures.append(f"ticket {key} = {ticket.get(key)!r}, expected {value!r}")
    reason = expect.get("handoff")
    handoffs = client.handoffs(sender)
    if reason == "none" and handoffs:
        failures.append(f"hand-over {[h['reason'] for h in handoffs]}, expected none")
    elif reason and reason != "none" and reason not in [h["reason"] for h in handoffs]:
        failures.append(f"no hand-over {reason!r} (got {[h['reason'] for h in handoffs]})")
    said = "\n".join(r for t in turns for r in t.replies)
    for text in expect.get("bot_says") or []:
        if str(text) not in said:
            failures.append(f"the bot never said {text!r}")
    for text in expect.get("bot_never_says") or []:
        if str(text) in said:
            failures.append(f"the bot said {text!r}")
    limit = expect.get("max_turns_to_ticket")
    if limit is not None and (turns_to_ticket is None or turns_to_ticket > int(limit)):
        failures.append(f"ticket number after {turns_to_ticket} customer turns, expected ≤ {limit}")
    failures.extend(general_rules(turns))
    return failures


def general_rules(turns: List[Turn]) -> List[str]:
    """Every conversation: never silent, never the same question three times in a row."""
    failures = []
    for index, turn in enumerate(turns):
        if not any(r.strip() for r in turn.replies):
            failures.append(f"no answer to {turn.said!r}")
        if (
            index >= 2
            and turn.replies
            and turns[index - 1].replies == turn.replies == turns[index - 2].replies
        ):
            failures.append(f"the same reply three times in a row: {turn.replies[-1][:40]!r}")
    return failures


def report(outcomes: List[Outcome], verbose: bool = False) -> Dict[str, Any]:
    """Print the pass rate per category and the median customer turns to a ticket."""
    by_category: Dict[str, List[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_category[outcome.scenario.category].append(outcome)
    print(f"\n{'category':20s} pass  n")
    for category, items in sorted(by_category.items()):
        passed = sum(o.passed for o in items)
        print(f"{category:20s} {passed / len(items):.2f}  {len(items)}")
    passed = sum(o.passed for o in outcomes)
    to_ticket = [o.turns_to_ticket for o in outcomes if o.turns_to_ticket]
    median = statistics.median(to_ticket) if to_ticket else None
    print(
        f"\nscenarios {len(outcomes)}, passed {passed} ({passed / max(len(outcomes), 1):.3f}); "
        f"median customer turns to a ticket {median}"
    )
    for outcome in outcomes:
        if outcome.failures or verbose:
            print(
                f"\n{'FAIL' if outcome.failures else 'ok  '} {outcome.scenario.id} ({outcome.scenario.file})"
            )
            for failure in outcome.failures:
                print(f"   ✗ {failure}")
            if verbose or outcome.failures:
                for turn in outcome.turns:
                    print(f"   客户: {turn.said}")
                    for reply in turn.replies:
                        print(f"   助手: {reply.replace(chr(10), ' / ')[:160]}")
    return {
        "scenarios": len(outcomes),
        "passed": passed,
        "pass_rate": passed / max(len(outcomes), 1),
        "median_turns_to_ticket": median,
        "per_category": {
            c: sum(o.passed for o in items) / len(items) for c, items in by_category.items()
        },
        "failures": {o.scenario.id: o.failures for o in outcomes if o.failures},
    }


def run_all(scenarios: Iterable[Scenario], client: StackClient) -> List[Outcome]:
    return [play(scenario, client) for scenario in scenarios]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/intake.tar.gz")
    parser.add_argument("--fast", action="store_true", help="only the scenarios marked fast")
    parser.add_argument("--only", nargs="*", help="scenario ids")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "scenarios.json")
    args = parser.parse_args(argv)
    from bench.stack import throwaway_stack

    scenarios = [
        s
        for s in load_scenarios()
        if (not args.fast or s.fast) and (not args.only or s.id in args.only)
    ]
    with throwaway_stack(
        args.model, "intake-scenarios-", {"INTAKE_RATE_LIMITS": "off"}, seed=True
    ) as stack:
        settings = stack.settings
        client = StackClient(
            f"http://127.0.0.1:{settings.rasa_port}",
            f"http://127.0.0.1:{settings.console_port}",
            settings.api_token(),
            settings.rasa_token,
        )
        outcomes = run_all(scenarios, client)
    summary = report(outcomes, args.verbose)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0 if summary["pass_rate"] >= 0.97 else 1


if __name__ == "__main__":
    sys.exit(main())
