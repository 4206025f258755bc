"""The console web app: ``GET /healthz``, the JSON API under /api/v1, the web chat, and the
staff console under /console (sign-in at /login; agents, supervisors, trainers, admins).

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
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from bot.console import agent, auth, supervisor, tickets_views, trainer_views
from bot.console.api import router as api_router
from bot.console.sweeper import background_tasks
from bot.console.webchat import router as webchat_router
from bot.core.db import ping
from bot.core.settings import Settings, get_settings

logger = logging.getLogger(__name__)
CONSOLE_STATIC = Path(__file__).resolve().parent / "static" / "console"


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
    app.include_router(agent.api_router)
    app.include_router(webchat_router)
    app.include_router(auth.router)
    app.include_router(agent.router)
    app.include_router(tickets_views.router)
    app.include_router(supervisor.router)
    app.include_router(trainer_views.router)
    app.mount("/console/static", StaticFiles(directory=str(CONSOLE_STATIC)), name="console-static")
    return app
