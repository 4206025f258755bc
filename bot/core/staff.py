"""Staff accounts of the console: argon2-hashed passwords, a password rule, lockout after failed
sign-ins, and a session version that ends every session of a user at once.

    python -m bot users add NAME --role agent      # the password from a prompt or stdin
    python -m bot users disable NAME               # signed out everywhere, cannot sign in
    python -m bot users unlock NAME                # after too many wrong passwords
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import List, Optional

from passlib.context import CryptContext
from sqlalchemy import Boolean, CheckConstraint, Column, DateTime, Integer, String, select
from sqlalchemy.orm import Session

from bot.core.clock import to_utc_naive, utc_now
from bot.core.db import Base, sql_in
from bot.core.settings import ConsoleSecurityConfig, get_settings

ROLES = ("agent", "supervisor", "trainer", "admin")
ROLE_NAMES = {"agent": "坐席", "supervisor": "班长", "trainer": "训练师", "admin": "管理员"}

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
    # Sessions carry this number; changing it (logout, new password, disable) ends them all.
    session_version = Column(Integer, nullable=False, default=1)
    failed_logins = Column(Integer, nullable=False, default=0)
    locked_until = Column(DateTime)
    last_login_at = Column(DateTime)
    # Absence (bot/core/tickets/absence.py): since when, why, and who covers (None: the queue).
    absent_since = Column(DateTime)
    absence_reason = Column(String(200))
    covered_by = Column(String(64))


@dataclass(frozen=True)
class Principal:
    """The signed-in user as the routes see it."""

    id: int
    username: str
    display_name: str
    role: str
    session_version: int = 1

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, self.role)

    def has_role(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: the user, or why not (`locked` says it is the lockout)."""

    principal: Optional[Principal]
    locked: bool = False


def _principal(user: ConsoleUser) -> Principal:
    return Principal(user.id, user.username, user.display_name, user.role, user.session_version)


def _config() -> ConsoleSecurityConfig:
    return get_settings().service.console


COMMON_PASSWORDS = frozenset(
    {
        "password123",
        "password1234",
        "1234567890",
        "12345678910",
        "qwertyuiop",
        "qwerty12345",
        "admin12345",
        "administrator",
        "iloveyou123",
        "abcdefghij",
        "a1234567890",
        "woaini1314",
    }
)


def check_password(username: str, password: str) -> None:
    """The password rule: long enough, two kinds of characters (letters, digits, spaces or
    signs), not a common password, not containing the user name."""
    minimum = _config().password_min_length
    if len(password) < minimum:
        raise ValueError(f"password must have at least {minimum} characters")
    kinds = [r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z\d]"]
    if sum(1 for kind in kinds if re.search(kind, password)) < 2:
        raise ValueError(
            "password must mix two kinds of characters (letters, digits, spaces or signs)"
        )
    if password.lower() in COMMON_PASSWORDS or len(set(password)) < 4:
        raise ValueError("password is too common")
    if username and username.lower() in password.lower():
        raise ValueError("password must not contain the user name")


def _user(session: Session, username: str) -> Optional[ConsoleUser]:
    return session.execute(
        select(ConsoleUser).where(ConsoleUser.username == username)
    ).scalar_one_or_none()


