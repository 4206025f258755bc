"""Operational metrics (Prometheus, `prometheus_client`) and the health report of a process.

Each of the three processes serves `GET /metrics` and `GET /healthz` (Rasa server:
bot/plugins/metrics.py; action server: actions/server.py; console: bot/console/app.py).

Two kinds of figures, chosen by where the truth is:

* **Counted in the process where it happens** — one `REGISTRY` per process, no shared state:
  customer messages and reply latency per channel, turns that failed and apologies sent
  (Rasa server); fallbacks and action errors (action server). Prometheus scrapes each process
  and `sum()` adds them up; a restart resets a counter, which `rate()`/`increase()` expect.
* **Read from the database at scrape time** (`DatabaseCollector`, console only): tickets by
  category, hand-overs by reason, the agents' queue, notices by outcome, due and retrying.
  Those rows are written by several processes (action server, console) and never deleted
  (the retention purge only blanks personal fields), so counts are right across processes
  and restarts without any cross-process counter; scraped once, from the console, so they
  are not duplicated.

Labels are operational only — channel, action, category, reason, state — from short fixed
sets: never a phone number, name, sender id or free text.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Sequence, Tuple

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.core.clock import to_utc_naive, utc_now

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
CHANNELS = ("rest", "webchat", "telegram", "wechat")
OTHER = "other"
# Seconds from a customer's message to the end of the assistant's answer. WeChat answers
# passively within its 5 s (reply budget 4.5 s), so the buckets are dense around there.
REPLY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 10.0, 15.0, 30.0, 60.0)
_ACTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

MESSAGES = Counter(
    "intake_messages",
    "Customer messages handed to the assistant (Rasa server), by channel.",
    ["channel"],
    registry=REGISTRY,
)
REPLY_SECONDS = Histogram(
    "intake_reply_seconds",
    "Seconds from a customer's message to the assistant's complete answer, by channel.",
    ["channel"],
    buckets=REPLY_BUCKETS,
    registry=REGISTRY,
)
TURN_ERRORS = Counter(
    "intake_turn_errors",
    "Customer messages whose handling raised in the Rasa server, by channel.",
    ["channel"],
    registry=REGISTRY,
)
BUSY_REPLIES = Counter(
    "intake_busy_replies",
    "Turns without any reply that the customer got the '系统有点忙' apology for, by channel "
    "(the action server down or failing, a timeout).",
    ["channel"],
    registry=REGISTRY,
)
FALLBACKS = Counter(
    "intake_fallbacks",
    "Messages the assistant did not understand (action_fallback said so; action server).",
    registry=REGISTRY,
)
ACTION_ERRORS = Counter(
    "intake_action_errors",
    "Custom actions that raised (the customer got the apology instead), by action.",
    ["action"],
    registry=REGISTRY,
)
for _channel in CHANNELS:  # every series exists from the start, at 0, for increase() alerts
    MESSAGES.labels(_channel)
    REPLY_SECONDS.labels(_channel)
    TURN_ERRORS.labels(_channel)
    BUSY_REPLIES.labels(_channel)


# --------------------------------------------------------------------------- counting


def channel_label(channel: Optional[str]) -> str:
    """A channel name as a label: one of `CHANNELS`, else "other" (bounded cardinality)."""
    return channel if channel in CHANNELS else OTHER


def action_label(action: Optional[str]) -> str:
    """An action name as a label: a domain-style name, else "unknown"."""
    return action if isinstance(action, str) and _ACTION_NAME.fullmatch(action) else "unknown"


@contextlib.contextmanager
def measured_turn(channel: str) -> Iterator[None]:
    """Count one customer message of `channel` and time the block (the whole turn, until the
    answer is complete); an exception leaving the block is counted as a failed turn."""
    label = channel_label(channel)
    MESSAGES.labels(label).inc()
    started = time.perf_counter()
    try:
        yield
    except Exception:
        TURN_ERRORS.labels(label).inc()
        raise
    finally:
        REPLY_SECONDS.labels(label).observe(time.perf_counter() - started)


def count_turn_error(channel: str) -> None:
    """A customer message whose handling raised (the channel logged it and apologised)."""
    TURN_ERRORS.labels(channel_label(channel)).inc()


def count_busy_reply(channel: Optional[str]) -> None:
    """The customer got the apology because the turn produced no reply."""
    BUSY_REPLIES.labels(channel_label(channel)).inc()


def count_fallback() -> None:
    """The assistant told the customer it did not understand."""
    FALLBACKS.inc()


def count_action_error(action: Optional[str]) -> None:
    """A custom action raised."""
    ACTION_ERRORS.labels(action_label(action)).inc()


# --------------------------------------------------------------------------- from the database


class DatabaseCollector(Collector):
    """Figures read from the application database at each scrape.

    A database that does not answer gives `intake_database_up 0` and none of the others,
    never a failed scrape."""

    def __init__(
        self, database_url: Optional[str] = None, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.database_url = database_url
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "intake_database_up", "1 when the application database answered this scrape."
        )
        try:
            families = list(self._families())
        except Exception as error:
            logger.warning("metrics: the database did not answer: %s", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        from sqlalchemy import func, select

        from bot.core.db import session_scope
        from bot.core.handoff.models import OPEN_STATUSES, REASONS, Handoff
        from bot.core.notifications.models import Notification
        from bot.core.tickets.models import Ticket

        now = to_utc_naive(self.clock())
        with session_scope(self.database_url) as session:

            def grouped(column: Any, *where: Any) -> Dict[str, int]:
                query = select(column, func.count()).group_by(column)
                if where:
                    query = query.where(*where)
                return {str(key): int(count) for key, count in session.execute(query)}

            def count(*where: Any) -> int:
                return int(
                    session.execute(
                        select(func.count()).select_from(Notification).where(*where)
                    ).scalar_one()
                )

            tickets = grouped(Ticket.category)
            reasons = grouped(Handoff.reason)
            open_handoffs = grouped(Handoff.status, Handoff.status.in_(OPEN_STATUSES))
            oldest = session.execute(
                select(func.min(Handoff.created_at)).where(Handoff.status == "waiting")
            ).scalar_one()
            notices = grouped(Notification.state)
            due = count(Notification.state == "pending", Notification.next_attempt_at <= now)
            retrying = count(Notification.state == "pending", Notification.attempts > 0)

        yield _counter(
            "intake_tickets",
            "Tickets filed (all channels and processes), by category.",
            "category",
            tickets,
        )
        yield _counter(
            "intake_handoffs",
            "Conversations handed over to a person, by reason.",
            "reason",
            {reason: reasons.get(reason, 0) for reason in REASONS} | reasons,
        )
        yield _gauge(
            "intake_handoffs_open",
            "Hand-overs now open: waiting is the agents' queue length, active being served.",
            "status",
            {status: open_handoffs.get(status, 0) for status in OPEN_STATUSES},
        )
        waited = GaugeMetricFamily(
            "intake_handoff_oldest_wait_seconds",
            "Seconds the longest-waiting customer in the agents' queue has waited (0: none).",
        )
        waited.add_metric([], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
        yield waited
        yield _counter(
            "intake_notices",
            "Notices to customers by final outcome: sent, failed (retries used up, call the "
            "customer), superseded (replaced by a newer one before it went out).",
            "outcome",
            {state: notices.get(state, 0) for state in ("sent", "failed", "superseded")},
        )
        yield _single("intake_notices_due", "Pending notices whose time to be sent has come.", due)
        yield _single(
            "intake_notices_retrying",
            "Pending notices that have failed at least once and wait for their next try.",
            retrying,
        )
        yield _single("intake_notices_pending", "Notices not yet sent.", notices.get("pending", 0))


def _counter(name: str, documentation: str, label: str, values: Dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _gauge(name: str, documentation: str, label: str, values: Dict[str, int]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _single(name: str, documentation: str, value: float) -> Metric:
    return GaugeMetricFamily(name, documentation, value=value)


def exposition(extra: Iterable[Collector] = ()) -> Tuple[bytes, str]:
    """This process's metrics in Prometheus' text format (plus `extra` collectors), and the
    content type to serve them with."""
    body = generate_latest(REGISTRY)
    collectors = list(extra)
    if collectors:
        scrape = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            scrape.register(collector)
        body += generate_latest(scrape)
    return body, CONTENT_TYPE


# --------------------------------------------------------------------------- health

HEALTH_TIMEOUT_S = 3.0
UP, DOWN = "up", "down"


@dataclass(frozen=True)
class Dependency:
    """Something a process needs: `check` raises (or takes too long) when it is down.

    A required dependency down makes the process unavailable (503); an optional one makes
    it degraded (200: restarting this process would not help)."""

    name: str
    check: Callable[[], Any]
    required: bool = True


def health(
    dependencies: Sequence[Dependency], timeout_s: float = HEALTH_TIMEOUT_S
) -> Tuple[int, Dict[str, Any]]:
    """Check every dependency at once (at most `timeout_s` in all): the HTTP status and
    `{"status": ok|degraded|unavailable, "depends_on": {name: up|down}}`."""
    states: Dict[str, str] = {}
    if dependencies:
        pool = ThreadPoolExecutor(max_workers=len(dependencies), thread_name_prefix="healthz")
        futures = {pool.submit(dependency.check): dependency for dependency in dependencies}
        wait_for(futures, timeout=timeout_s)
        pool.shutdown(wait=False)  # a check that hangs is left to finish on its own
        for future, dependency in futures.items():
            failed = not future.done() or future.exception() is not None
            if failed:
                error = future.exception() if future.done() else TimeoutError()
                logger.warning("health: %s is down (%s)", dependency.name, type(error).__name__)
            states[dependency.name] = DOWN if failed else UP
    required_down = any(states[d.name] == DOWN for d in dependencies if d.required)
    if required_down:
        return 503, {"status": "unavailable", "depends_on": states}
    status = "degraded" if DOWN in states.values() else "ok"
    return 200, {"status": status, "depends_on": states}


def database_dependency(database_url: Optional[str] = None, required: bool = True) -> Dependency:
    """The application database answers `SELECT 1`."""
    from bot.core.db import ping

    return Dependency("database", lambda: ping(database_url), required)


def http_dependency(
    name: str, url: str, required: bool = True, timeout_s: float = 2.0
) -> Dependency:
    """An HTTP service answers `url` with a status below 500."""

    def check() -> None:
        import requests

        answer = requests.get(url, timeout=timeout_s)
        if answer.status_code >= 500:
            raise RuntimeError(f"HTTP {answer.status_code}")

    return Dependency(name, check, required)


def shared_store_dependency(required: bool = True) -> Optional[Dependency]:
    """Redis of the shared stores, when INTAKE_REDIS_URL sets one (memory is always up)."""
    from bot.core.settings import get_settings
    from bot.core.stores import shared_store

    if not get_settings().redis_url:
        return None
    return Dependency("shared_store", lambda: shared_store().get("healthz"), required)
