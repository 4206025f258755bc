"""Jinja2 templates of the console pages (autoescaped; Chinese; one base layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from bot.core.clock import to_local

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATE_DIR))

# Console pages load only their own files (no CDN, no inline script).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def local_time(value: Any, fmt: str = "%m-%d %H:%M") -> str:
    """A stored naive-UTC datetime as local time text."""
    return to_local(value).strftime(fmt) if value else ""


def minutes(value: Optional[float]) -> str:
    """A duration in minutes as 「3.5 分钟」 (— when unknown)."""
    if value is None:
        return "—"
    return f"{value:.1f} 分钟" if value < 120 else f"{value / 60:.1f} 小时"


templates.env.filters["local_time"] = local_time
templates.env.filters["minutes"] = minutes


def render(
    request: Request, name: str, context: Dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """Render a page with the signed-in user and the CSRF token available."""
    from bot.console.auth import csrf_token

    full = {"request": request, "csrf_token": csrf_token(request), "user": None, **context}
    return templates.TemplateResponse(
        request, name, full, status_code=status_code, headers=PAGE_HEADERS
    )
