"""Start and stop the whole assistant: Rasa server, action server and console.

`python -m bot run` (what `make run` calls) runs the three in the foreground until Ctrl-C,
which stops all of them. It supervises them: a process that dies is restarted after a
backoff (1 s, doubling up to 30 s while it keeps dying within a minute of starting), and
each restart is logged. The end-to-end and fault tests use the same `Stack` on free ports,
so what is tested is what runs.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Dict, List, Optional
from urllib.parse import unquote, urlparse

import requests

from bot.core.settings import PROJECT_ROOT, Settings, get_settings, reset_settings
from bot.tools.nginx import Nginx

VENV_BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 240
# Restart backoff: first wait, longest wait, and how long a process must stay up for the
# next crash to count as a fresh one (the wait goes back to the first).
FIRST_RESTART_WAIT_S = 1.0
LONGEST_RESTART_WAIT_S = 30.0
STABLE_AFTER_S = 60.0

logger = logging.getLogger(__name__)


def stack_environment(settings: Settings, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment every process of the stack gets (endpoints.yml reads it)."""
    env = dict(base if base is not None else os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])),
            "RASA_TELEMETRY_ENABLED": "false",
            "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{settings.action_port}/webhook",
            "ACTION_SERVER_TOKEN": settings.action_token(),
            "RASA_TOKEN": settings.rasa_token,
            # Console cookies are Secure; on a loopback-only stack (make run) plain HTTP is
            # said explicitly, unless the operator set it.
            "CONSOLE_HTTPS_ONLY": env.get("CONSOLE_HTTPS_ONLY")
            or ("0" if settings.bind_host in ("127.0.0.1", "localhost", "::1") else "1"),
            "RASA_TRACKER_DB": env.get("RASA_TRACKER_DB") or str(settings.var_dir / "tracker.db"),
            "DATABASE_URL": settings.database_url,
            "INTAKE_VAR_DIR": str(settings.var_dir),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TICKET_LOCK_LIFETIME": str(settings.lock_lifetime_s),  # read by Rasa's lock store
        }
    )
    return env


