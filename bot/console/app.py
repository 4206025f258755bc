"""The console web app: ``GET /healthz`` and the JSON API under /api/v1.

Run it with ``python -m bot.console`` (migrates, then serves on BIND_HOST:CONSOLE_PORT), or
``uvicorn bot.console.app:app`` / ``uvicorn --factory bot.console.app:create_app``.
"""

from __future__ import annotations

import logging
from typing import Optional

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from bot.config import Settings, load_settings
from bot.console.api import router as api_router
from bot.console.webchat import router as webchat_router
from bot.db import ping

logger = logging.getLogger(__name__)


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    """A console app bound to `settings` (default: from the environment)."""
    app = FastAPI(title="供电业务受理助手 console", version="1")
    app.state.settings = settings or load_settings()

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """200 once the database answers, 503 otherwise."""
        try:
            ping(app.state.settings.database_url)
        except Exception as error:  # any failure means "not ready"
            logger.warning("health check failed: %s", error)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    app.include_router(api_router)
    app.include_router(webchat_router)
    return app


app = create_app()
