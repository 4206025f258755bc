"""Share of WeChat answers delivered passively (within WeChat's 5 s) vs through the
customer-service API, under N concurrent customers (default 20).

Starts the real stack on free ports with the WeChat channel on in safe mode, its API pointed
at a fake on 127.0.0.1 (`tests.fakes.wechat_simulator`). Each simulated customer runs
fault-repair conversations (address → phone → description → 「回复 1」 to confirm) with
encrypted pushes, as WeChat would: a try is abandoned after 5 s and retried (three tries);
on "success" the customer waits for the customer-service message before going on. Every request goes to 127.0.0.1 only; the run is bounded by --seconds.

    python -m bench.wechat_passive --model models/intake.tar.gz [--customers 20] [--seconds 60]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import List, Optional

import requests

from bench.stack import percentile, throwaway_stack
from tests.fakes.wechat_simulator import FakeWeChatApi, WeChatPushes

CONVERSATION = ("家里停电了，龙湖区长平路88号3栋502", "13812345678", "电线被风刮断了", "1")
WECHAT_TIMEOUT_S = 5.0
msg_ids = itertools.count(int(time.time()) * 1_000_000)
next_id = threading.Lock()


@dataclass
class Tally:
    passive_ms: List[float] = field(default_factory=list)  # reply within 5 s, by try
    passive_try: List[int] = field(default_factory=list)
    async_ms: List[float] = field(
        default_factory=list
    )  # until the customer-service message arrived
    lost: int = 0  # three tries without an answer, or "success" and no message within 30 s
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _msg_id() -> int:
    with next_id:
        return next(msg_ids)


def deliver(
    session: requests.Session,
    url: str,
    pushes: WeChatPushes,
    api: FakeWeChatApi,
    openid: str,
    text: str,
    tally: Tally,
) -> bool:
    """One message as WeChat sends it: up to three tries, each abandoned after 5 s."""
    xml = pushes.text(openid, text, _msg_id())
    already = len(api.messages_to(openid))
    started = time.monotonic()
    for attempt in (1, 2, 3):
        query, body = pushes.push(xml)
        try:
            response = session.post(url, params=query, data=body, timeout=WECHAT_TIMEOUT_S)
        except requests.Timeout:
            continue
        except requests.RequestException:
            break
        if response.status_code != 200:
            break
        if response.text != "success":
            with tally.lock:
                tally.passive_ms.append((time.monotonic() - started) * 1000)
                tally.passive_try.append(attempt)
            return True
        arrived = api.wait_for(openid, already + 1, timeout=30)
        with tally.lock:
            if len(arrived) > already:
                tally.async_ms.append((time.monotonic() - started) * 1000)
                return True
            tally.lost += 1
            return False
    else:
        with tally.lock:
            tally.lost += 1
        return False
    with tally.lock:
        tally.errors += 1
    return False


def customer(
    url: str, pushes: WeChatPushes, api: FakeWeChatApi, deadline: float, tally: Tally
) -> None:
    """Full conversations until the deadline, one message at a time, as a person would."""
    with requests.Session() as session:
        while time.monotonic() < deadline:
            openid = f"oBench{uuid.uuid4().hex[:12]}"
            for text in CONVERSATION:
                if not deliver(session, url, pushes, api, openid, text, tally):
                    break


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/intake.tar.gz")
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args(argv)

    api = FakeWeChatApi().start()
    pushes = WeChatPushes(
        "bench-token", "wxbench00000000000", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    )
    wechat_env = {
        "WECHAT_TOKEN": pushes.token,
        "WECHAT_APP_ID": pushes.app_id,
        "WECHAT_APP_SECRET": "bench-secret",
        "WECHAT_ENCODING_AES_KEY": pushes.encoding_aes_key,
        "WECHAT_API_BASE_URL": api.base_url,
    }
    try:
        with throwaway_stack(args.model, "bench-wechat-", wechat_env, seed=True) as stack:
            url = f"http://127.0.0.1:{stack.settings.rasa_port}/webhooks/wechat/webhook"
            customer(url, pushes, api, time.monotonic() + 1, Tally())  # warm-up, not counted
            tally = Tally()
            deadline = time.monotonic() + args.seconds
            started = time.monotonic()
            threads = [
                threading.Thread(target=customer, args=(url, pushes, api, deadline, tally))
                for _ in range(args.customers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
    finally:
        api.stop()

    answered = len(tally.passive_ms) + len(tally.async_ms)
    total = answered + tally.lost
    print(
        f"{args.customers} concurrent WeChat customers (safe mode), {elapsed:.0f} s, {total} messages "
        f"({total / elapsed:.1f}/s), {tally.errors} errors"
    )
    if not total:
        return
    first_try = sum(1 for t in tally.passive_try if t == 1)
    print(
        f"  passive (within 5 s of a try): {len(tally.passive_ms)} ({100 * len(tally.passive_ms) / total:.1f} %), "
        f"{first_try} on WeChat's first try"
        + (
            f"   p50 {statistics.median(tally.passive_ms):.0f} ms   p95 {percentile(tally.passive_ms, 95):.0f} ms"
            if tally.passive_ms
            else ""
        )
    )
    print(
        f"  via customer-service API: {len(tally.async_ms)} ({100 * len(tally.async_ms) / total:.1f} %)"
        + (
            f"   p50 {statistics.median(tally.async_ms):.0f} ms until delivered"
            if tally.async_ms
            else ""
        )
    )
    print(f"  not delivered: {tally.lost}")


if __name__ == "__main__":
    main()
