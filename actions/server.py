"""The action server: rasa-sdk's own app for the `actions` package, with four additions.

* A shared token: every call must carry `?token=` (Rasa sends it: the runner puts it in the
  action endpoint URL). The token is ACTION_SERVER_TOKEN, else one created once under var/.
* Errors do not echo the request: rasa-sdk's default 500 answer contains the whole tracker
  (phones, addresses); here it is a short message, the log names the action only, and
  `intake_action_errors_total{action}` counts it (the customer gets the apology, see
  bot/plugins/channels/rest.py).
* `GET /metrics` (Prometheus: action errors, fallbacks, process figures) and `GET /healthz`
  (`{"status", "depends_on": {"database", "shared_store"?}}`, 503 when the database is down),
  without the token like `/health`: no personal data in either (README "Operations: metrics, health, faults").
* It binds 127.0.0.1 unless ACTION_BIND_HOST says otherwise (only Rasa calls it).

    python -m actions.server --port 5055
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import zlib
from typing import Any, List, Optional

from sanic import response
from sanic.exceptions import SanicException
from sanic.request import Request

from bot.core import metrics
from bot.core.privacy import install_log_masking
from bot.core.settings import get_settings

logger = logging.getLogger("bot.action_server")
OPEN_PATHS = ("/health", "/healthz", "/metrics")


def action_name(request: Request) -> Optional[str]:
    """`next_action` of an action call (plain or deflated JSON, as rasa-sdk accepts it)."""
    try:
        if request.headers.get("Content-Encoding") == "deflate":
            body = json.loads(zlib.decompress(request.body))
        else:
            body = request.json
    except Exception:
        return None
    name = body.get("next_action") if isinstance(body, dict) else None
    return name if isinstance(name, str) else None


def dependencies() -> List[metrics.Dependency]:
    """What the actions need: the database (tickets, hand-overs, bills), the shared store."""
    found = [metrics.database_dependency()]
    shared = metrics.shared_store_dependency()
    if shared is not None:
        found.append(shared)
    return found


def create_action_app() -> Any:
    """rasa-sdk's Sanic app with the token check and the quiet error handler."""
    from rasa_sdk.endpoint import create_app

    settings = get_settings()
    expected = settings.action_token().encode()
    app = create_app("actions", cors_origins=None)

    @app.middleware("request")
    async def require_token(request: Request) -> Optional[response.HTTPResponse]:
        if request.path in OPEN_PATHS:
            return None
        given = (request.args.get("token") or request.headers.get("X-Action-Token") or "").encode()
        if not secrets.compare_digest(given, expected):
            return response.json({"error": "forbidden"}, status=403)
        return None

    @app.exception(Exception)
    async def quiet_errors(request: Request, exception: Exception) -> response.HTTPResponse:
        status = getattr(exception, "status_code", 500) or 500
        if isinstance(exception, SanicException) and status < 500:
            return response.json(
                {"error": "not found" if status == 404 else "bad request"}, status=status
            )
        name = action_name(request)
        metrics.count_action_error(name)
        logger.error("action %s failed", metrics.action_label(name), exc_info=exception)
        return response.json({"error": "action failed"}, status=500)

    @app.get("/metrics")
    async def scrape(_: Request) -> response.HTTPResponse:
        body, content_type = metrics.exposition()
        return response.raw(body, content_type=content_type)

    @app.get("/healthz")
    async def healthz(_: Request) -> response.HTTPResponse:
        status, body = await asyncio.to_thread(metrics.health, dependencies())
        return response.json(body, status=status)

    return app


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m actions.server", description=__doc__)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s  - %(message)s"
    )
    install_log_masking()
    settings = get_settings()
    app = create_action_app()
    port = args.port or settings.action_port
    logger.info("action server on %s:%s", settings.action_bind_host, port)
    app.run(settings.action_bind_host, port, workers=1, access_log=False)


if __name__ == "__main__":
    main()
