"""Database access: the declarative Base, cached engines, sessions and Alembic upgrades.

SQLAlchemy 1.4 in 2.0 style (``future=True``). Tables of every module register on
`Base.metadata`; `import_models()` imports them all (Alembic's env.py and the tests use it).

    from bot.core.db import session_scope, upgrade_database
    upgrade_database()                 # once at start-up: migrations to head
    with session_scope() as session:   # commit on success, rollback on error
        ...
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Optional

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, declarative_base, sessionmaker
from sqlalchemy.pool import StaticPool

from bot.core.settings import PROJECT_ROOT, get_settings

ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"

# Deterministic constraint names, so migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Base = declarative_base(metadata=MetaData(naming_convention=NAMING_CONVENTION))

MODEL_MODULES = (
    "bot.core.tickets.models",
    "bot.core.handoff.models",
    "bot.core.queries.billing_models",
    "bot.core.queries.outage_models",
    "bot.core.staff",
    "bot.core.training.models",
    "bot.core.notifications.models",
    "bot.core.privacy",
    "bot.core.dead_letters",
    "bot.core.media.models",
    "bot.core.training.retrain",
)

SQLITE_BUSY_TIMEOUT_S = 30
# Arbitrary constant key of the PostgreSQL advisory lock that serialises migrations.
_PG_MIGRATION_LOCK = 75_488_881

_engines: Dict[str, Engine] = {}
_sessionmakers: Dict[str, sessionmaker] = {}
_lock = threading.Lock()


def import_models() -> None:
    """Import every module that defines tables, so `Base.metadata` is complete."""
    for module in MODEL_MODULES:
        importlib.import_module(module)


def sql_in(column: str, values: Iterable[str]) -> str:
    """SQL text of a CHECK constraint limiting `column` to `values`."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def resolve_url(url: Optional[str] = None) -> str:
    """The URL to use: the argument, else settings (DATABASE_URL or SQLite under var/)."""
    url = url or get_settings().database_url
    if url.startswith("postgres://"):  # Heroku-style alias SQLAlchemy does not accept
        url = "postgresql://" + url[len("postgres://") :]
    return url


def _sqlite_file(url: str) -> Optional[Path]:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# SQLite transactions: pysqlite's default behaviour is kept on purpose. It starts a
# transaction at the first INSERT/UPDATE/DELETE, not at a SELECT, so a unit of work that reads
# first and then writes (e.g. TicketRepository.create) takes the write lock with the busy
# timeout instead of failing with SQLITE_BUSY on a stale read snapshot.


def _create_engine(url: str) -> Engine:
    options: Dict[str, Any] = {"future": True, "json_serializer": _json_dumps}
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **options)
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:  # in-memory: one shared connection, or every session would see an empty database
        options["poolclass"] = StaticPool
    options["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
    engine = create_engine(url, **options)
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def get_engine(url: Optional[str] = None) -> Engine:
    """The engine for `url` (default: settings), created once per URL and process."""
    url = resolve_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create_engine(url)
        return engine


def get_sessionmaker(url: Optional[str] = None) -> sessionmaker:
    """The session factory bound to `get_engine(url)`; objects stay readable after commit."""
    url = resolve_url(url)
    engine = get_engine(url)
    with _lock:
        factory = _sessionmakers.get(url)
        if factory is None:
            factory = _sessionmakers[url] = sessionmaker(
                bind=engine, future=True, expire_on_commit=False
            )
        return factory


@contextlib.contextmanager
def session_scope(url: Optional[str] = None) -> Iterator[Session]:
    """A session in one transaction: committed when the block succeeds, rolled back if not."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_engines(url: Optional[str] = None) -> None:
    """Close the cached engine of `url`, or every cached engine (tests, before dropping a DB)."""
    with _lock:
        urls = [resolve_url(url)] if url else list(_engines)
        for key in urls:
            engine = _engines.pop(key, None)
            _sessionmakers.pop(key, None)
            if engine is not None:
                engine.dispose()


def ping(url: Optional[str] = None) -> None:
    """Raise unless the database answers a trivial query."""
    with get_engine(url).connect() as connection:
        connection.execute(text("SELECT 1"))


def alembic_config(url: Optional[str] = None) -> Any:
    """The Alembic Config of this repository, pointed at `url`."""
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = resolve_url(url)
    return config


@contextlib.contextmanager
def _file_lock(path: Optional[Path]) -> Iterator[None]:
    """Serialise SQLite migrations of several processes starting together."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.migrate.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _set_sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    connection.exec_driver_sql(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
    connection.commit()


def _migrate(url: Optional[str], step: Callable[[Any], None]) -> None:
    """Run an Alembic command on one connection, serialised across processes.

    On SQLite, foreign keys are off while migrating: batch mode rebuilds a table by copying
    and dropping it, which enforced foreign keys of other tables would refuse.
    """
    url = resolve_url(url)
    engine = get_engine(url)
    config = alembic_config(url)
    is_sqlite = engine.dialect.name == "sqlite"
    with _file_lock(_sqlite_file(url) if is_sqlite else None), engine.connect() as connection:
        if is_sqlite:
            _set_sqlite_foreign_keys(connection, on=False)
        try:
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    lock = text("SELECT pg_advisory_xact_lock(:key)")
                    connection.execute(lock, {"key": _PG_MIGRATION_LOCK})
                config.attributes["connection"] = connection
                step(config)
        finally:
            if is_sqlite:
                _set_sqlite_foreign_keys(connection, on=True)


def upgrade_database(url: Optional[str] = None, revision: str = "head") -> None:
    """Run the Alembic migrations up to `revision` (safe when several processes start at once)."""
    from alembic import command

    _migrate(url, lambda config: command.upgrade(config, revision))


def downgrade_database(url: Optional[str] = None, revision: str = "base") -> None:
    """Undo migrations down to `revision` (tests and operators; drops data)."""
    from alembic import command

    _migrate(url, lambda config: command.downgrade(config, revision))
