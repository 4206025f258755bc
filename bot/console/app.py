"""The console web app: ``GET /healthz`` and ``GET /metrics``, the JSON API under /api/v1, the
web chat, and the staff console under /console (sign-in at /login; agents, supervisors,
trainers, admins), with customers' photos behind signed, expiring links (/console/media/).

``/metrics`` (Prometheus) carries the figures read from the database at scrape time —
tickets, hand-overs, the agents' queue, notices (bot/core/metrics.py) — and is internal
like ``/healthz``: the nginx door does not pass it, and it holds no personal data.

Run it with ``python -m bot.console`` (migrates, then serves on BIND_HOST:CONSOLE_PORT), or
``uvicorn --factory bot.console.app:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import AsyncIterator, Optional

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request

from bot.console import agent, auth, media_views, supervisor, tickets_views, trainer_views
from bot.console.api import router as api_router
from bot.console.sweeper import background_tasks
from bot.console.webchat import router as webchat_router
from bot.core import metrics
from bot.core.catalog import load_catalog
from bot.core.settings import Settings, get_settings

logger = logging.getLogger(__name__)
CONSOLE_STATIC = Path(__file__).resolve().parent / "static" / "console"


async def _database_unavailable(request: Request, error: Exception) -> JSONResponse:
    """The database refused (a full disk, a restart): a clear 503, never a bare 500."""
    logger.error("database unavailable for %s: %s", request.url.path, type(error).__name__)
    message = load_catalog().staff_messages["database_unavailable"]
    return JSONResponse({"detail": message}, status_code=503)


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    """A console app bound to `settings` (default: from the environment)."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(loop) for loop in background_tasks(settings)]
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # No public API documentation: /api/v1/openapi.json is served to bearer-token holders.
    app = FastAPI(
        title="供电业务受理助手 console",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.add_middleware(
        SessionMiddleware,
        secret_key=auth.secret_key(settings),
        session_cookie="console_session",
        max_age=auth.SESSION_MAX_AGE_S,
        same_site="strict",
        https_only=settings.console_https_only,
    )
    app.add_exception_handler(*auth.login_redirect_pair())
    app.add_exception_handler(OperationalError, _database_unavailable)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """503 while the database does not answer; "degraded" (200) while Rasa does not —
        the queue and the tickets still work, agents' replies and notices wait."""
        current: Settings = app.state.settings
        dependencies = [
            metrics.database_dependency(current.database_url),
            metrics.http_dependency("rasa", f"{current.rasa_url}/", required=False),
        ]
        status, body = metrics.health(dependencies)
        return JSONResponse(body, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    def scrape() -> Response:
        """Prometheus text: this process's figures and the database's (tickets, queue…)."""
        collector = metrics.DatabaseCollector(app.state.settings.database_url)
        body, content_type = metrics.exposition([collector])
        return Response(body, media_type=content_type)

    app.include_router(api_router)
    app.include_router(agent.api_router)
    app.include_router(webchat_router)
    app.include_router(auth.router)
    app.include_router(agent.router)
    app.include_router(tickets_views.router)
    app.include_router(media_views.router)
    app.include_router(supervisor.router)
    app.include_router(trainer_views.router)
    app.mount("/console/static", StaticFiles(directory=str(CONSOLE_STATIC)), name="console-static")
    return app
