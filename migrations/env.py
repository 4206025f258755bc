"""Alembic environment: migrations of the application's database (tickets, handoffs, queries).

The URL comes from `config.attributes["database_url"]` (bot.core.db.upgrade_database), else
DATABASE_URL / the settings default. A connection passed in `config.attributes["connection"]`
is used as is (the caller owns its transaction).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from bot.core.db import Base, get_engine, import_models, resolve_url

config = context.config
if config.config_file_name is not None and "connection" not in config.attributes:
    # Only for the alembic CLI: don't reconfigure the logging of a running application.
    fileConfig(config.config_file_name, disable_existing_loggers=False)

import_models()
target_metadata = Base.metadata


def _url() -> str:
    return resolve_url(config.attributes.get("database_url"))


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``)."""
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live connection (the caller's, or a new one from bot.core.db)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    with get_engine(_url()).connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
