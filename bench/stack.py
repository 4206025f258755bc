"""A throw-away assistant for the benchmarks: the real stack on free ports, fresh SQLite."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from bot.core.settings import PROJECT_ROOT, get_settings, reset_settings
from bot.tools.runner import (
    ProductionStack,
    Stack,
    drop_postgres_database,
    ensure_postgres_database,
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: List[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def isolated_env(var_dir: Path) -> Dict[str, str]:
    """Environment for a stack of its own: files under `var_dir`, free ports, 127.0.0.1."""
    return {
        "INTAKE_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'intake.db'}",
        "RASA_TRACKER_DB": str(var_dir / "tracker.db"),
        "RASA_PORT": str(free_port()),
        "ACTION_PORT": str(free_port()),
        "CONSOLE_PORT": str(free_port()),
        "BIND_HOST": "127.0.0.1",
        "CONSOLE_HTTPS_ONLY": "0",  # plain HTTP on 127.0.0.1
    }


@contextmanager
def throwaway_stack(
    model: str,
    prefix: str,
    extra_env: Optional[Dict[str, str]] = None,
    seed: bool = False,
    var_dir: Optional[Path] = None,
    log_dir: Optional[Path] = None,
) -> Iterator[Stack]:
    """Start Rasa, the action server and the console on free ports; remove everything after
    (files under `var_dir`, a new temporary folder unless given; logs under it unless given)."""
    from bot.core.db import upgrade_database
    from bot.core.seed import seed_default_database

    var_dir = var_dir or Path(tempfile.mkdtemp(prefix=prefix))
    saved = dict(os.environ)  # put back afterwards: a test session may run another stack
    os.environ.update({**isolated_env(var_dir), **(extra_env or {})})
    reset_settings()
    settings = get_settings()
    upgrade_database(settings.database_url)
    if seed:
        seed_default_database(settings.database_url)
    stack = Stack(settings, model=model, log_dir=log_dir or var_dir / "logs")
    stack.start()
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(var_dir, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved)
        reset_settings()


def free_port_block(size: int) -> int:
    """The first of `size` consecutive free ports on 127.0.0.1."""
    for _ in range(50):
        first = free_port()
        try:
            socks = []
            for port in range(first, first + size):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                socks.append(sock)
            return first
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no block of {size} free ports")


@contextmanager
def throwaway_prod_stack(
    model: str,
    prefix: str,
    extra_env: Optional[Dict[str, str]] = None,
    servers: int = 2,
    postgres: str = "postgresql://postgres@127.0.0.1:5432",
    redis_url: str = "redis://127.0.0.1:6379/0",
) -> Iterator[ProductionStack]:
    """The production profile on free ports, with a PostgreSQL database, a Redis key prefix
    and a RabbitMQ queue of its own — all removed afterwards."""
    from bot.core.db import dispose_engines, upgrade_database

    tag = uuid.uuid4().hex[:10]
    var_dir = Path(tempfile.mkdtemp(prefix=prefix))
    saved = dict(os.environ)
    database_url = f"{postgres}/intake_{tag}"
    os.environ.update(
        {
            **isolated_env(var_dir),
            "DATABASE_URL": database_url,
            "INTAKE_REDIS_URL": redis_url,
            "INTAKE_REDIS_PREFIX": f"intake{tag}:",
            "RABBITMQ_QUEUE": f"intake_events_{tag}",
            "RASA_PORT": str(free_port_block(servers)),
            "ACTION_PORT": str(free_port_block(servers)),
            "INTAKE_DOOR_PORT": str(free_port()),
            **(extra_env or {}),
        }
    )
    reset_settings()
    settings = get_settings()
    ensure_postgres_database(database_url)
    upgrade_database(database_url)
    logs = PROJECT_ROOT / "reports" / "prod-logs" / tag  # kept: what to read when it fails
    stack = ProductionStack(settings, model=model, log_dir=logs, servers=servers)
    try:
        stack.start()
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()
        dispose_engines(database_url)
        drop_postgres_database(database_url)
        _drop_redis_keys(redis_url, f"intake{tag}")
        _drop_queue(settings.rabbitmq_url, f"intake_events_{tag}")
        shutil.rmtree(var_dir, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved)
        reset_settings()


def _drop_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _drop_queue(url: str, queue: str) -> None:
    import asyncio

    import aio_pika

    async def drop() -> None:
        connection = await aio_pika.connect(url, timeout=10)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)

    asyncio.run(drop())


def queue_length(url: str, queue: str) -> int:
    """Messages waiting in a RabbitMQ queue (the event broker's)."""
    import asyncio

    import aio_pika

    async def count() -> int:
        connection = await aio_pika.connect(url, timeout=10)
        async with connection:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)

    return asyncio.run(count())
