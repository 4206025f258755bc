"""What operators see of the running stack: `/metrics` of each process parses as Prometheus
text and moves with what customers do; `/healthz` of each says what it depends on."""

from __future__ import annotations

from typing import Dict, Tuple

import requests
from prometheus_client.parser import text_string_to_metric_families

from bot.tools.runner import Stack
from tests.stack import Api, Customer, texts


def base(stack: Stack, process: str) -> str:
    s = stack.settings
    port = {"rasa": s.rasa_port, "actions": s.action_port, "console": s.console_port}[process]
    return f"http://127.0.0.1:{port}"


def scrape(stack: Stack, process: str) -> Dict[Tuple[str, tuple], float]:
    answer = requests.get(f"{base(stack, process)}/metrics", timeout=10)
    assert answer.status_code == 200, (process, answer.status_code)
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def health(stack: Stack, process: str) -> Tuple[int, dict]:
    answer = requests.get(f"{base(stack, process)}/healthz", timeout=10)
    return answer.status_code, answer.json()


REST = (("channel", "rest"),)


def test_every_process_says_what_it_depends_on(stack: Stack) -> None:
    assert health(stack, "rasa") == (
        200,
        {
            "status": "ok",
            "depends_on": {
                "model": "up",
                "tracker_store": "up",
                "lock_store": "up",
                "database": "up",
                "action_server": "up",
            },
        },
    )
    assert health(stack, "actions") == (200, {"status": "ok", "depends_on": {"database": "up"}})
    assert health(stack, "console") == (
        200,
        {"status": "ok", "depends_on": {"database": "up", "rasa": "up"}},
    )


def test_messages_fallbacks_and_tickets_move_the_counters(
    stack: Stack, customer: Customer, api: Api
) -> None:
    rasa, actions, console = (scrape(stack, p) for p in ("rasa", "actions", "console"))
    assert console[("intake_database_up", ())] == 1
    customer.say("你好")
    assert "没太明白" in texts(customer.say("asdfghjkl")), customer.transcript
    customer.say("我要提个建议，希望营业厅周末也开门")
    after = scrape(stack, "rasa")
    assert after[("intake_messages_total", REST)] >= rasa[("intake_messages_total", REST)] + 3
    assert (
        after[("intake_reply_seconds_count", REST)]
        >= rasa[("intake_reply_seconds_count", REST)] + 3
    )
    fallbacks = scrape(stack, "actions")[("intake_fallbacks_total", ())]
    assert fallbacks >= actions[("intake_fallbacks_total", ())] + 1
    metrics_text = requests.get(f"{base(stack, 'console')}/metrics", timeout=10).text
    assert customer.sender not in metrics_text


def test_a_stopped_action_server_shows_in_rasa_healthz_and_the_apology_counter(
    stack: Stack, customer: Customer
) -> None:
    before = scrape(stack, "rasa")[("intake_busy_replies_total", REST)]
    stack.stop_process("actions")
    try:
        status, body = health(stack, "rasa")
        assert status == 200 and body["status"] == "degraded", body
        assert body["depends_on"]["action_server"] == "down"
        assert "系统有点忙" in texts(customer.say("我要报修")), customer.transcript
        assert scrape(stack, "rasa")[("intake_busy_replies_total", REST)] == before + 1
    finally:
        stack.restart_process("actions")
        stack.wait_ready()
