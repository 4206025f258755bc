"""Handover latency through the real stack (Rasa server, action server, console).

    python -m bench.handover_latency [--model models/intake.tar.gz] [--runs 50]

Per run, a new web-chat customer writes 「转人工」 and an agent answers through the JSON API:
* request → visible: from sending 「转人工」 to the handoff being listed by
  GET /api/v1/handoffs (polled every 10 ms in parallel with the request);
* reply → delivered: from the agent's POST /api/v1/handoffs/{id}/messages to the reply
  being in the customer's chat history (GET /chat/api/history, what the page polls; the page
  itself adds up to its 3 s polling interval on top).
* status → notice: from staff's PATCH /api/v1/tickets/{no} {"status": "resolved"} (a ticket
  of this customer) to the notice being in the customer's chat history.
Prints p50 / p95 / max of each (ms).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import threading
import time
from typing import List, Optional, Tuple

import requests

from bench.stack import percentile, throwaway_stack
from bot.core import intake

TOKEN = "bench-handover-token"
POLL_S = 0.01
FAULT = {"address": "龙湖区长平路88号3栋502", "phone": "13812345678", "description": "整屋停电"}


def one_run(base: str, http: requests.Session) -> Tuple[float, float, float]:
    """(request → visible, reply → delivered, status → notice delivered) of one customer, ms."""
    sender = f"web-{secrets.token_hex(10)}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    seen: List[dict] = []
    started = time.perf_counter()
    sent = threading.Thread(
        target=lambda: requests.post(
            f"{base}/chat/api/messages", json={"sender": sender, "message": "转人工"}, timeout=60
        )
    )
    sent.start()
    while not seen:
        seen = http.get(
            f"{base}/api/v1/handoffs", params={"conversation_id": sender}, headers=auth, timeout=10
        ).json()
        if not seen:
            time.sleep(POLL_S)
    visible_ms = (time.perf_counter() - started) * 1000
    sent.join()
    handoff_id = seen[0]["id"]
    http.post(
        f"{base}/api/v1/handoffs/{handoff_id}/claim",
        json={"agent": "bench"},
        headers=auth,
        timeout=10,
    ).raise_for_status()
    started = time.perf_counter()
    http.post(
        f"{base}/api/v1/handoffs/{handoff_id}/messages",
        json={"agent": "bench", "text": "您好"},
        headers=auth,
        timeout=30,
    ).raise_for_status()
    while not any(
        m.get("agent") == "bench"
        for m in http.get(f"{base}/chat/api/history", params={"sender": sender}, timeout=10).json()
    ):
        time.sleep(POLL_S)
    delivered_ms = (time.perf_counter() - started) * 1000
    http.post(
        f"{base}/api/v1/handoffs/{handoff_id}/close",
        json={"agent": "bench"},
        headers=auth,
        timeout=30,
    ).raise_for_status()
    ticket_no = intake.file_request("fault_repair", FAULT, sender, "webchat").ticket_no
    started = time.perf_counter()
    http.patch(
        f"{base}/api/v1/tickets/{ticket_no}", json={"status": "resolved"}, headers=auth, timeout=30
    ).raise_for_status()
    while not any(
        ticket_no in m["text"]
        for m in http.get(f"{base}/chat/api/history", params={"sender": sender}, timeout=10).json()
    ):
        time.sleep(POLL_S)
    notified_ms = (time.perf_counter() - started) * 1000
    return visible_ms, delivered_ms, notified_ms


def report(name: str, values: List[float]) -> None:
    print(
        f"  {name}: p50 {statistics.median(values):.0f} ms   p95 {percentile(values, 95):.0f} ms"
        f"   max {max(values):.0f} ms"
    )


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/intake.tar.gz")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args(argv)

    with throwaway_stack(args.model, "bench-handover-", {"INTAKE_API_TOKEN": TOKEN}) as stack:
        settings = stack.settings
        base = f"http://127.0.0.1:{settings.console_port}"
        http = requests.Session()
        one_run(base, http)  # warm-up (first model call, first connections)
        runs = [one_run(base, http) for _ in range(args.runs)]
        print(f"Handover latency, {args.runs} runs (one customer at a time):")
        report("request_human → handoff listed by /api/v1/handoffs", [r[0] for r in runs])
        report("agent reply → in the customer's chat history", [r[1] for r in runs])
        report("ticket status change → notice in the customer's chat history", [r[2] for r in runs])


if __name__ == "__main__":
    main()