@dataclass
class Stack:
    """The three processes of the assistant, optionally supervised (restarted when they die)."""

    settings: Settings
    model: str = "models"
    log_dir: Optional[Path] = None  # None: inherit the terminal
    processes: Dict[str, subprocess.Popen] = field(default_factory=dict)
    restarts: Dict[str, int] = field(default_factory=dict)
    _logs: Dict[str, IO[bytes]] = field(default_factory=dict)
    _started_at: Dict[str, float] = field(default_factory=dict)
    _wait_s: Dict[str, float] = field(default_factory=dict)
    _restart_at: Dict[str, float] = field(default_factory=dict)
    _held: set = field(default_factory=set)  # stopped on purpose: not restarted
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _supervisor: Optional[threading.Thread] = None

    def rasa_command(self, port: int, endpoints: str = "endpoints.yml") -> List[str]:
        """`rasa run` with the project's patch points, its API behind the token."""
        s = self.settings
        return [
            sys.executable,
            "-m",
            "bot.plugins.rasa_server",
            "run",
            "--enable-api",
            "--model",
            self.model,
            "--interface",
            s.bind_host,
            "--port",
            str(port),
            "--endpoints",
            endpoints,
            "--credentials",
            "credentials.yml",
            "--cors",
            f"http://127.0.0.1:{s.console_port}",
            f"http://localhost:{s.console_port}",
            # Rasa's HTTP API is never open; one argument, so a token that begins with "-"
            # is not read as an option (argparse would exit with code 2)
            f"--auth-token={s.rasa_token}",
        ]

    def commands(self) -> Dict[str, List[str]]:
        s = self.settings
        return {
            "actions": [sys.executable, "-m", "actions.server", "--port", str(s.action_port)],
            "rasa": self.rasa_command(s.rasa_port),
            "console": [sys.executable, "-m", "bot", "console"],
        }

    def environment(self, name: str) -> Dict[str, str]:
        """The environment of process `name`."""
        return stack_environment(self.settings)

    def _spawn(self, name: str) -> None:
        output = self._logs.get(name)
        if output is None and self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = self._logs[name] = open(self.log_dir / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            self.commands()[name],
            cwd=PROJECT_ROOT,
            env=self.environment(name),
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
        self._started_at[name] = time.monotonic()

    def start(self) -> None:
        self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        for name in self.commands():
            self._spawn(name)

    # -- supervision -------------------------------------------------------------------

    def check_children(self) -> List[str]:
        """Restart every child that died (not stopped on purpose) once its backoff has
        passed; the names restarted now."""
        restarted = []
        now = time.monotonic()
        with self._lock:
            for name, process in list(self.processes.items()):
                if name in self._held or self._stopping.is_set() or process.poll() is None:
                    continue
                if name not in self._restart_at:
                    lived = now - self._started_at.get(name, now)
                    wait = (
                        FIRST_RESTART_WAIT_S
                        if lived >= STABLE_AFTER_S
                        else min(
                            self._wait_s.get(name, FIRST_RESTART_WAIT_S / 2) * 2,
                            LONGEST_RESTART_WAIT_S,
                        )
                    )
                    self._wait_s[name], self._restart_at[name] = wait, now + wait
                    message = (
                        f"{name} exited with code {process.returncode} after {lived:.0f} s; "
                        f"restarting in {wait:g} s"
                    )
                    logger.warning(message)
                    print(message, flush=True)
                    continue
                if now >= self._restart_at[name]:
                    del self._restart_at[name]
                    self._spawn(name)
                    self.restarts[name] = self.restarts.get(name, 0) + 1
                    restarted.append(name)
                    print(f"{name} restarted (restart {self.restarts[name]})", flush=True)
        return restarted

    def supervise_in_background(self, interval_s: float = 0.25) -> None:
        """Check the children every `interval_s` in a thread until `stop()`."""

        def loop() -> None:
            while not self._stopping.wait(interval_s):
                try:
                    self.check_children()
                except Exception:  # the supervisor itself must not die
                    logger.exception("supervisor check failed")

        self._supervisor = threading.Thread(target=loop, name="stack-supervisor", daemon=True)
        self._supervisor.start()

    def kill_process(self, name: str) -> None:
        """kill -9 one process (fault tests); a supervised stack restarts it."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    # -- readiness and stopping --------------------------------------------------------

    def health_urls(self) -> Dict[str, str]:
        s = self.settings
        token = f"?token={s.rasa_token}"
        return {
            "actions": f"http://127.0.0.1:{s.action_port}/health",
            "rasa": f"http://127.0.0.1:{s.rasa_port}/status{token}",
            "console": f"http://127.0.0.1:{s.console_port}/healthz",
        }

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until every process answers its health URL; raise if one dies (and is not
        supervised) or the time is up."""
        deadline = time.monotonic() + timeout
        pending = dict(self.health_urls())
        while pending:
            for name, url in list(pending.items()):
                process = self.processes.get(name)
                supervised = self._supervisor is not None and name not in self._held
                if process is not None and process.poll() is not None and not supervised:
                    raise RuntimeError(f"{name} exited with code {process.returncode}")
                try:
                    if requests.get(url, timeout=2).status_code == 200:
                        del pending[name]
                except requests.RequestException:
                    pass
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {', '.join(pending)}")
            if pending:
                time.sleep(0.5)

    def stop_process(self, name: str, timeout: float = 20) -> None:
        """Stop one process on purpose (the supervisor leaves it stopped)."""
        with self._lock:
            self._held.add(name)
            self._restart_at.pop(name, None)
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def restart_process(self, name: str) -> None:
        """Stop and start one process (tests: a restarted Rasa server mid-form)."""
        self.stop_process(name)
        with self._lock:
            self._spawn(name)
            self._held.discard(name)

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        for name in reversed(list(self.processes)):
            self.stop_process(name)
        for log in self._logs.values():
            log.close()


# ---------------------------------------------------------------- the production profile
DEFAULT_PRODUCTION_DATABASE = "postgresql://postgres@127.0.0.1:5432/intake"
DEFAULT_PRODUCTION_REDIS = "redis://127.0.0.1:6379/0"


def endpoint_variables(settings: Settings) -> Dict[str, str]:
    """The variables endpoints.prod.yml reads, from DATABASE_URL, INTAKE_REDIS_URL,
    INTAKE_REDIS_PREFIX, RABBITMQ_URL and RABBITMQ_QUEUE."""
    database = urlparse(settings.database_url)
    redis_url = urlparse(settings.redis_url or DEFAULT_PRODUCTION_REDIS)
    rabbit = urlparse(settings.rabbitmq_url)
    return {
        "TRACKER_DB_HOST": database.hostname or "127.0.0.1",
        "TRACKER_DB_PORT": str(database.port or 5432),
        "TRACKER_DB_NAME": database.path.lstrip("/") or "intake",
        "TRACKER_DB_USER": unquote(database.username or "postgres"),
        "TRACKER_DB_PASSWORD": unquote(database.password or ""),
        "REDIS_HOST": redis_url.hostname or "127.0.0.1",
        "REDIS_PORT": str(redis_url.port or 6379),
        "REDIS_DB": redis_url.path.lstrip("/") or "0",
        # Rasa accepts an alphanumeric prefix only (it adds ":lock:")
        "REDIS_LOCK_PREFIX": re.sub(r"[^0-9A-Za-z]", "", settings.redis_prefix) + "lock",
        "RABBITMQ_HOST": rabbit.hostname or "127.0.0.1",
        "RABBITMQ_PORT": str(rabbit.port or 5672),
        "RABBITMQ_USER": unquote(rabbit.username or "guest"),
        "RABBITMQ_PASSWORD": unquote(rabbit.password or "guest"),
        "RABBITMQ_QUEUE": settings.rabbitmq_queue,
    }


def use_production_defaults(environ: Dict[str, str]) -> None:
    """PostgreSQL and Redis on this machine unless DATABASE_URL / INTAKE_REDIS_URL say
    otherwise (an SQLite DATABASE_URL is replaced: several servers cannot share a file)."""
    if not environ.get("DATABASE_URL", "").startswith(("postgresql", "postgres:")):
        environ["DATABASE_URL"] = DEFAULT_PRODUCTION_DATABASE
    environ.setdefault("INTAKE_REDIS_URL", DEFAULT_PRODUCTION_REDIS)


def ensure_postgres_database(url: str) -> bool:
    """Create the database `url` names if it does not exist; True when it was created."""
    from sqlalchemy import create_engine, text

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"unexpected database name {name!r}")
    engine = create_engine(
        parts._replace(path="/postgres").geturl(), isolation_level="AUTOCOMMIT", future=True
    )
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            return not exists
    finally:
        engine.dispose()