def add_user(
    session: Session, username: str, password: str, role: str, display_name: Optional[str] = None
) -> ConsoleUser:
    """Create a user (or reset an existing one's password, role and name: sessions end)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    check_password(username, password)
    user = _user(session, username)
    if user is None:
        user = ConsoleUser(
            username=username,
            created_at=to_utc_naive(utc_now()),
            session_version=0,
            failed_logins=0,
        )
        session.add(user)
    user.display_name = display_name or user.display_name or username
    user.role, user.active = role, True
    user.password_hash = passwords.hash(password)
    user.session_version = (user.session_version or 0) + 1
    user.failed_logins, user.locked_until = 0, None
    session.flush()
    return user


def authenticate(
    session: Session, username: str, password: str, now: Optional[dt.datetime] = None
) -> SignIn:
    """Check a password (one hash is always spent, so timing tells no names); wrong ones
    count towards a lockout of `failures_before_lockout` for `lockout_minutes`."""
    now = to_utc_naive(now or utc_now())
    config = _config()
    user = _user(session, username)
    if user is None or not user.active:
        passwords.dummy_verify()
        return SignIn(None)
    if user.locked_until is not None and user.locked_until > now:
        passwords.dummy_verify()
        return SignIn(None, locked=True)
    valid, new_hash = passwords.verify_and_update(password, user.password_hash)
    if not valid:
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= config.failures_before_lockout:
            user.locked_until = now + dt.timedelta(minutes=config.lockout_minutes)
            user.failed_logins = 0
            return SignIn(None, locked=True)
        return SignIn(None)
    if new_hash:
        user.password_hash = new_hash
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    return SignIn(_principal(user))


def current_principal(session: Session, user_id: int, session_version: int) -> Optional[Principal]:
    """The user of a session, if the account is active and the session not ended since."""
    user = session.get(ConsoleUser, user_id)
    if user is None or not user.active or user.session_version != session_version:
        return None
    return _principal(user)


def end_sessions(session: Session, user_id: int) -> None:
    """Sign the user out everywhere (logout does this)."""
    user = session.get(ConsoleUser, user_id)
    if user is not None:
        user.session_version = (user.session_version or 0) + 1


def set_password(session: Session, username: str, password: str) -> ConsoleUser:
    """A new password; every session of the user ends."""
    user = _user(session, username)
    if user is None:
        raise ValueError(f"no user {username!r}")
    check_password(username, password)
    user.password_hash = passwords.hash(password)
    user.session_version = (user.session_version or 0) + 1
    return user


def disable(session: Session, username: str) -> ConsoleUser:
    """The user cannot sign in any more, and every session of theirs ends now."""
    user = _user(session, username)
    if user is None:
        raise ValueError(f"no user {username!r}")
    user.active = False
    user.session_version = (user.session_version or 0) + 1
    return user


def unlock(session: Session, username: str) -> ConsoleUser:
    """Lift a lockout after too many wrong passwords."""
    user = _user(session, username)
    if user is None:
        raise ValueError(f"no user {username!r}")
    user.locked_until, user.failed_logins = None, 0
    return user


def list_agents(session: Session, present_only: bool = False) -> List[ConsoleUser]:
    """Active users who can take conversations; `present_only`: not marked absent (whom a
    conversation or an absent colleague's work can be given to)."""
    query = select(ConsoleUser).where(
        ConsoleUser.active.is_(True), ConsoleUser.role.in_(("agent", "supervisor", "admin"))
    )
    if present_only:
        query = query.where(ConsoleUser.absent_since.is_(None))
    return list(session.execute(query.order_by(ConsoleUser.username)).scalars())


def set_absent(
    session: Session,
    username: str,
    reason: str,
    covered_by: Optional[str] = None,
    now: Optional[dt.datetime] = None,
) -> ConsoleUser:
    """Record that the user is absent (since `now`, why, who covers); an absence already
    recorded keeps its start and gets the new reason and colleague."""
    user = _user(session, username)
    if user is None:
        raise ValueError(f"no user {username!r}")
    if user.absent_since is None:
        user.absent_since = to_utc_naive(now or utc_now())
    user.absence_reason, user.covered_by = reason, covered_by or None
    session.flush()
    return user


def clear_absence(session: Session, username: str) -> bool:
    """The user is back; False when no absence was recorded."""
    user = _user(session, username)
    if user is None:
        raise ValueError(f"no user {username!r}")
    was_absent = user.absent_since is not None
    user.absent_since, user.absence_reason, user.covered_by = None, None, None
    session.flush()
    return was_absent


def list_absent(session: Session) -> List[ConsoleUser]:
    """Users marked absent, longest absent first."""
    return list(
        session.execute(
            select(ConsoleUser)
            .where(ConsoleUser.absent_since.isnot(None))
            .order_by(ConsoleUser.absent_since, ConsoleUser.username)
        ).scalars()
    )
