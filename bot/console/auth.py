"""Console sign-in: sessions, CSRF, roles, throttling (accounts themselves: bot/core/staff.py).

* The session is Starlette's `SessionMiddleware` (an itsdangerous-signed cookie, `Secure`
  unless CONSOLE_HTTPS_ONLY=0 is set for local HTTP) keyed by CONSOLE_SECRET_KEY, else a key
  created once under var/. It holds the user id, the account's session version and when it
  was issued: it ends after `console.session_hours` whatever the activity, and at once when
  the user signs out, changes the password or is disabled (the version changes).
* Sign-in is throttled per address (`console.attempts_per_ip_per_15_minutes`) and per account
  (a lockout after `console.failures_before_lockout` wrong passwords, lifted by time, by
  `python -m bot users unlock NAME` or by a supervisor). argon2 runs in a worker thread.
* Every session gets a random CSRF token; every POST from a console page must send it back
  (form field `csrf_token` or header `X-CSRF-Token`).
* `require_role("agent", ...)` is the dependency of every console route: no session →
  401 (pages redirect to the sign-in form), wrong role → 403. `admin` passes every check.
"""

from __future__ import annotations

import secrets
import time
from typing import Callable, Tuple
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from bot.core.db import session_scope
from bot.core.settings import Settings
from bot.core.staff import (
    ROLES,
    ConsoleUser,
    Principal,
    SignIn,
    authenticate,
    current_principal,
    end_sessions,
    list_agents,
    unlock,
)
from bot.core.stores import shared_store

__all__ = ["ROLES", "ConsoleUser", "Principal", "list_agents", "require_role"]

SESSION_USER = "user_id"
SESSION_VERSION = "version"
SESSION_ISSUED = "issued"
SESSION_CSRF = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class NotSignedIn(Exception):
    """No valid session: pages redirect to /login, JSON calls get 401."""


# ---------------------------------------------------------------- sessions and CSRF


def secret_key(settings: Settings) -> str:
    """The session-signing key: CONSOLE_SECRET_KEY, else var/console_secret."""
    return settings.console_session_key()


SESSION_MAX_AGE_S = 24 * 3600  # the cookie's own limit; the session ends earlier (session_hours)


def csrf_token(request: Request) -> str:
    """This session's CSRF token (created on first use)."""
    token = request.session.get(SESSION_CSRF)
    if not token:
        token = request.session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


async def check_csrf(request: Request) -> None:
    """403 unless an unsafe request carries this session's CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = request.session.get(SESSION_CSRF, "")
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        given = str((await request.form()).get(CSRF_FIELD, ""))
    if not expected or not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status_code=403, detail="CSRF 校验失败，请刷新页面后重试")


def current_user(request: Request) -> Principal:
    """The signed-in, still active user of an unexpired session; NotSignedIn otherwise."""
    settings: Settings = request.app.state.settings
    user_id, version = request.session.get(SESSION_USER), request.session.get(SESSION_VERSION)
    issued = request.session.get(SESSION_ISSUED)
    if (
        not isinstance(user_id, int)
        or not isinstance(version, int)
        or not isinstance(issued, (int, float))
    ):
        raise NotSignedIn()
    if time.time() - issued > settings.service.console.session_hours * 3600:
        request.session.clear()
        raise NotSignedIn()
    with session_scope(settings.database_url) as session:
        principal = current_principal(session, user_id, version)
    if principal is None:
        request.session.clear()
        raise NotSignedIn()
    return principal


def require_role(*roles: str) -> Callable[..., Principal]:
    """Dependency: the signed-in user if they have one of `roles` (admin always), else 403."""

    async def dependency(request: Request) -> Principal:
        user = current_user(request)
        if not user.has_role(*roles):
            raise HTTPException(status_code=403, detail="没有权限访问此页面")
        await check_csrf(request)
        return user

    dependency.roles = roles  # type: ignore[attr-defined]  # read by the route-walk test
    return dependency


def home_of(user: Principal) -> str:
    """Where a user lands after signing in."""
    if user.role == "supervisor":
        return "/console/supervisor"
    if user.role == "trainer":
        return "/console/trainer"
    return "/console/queue"


def not_signed_in_response(request: Request) -> Response:
    """Pages redirect to the sign-in form; JSON calls get 401."""
    if request.url.path.startswith("/console/api/") or "text/html" not in request.headers.get(
        "accept", ""
    ):
        return Response('{"detail":"请先登录"}', status_code=401, media_type="application/json")
    target = quote(request.url.path, safe="/")
    return RedirectResponse(f"/login?next={target}", status_code=303)


# ---------------------------------------------------------------- sign-in pages

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    return target if target.startswith("/console/") and "//" not in target else ""


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "") -> HTMLResponse:
    from bot.console.templating import render

    return render(request, "login.html", {"next": _safe_next(next), "error": None})


def _client_address(request: Request) -> str:
    """The address a trusted proxy reports, else the peer's."""
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for", "")
    trusted = request.app.state.settings.service.limits.trusted_proxies
    if peer in trusted and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        return next((h for h in reversed(hops) if h not in trusted), peer)
    return peer


def _sign_in(settings: Settings, username: str, password: str) -> SignIn:
    with session_scope(settings.database_url) as session:
        return authenticate(session, username, password)


@router.post("/login")
async def login(
    request: Request,
    username: str = Form(..., max_length=64),
    password: str = Form(..., max_length=256),
    next: str = Form("", max_length=512),
    _: None = Depends(check_csrf),
) -> Response:
    """Sign in; a new session (new CSRF token) on success."""
    from bot.console.templating import render

    settings: Settings = request.app.state.settings

    def refused(error: str, status: int) -> Response:
        return render(
            request, "login.html", {"next": _safe_next(next), "error": error}, status_code=status
        )

    limit = settings.service.console.attempts_per_ip_per_15_minutes
    if (
        settings.rate_limits_on
        and shared_store().hit(f"login:{_client_address(request)}", 900) > limit
    ):
        return refused("登录尝试过于频繁，请15分钟后再试", 429)
    result = await run_in_threadpool(_sign_in, settings, username.strip(), password)
    if result.principal is None:
        if result.locked:
            return refused("密码错误次数过多，账号已暂时锁定，请稍后再试或联系班长解锁", 423)
        return refused("用户名或密码错误", 401)
    user = result.principal
    request.session.clear()
    request.session.update(
        {
            SESSION_USER: user.id,
            SESSION_VERSION: user.session_version,
            SESSION_ISSUED: int(time.time()),
        }
    )
    csrf_token(request)
    return RedirectResponse(_safe_next(next) or home_of(user), status_code=303)


@router.post("/logout")
async def logout(request: Request, _: None = Depends(check_csrf)) -> Response:
    """Sign out — of every session of this account (another browser, a lost phone)."""
    user_id = request.session.get(SESSION_USER)
    if isinstance(user_id, int):
        with session_scope(request.app.state.settings.database_url) as session:
            end_sessions(session, user_id)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.post("/console/users/{username}/unlock")
async def unlock_user(
    username: str, request: Request, _: Principal = Depends(require_role("supervisor"))
) -> Response:
    """A supervisor lifts a lockout (JSON, CSRF header)."""
    try:
        with session_scope(request.app.state.settings.database_url) as session:
            unlock(session, username)
    except ValueError:
        raise HTTPException(status_code=404, detail="没有这个用户") from None
    return JSONResponse({"username": username, "locked": False})


def login_redirect_pair() -> Tuple[type, Callable[[Request, Exception], Response]]:
    """(exception class, handler) to register on the app."""
    return NotSignedIn, lambda request, exc: not_signed_in_response(request)
