"""Console sign-in: users with argon2-hashed passwords, signed session cookies, CSRF, roles.

* Users live in the `console_users` table (`python -m bot users add NAME --role agent`).
* Passwords are hashed with passlib's argon2 scheme; the session is Starlette's
  `SessionMiddleware` (an itsdangerous-signed cookie) keyed by CONSOLE_SECRET_KEY, else a key
  created once under var/.
* Every session gets a random CSRF token; every POST from a console page must send it back
  (form field `csrf_token` or header `X-CSRF-Token`).
* `require_role("agent", ...)` is the dependency of every console route: no session →
  401 (pages redirect to the sign-in form), wrong role → 403. `admin` passes every check.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable, Optional, Tuple
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from passlib.context import CryptContext
from sqlalchemy import Boolean, CheckConstraint, Column, DateTime, Integer, String, select
from sqlalchemy.orm import Session

from bot.core.clock import to_utc_naive, utc_now
from bot.core.db import Base, session_scope, sql_in
from bot.core.settings import Settings

ROLES = ("agent", "supervisor", "trainer", "admin")
ROLE_NAMES = {"agent": "坐席", "supervisor": "班长", "trainer": "训练师", "admin": "管理员"}
SESSION_USER = "user_id"
SESSION_CSRF = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE_S = 12 * 3600  # one working shift

passwords = CryptContext(schemes=["argon2"], deprecated="auto")


class ConsoleUser(Base):
    """A person who signs in to the console."""

    __tablename__ = "console_users"
    __table_args__ = (CheckConstraint(sql_in("role", ROLES), name="role"),)

    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(64), nullable=False)
    role = Column(String(16), nullable=False)
    password_hash = Column(String(255), nullable=False)
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime, nullable=False)


@dataclass(frozen=True)
class Principal:
    """The signed-in user as the routes see it."""

    id: int
    username: str
    display_name: str
    role: str

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, self.role)

    def has_role(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


class NotSignedIn(Exception):
    """No valid session: pages redirect to /login, JSON calls get 401."""


# ---------------------------------------------------------------- users


def add_user(
    session: Session, username: str, password: str, role: str, display_name: Optional[str] = None
) -> ConsoleUser:
    """Create a user (or reset an existing one's password, role and name)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    user = session.execute(
        select(ConsoleUser).where(ConsoleUser.username == username)
    ).scalar_one_or_none()
    if user is None:
        user = ConsoleUser(username=username, created_at=to_utc_naive(utc_now()))
        session.add(user)
    user.display_name = display_name or user.display_name or username
    user.role, user.active = role, True
    user.password_hash = passwords.hash(password)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> Optional[Principal]:
    """The user when the password matches (always spends one hash, to not leak names)."""
    user = session.execute(
        select(ConsoleUser).where(ConsoleUser.username == username, ConsoleUser.active.is_(True))
    ).scalar_one_or_none()
    if user is None:
        passwords.dummy_verify()
        return None
    valid, new_hash = passwords.verify_and_update(password, user.password_hash)
    if not valid:
        return None
    if new_hash:
        user.password_hash = new_hash
    return _principal(user)


def _principal(user: ConsoleUser) -> Principal:
    return Principal(user.id, user.username, user.display_name, user.role)


def list_agents(session: Session) -> list:
    """Active users who can take conversations (for transfers)."""
    return list(
        session.execute(
            select(ConsoleUser)
            .where(
                ConsoleUser.active.is_(True), ConsoleUser.role.in_(("agent", "supervisor", "admin"))
            )
            .order_by(ConsoleUser.username)
        ).scalars()
    )


# ---------------------------------------------------------------- sessions and CSRF


def secret_key(settings: Settings) -> str:
    """The session-signing key: CONSOLE_SECRET_KEY, else var/console_secret."""
    return settings.console_session_key()


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
    """The signed-in, still active user; NotSignedIn otherwise."""
    user_id = request.session.get(SESSION_USER)
    if not isinstance(user_id, int):
        raise NotSignedIn()
    with session_scope(request.app.state.settings.database_url) as session:
        user = session.get(ConsoleUser, user_id)
        if user is None or not user.active:
            request.session.clear()
            raise NotSignedIn()
        return _principal(user)


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


@router.post("/login")
async def login(
    request: Request,
    username: str = Form(...),
    password: str = Form(...),
    next: str = Form(""),
    _: None = Depends(check_csrf),
) -> Response:
    """Sign in; a new session (new CSRF token) on success."""
    from bot.console.templating import render

    with session_scope(request.app.state.settings.database_url) as session:
        user = authenticate(session, username.strip(), password)
    if user is None:
        return render(
            request,
            "login.html",
            {"next": _safe_next(next), "error": "用户名或密码错误"},
            status_code=401,
        )
    request.session.clear()
    request.session[SESSION_USER] = user.id
    csrf_token(request)
    return RedirectResponse(_safe_next(next) or home_of(user), status_code=303)


@router.post("/logout")
async def logout(request: Request, _: None = Depends(check_csrf)) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def login_redirect_pair() -> Tuple[type, Callable[[Request, Exception], Response]]:
    """(exception class, handler) to register on the app."""
    return NotSignedIn, lambda request, exc: not_signed_in_response(request)
