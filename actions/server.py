"""The action server: rasa-sdk's own app for the `actions` package, with three additions.

* A shared token: every call must carry `?token=` (Rasa sends it: the runner puts it in the
  action endpoint URL). The token is ACTION_SERVER_TOKEN, else one created once under var/.
* Errors do not echo the request: rasa-sdk's default 500 answer contains the whole tracker
  (phones, addresses); here it is a short message, and the log names the action only.
* It binds 127.0.0.1 unless ACTION_BIND_HOST says otherwise (only Rasa calls it).

    python -m actions.server --port 5055
"""

from __future__ import annotations

import argparse
import logging
import secrets
from typing import Any, List, Optional

from sanic import response
from sanic.request import Request

from bot.core.privacy import install_log_masking
from bot.core.settings import get_settings

logger = logging.getLogger("bot.action_server")
OPEN_PATHS = ("/health",)


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
        body = request.json if isinstance(request.json, dict) else {}
        logger.error("action %s failed", (body.get("next_action") or "?"), exc_info=exception)
        return response.json({"error": "action failed"}, status=500)

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
