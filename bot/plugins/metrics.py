"""`GET /metrics` and `GET /healthz` of the Rasa server, as a Rasa input channel.

Registered in credentials.yml (`bot.plugins.metrics.MetricsInput:`), the way Rasa 3.6 adds
routes to its server: a channel's blueprint. Its URL prefix is `/`, so the routes are
`/metrics` and `/healthz` — outside `/webhooks/`, and not passed by the nginx door
(deploy/nginx): internal, like Rasa's own API, and without a token (no personal data in
either; see README "Operations: metrics, health, faults").

* `/metrics`: this process's counters (bot/core/metrics.py): messages and reply latency per
  channel, failed turns, apologies sent, plus process CPU/memory.
* `/healthz`: `{"status", "depends_on": {...}}` — the model loaded, the tracker store and the
  lock store (required: 503 when one is down; Rasa would otherwise quietly fall back to an
  in-memory tracker store), the application database, the action server and the shared
  Redis store when one is configured (optional: "degraded", still 200).
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, List, Optional, Text
from urllib.parse import urlsplit, urlunsplit

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.core import metrics

CHANNEL_NAME = "metrics"


def _innermost(store: Any) -> Any:
    """The store inside Rasa's wrappers (FailSafeTrackerStore, AwaitableTrackerStore)."""
    seen = 0
    while getattr(store, "_tracker_store", None) is not None and seen < 5:
        store = store._tracker_store
        seen += 1
    return store


def store_check(store: Any) -> Callable[[], None]:
    """A check of a Rasa tracker or lock store: SQL answers `SELECT 1`, Redis a PING; a store
    in this process's memory is up while the process is."""

    def check() -> None:
        inner = _innermost(store)
        engine = getattr(inner, "engine", None)
        if engine is not None:
            from sqlalchemy import text

            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return
        red = getattr(inner, "red", None)
        if red is not None:
            red.ping()
            return
        if inner is None:
            raise RuntimeError("no store")

    return check


def action_health_url(endpoint: Any) -> Optional[str]:
    """The action server's `/health`, from Rasa's action endpoint (`…/webhook?token=…`)."""
    url = getattr(endpoint, "url", None)
    if not url:
        return None
    parts = urlsplit(url)
    path = parts.path.rsplit("/", 1)[0] + "/health"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def dependencies(agent: Any) -> List[metrics.Dependency]:
    """What this Rasa server depends on, from its agent."""

    def model() -> None:
        if agent is None or not agent.is_ready():
            raise RuntimeError("no model loaded")

    found = [metrics.Dependency("model", model)]
    if agent is not None:
        found.append(metrics.Dependency("tracker_store", store_check(agent.tracker_store)))
        found.append(metrics.Dependency("lock_store", store_check(agent.lock_store)))
    found.append(metrics.database_dependency(required=False))
    action_url = action_health_url(getattr(agent, "action_endpoint", None))
    if action_url:
        found.append(metrics.http_dependency("action_server", action_url, required=False))
    shared = metrics.shared_store_dependency(required=False)
    if shared is not None:
        found.append(shared)
    return found


class MetricsInput(InputChannel):
    """Not a conversation channel: the Rasa server's `/metrics` and `/healthz`."""

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    def url_prefix(self) -> Text:
        return "/"  # Rasa joins it to "/webhooks/": the routes are at the server's root

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = Blueprint("intake_metrics", __name__)

        @blueprint.route("/metrics", methods=["GET"])
        async def scrape(_: Request) -> HTTPResponse:
            body, content_type = metrics.exposition()
            return response.raw(body, content_type=content_type)

        @blueprint.route("/healthz", methods=["GET"])
        async def healthz(request: Request) -> HTTPResponse:
            agent = getattr(request.app.ctx, "agent", None)
            status, body = await asyncio.to_thread(metrics.health, dependencies(agent))
            return response.json(body, status=status)

        return blueprint