def drop_postgres_database(url: str) -> None:
    """Drop the database `url` names (tests and benchmarks clean up after themselves)."""
    from sqlalchemy import create_engine, text

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    engine = create_engine(
        parts._replace(path="/postgres").geturl(), isolation_level="AUTOCOMMIT", future=True
    )
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def prepare_tracker_store(settings: Settings) -> None:
    """Create Rasa's tracker tables once, before several servers start at the same moment
    (each would otherwise try to create them and all but one would fail)."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    variables = endpoint_variables(settings)
    store = SQLTrackerStore(
        Domain.empty(),
        dialect="postgresql",
        host=variables["TRACKER_DB_HOST"],
        port=int(variables["TRACKER_DB_PORT"]),
        db=variables["TRACKER_DB_NAME"],
        username=variables["TRACKER_DB_USER"],
        password=variables["TRACKER_DB_PASSWORD"] or None,
    )
    store.engine.dispose()


@dataclass
class ProductionStack(Stack):
    """`INTAKE_SERVERS` Rasa servers (each with its action server) behind nginx, sharing
    PostgreSQL (tickets and trackers), Redis (conversation locks and every shared store) and
    RabbitMQ (the event broker); one console. Ports: Rasa from RASA_PORT, action servers from
    ACTION_PORT, nginx on INTAKE_DOOR_PORT."""

    servers: int = 2
    door: Optional[Nginx] = None

    def rasa_ports(self) -> List[int]:
        return [self.settings.rasa_port + i for i in range(self.servers)]

    def action_ports(self) -> List[int]:
        return [self.settings.action_port + i for i in range(self.servers)]

    def commands(self) -> Dict[str, List[str]]:
        commands: Dict[str, List[str]] = {}
        for i, port in enumerate(self.action_ports(), start=1):
            commands[f"actions-{i}"] = [sys.executable, "-m", "actions.server", "--port", str(port)]
        for i, port in enumerate(self.rasa_ports(), start=1):
            commands[f"rasa-{i}"] = self.rasa_command(port, "endpoints.prod.yml")
        commands["console"] = [sys.executable, "-m", "bot", "console"]
        return commands

    def environment(self, name: str) -> Dict[str, str]:
        env = stack_environment(self.settings)
        env.update(endpoint_variables(self.settings))
        env.pop("RASA_TRACKER_DB", None)
        if name == "console":  # the trainer's 「上线」 loads a model into every server
            env.setdefault(
                "INTAKE_RASA_SERVER_URLS",
                ",".join(f"http://127.0.0.1:{port}" for port in self.rasa_ports()),
            )
        if name.startswith("rasa-"):
            port = self.action_ports()[int(name.split("-")[1]) - 1]
            env["ACTION_ENDPOINT_URL"] = f"http://127.0.0.1:{port}/webhook"
            # the servers share this machine's cores: more encoder threads than cores makes
            # every server wait (measured: 2 servers × 2 threads on 2 cores ran at 0.4×)
            per_server = str(max(1, (os.cpu_count() or 2) // self.servers))
            env.setdefault("INTAKE_ENCODER_THREADS", per_server)
            # BLAS and OpenMP pools busy-wait: two servers with a pool each on two cores made
            # one /model/parse take 1.3 s instead of 19 ms. With one server the default pools
            # are faster (one customer p50 35 ms against 43 ms with one thread), so they stay.
            for pool in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env.setdefault(pool, per_server)
        return env

    def health_urls(self) -> Dict[str, str]:
        token = f"?token={self.settings.rasa_token}"
        urls = {
            f"actions-{i}": f"http://127.0.0.1:{port}/health"
            for i, port in enumerate(self.action_ports(), start=1)
        }
        urls.update(
            {
                f"rasa-{i}": f"http://127.0.0.1:{port}/status{token}"
                for i, port in enumerate(self.rasa_ports(), start=1)
            }
        )
        urls["console"] = f"http://127.0.0.1:{self.settings.console_port}/healthz"
        return urls

    def start(self) -> None:
        prepare_tracker_store(self.settings)
        super().start()
        prefix = (self.log_dir or self.settings.var_dir) / "nginx"
        self.door = Nginx(
            self.settings.door_port,
            [f"127.0.0.1:{port}" for port in self.rasa_ports()],
            f"127.0.0.1:{self.settings.console_port}",
            prefix,
        ).start()

    def stop(self) -> None:
        if self.door is not None:
            self.door.stop()
        super().stop()


def run_stack(model: str = "models", profile: str = "embedded") -> int:
    """Run everything in the foreground until Ctrl-C, restarting what dies.

    `profile` "embedded": one Rasa server, SQLite, memory stores. "prod": ProductionStack."""
    from bot.core.db import upgrade_database
    from bot.core.seed import seed_default_database

    if profile == "prod":
        use_production_defaults(os.environ)  # type: ignore[arg-type]
        reset_settings()
    settings = get_settings()
    if profile == "prod" and ensure_postgres_database(settings.database_url):
        print(f"Created the PostgreSQL database of {settings.database_url}", flush=True)
    upgrade_database(settings.database_url)
    # Demo bills and outages belong to the embedded profile only, never to a real database.
    if settings.demo_data_wanted:
        seed_default_database(settings.database_url)
    token_source = "INTAKE_API_TOKEN" if settings.api_token_env else str(settings.api_token_file)
    settings.api_token()
    stack: Stack = (
        ProductionStack(settings, model=model, servers=settings.rasa_servers)
        if profile == "prod"
        else Stack(settings, model=model)
    )
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    stack.start()
    try:
        print(
            "Starting Rasa server, action server and console (the model takes 30–60 s to load)…",
            flush=True,
        )
        stack.wait_ready()
        host = "127.0.0.1" if settings.bind_host in ("0.0.0.0", "::") else settings.bind_host
        if isinstance(stack, ProductionStack):
            print(
                f"  The door (nginx): http://127.0.0.1:{settings.door_port} — Telegram and WeChat "
                f"webhooks and /chat, spread over {stack.servers} Rasa servers "
                f"(ports {', '.join(map(str, stack.rasa_ports()))}).",
                flush=True,
            )
        print(
            "\n供电业务受理助手 is ready.\n"
            f"  Chat in the browser:  http://{host}:{settings.console_port}/chat\n"
            f"  REST channel:         POST http://{host}:{settings.rasa_port}/webhooks/rest/webhook\n"
            f"  JSON API (tickets):   http://{host}:{settings.console_port}/api/v1/tickets "
            f"(bearer token: {token_source})\n"
            "  Terminal chat:        make shell (in another terminal)\n"
            "Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while not stopping:
            stack.check_children()  # a crashed process is restarted with backoff
            time.sleep(0.5)
        return 0
    except (RuntimeError, TimeoutError) as error:
        print(f"start-up failed: {error}", flush=True)
        return 1
    finally:
        stack.stop()
