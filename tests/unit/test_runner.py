"""The runner supervises its children: a crashed process comes back, with backoff."""

from __future__ import annotations

import sys
import time
from typing import Dict, List

import pytest

from bot.core.settings import load_settings
from bot.tools import runner
from bot.tools.runner import Stack


class SleepyStack(Stack):
    """The real supervision over two stand-in processes (a sleeper and a crasher)."""

    def commands(self) -> Dict[str, List[str]]:
        return {
            "sleeper": [sys.executable, "-c", "import time; time.sleep(60)"],
            "crasher": [sys.executable, "-c", "raise SystemExit(3)"],
        }


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path) -> SleepyStack:
    monkeypatch.setattr(runner, "FIRST_RESTART_WAIT_S", 0.1)
    monkeypatch.setattr(runner, "LONGEST_RESTART_WAIT_S", 0.4)
    monkeypatch.setenv("INTAKE_VAR_DIR", str(tmp_path))
    built = SleepyStack(load_settings(), log_dir=tmp_path / "logs")
    built.start()
    built.supervise_in_background(interval_s=0.02)
    yield built
    built.stop()


def test_a_killed_process_is_restarted_and_logged(stack: SleepyStack, capsys) -> None:
    first_pid = stack.processes["sleeper"].pid
    stack.kill_process("sleeper")
    wait_for(lambda: stack.restarts.get("sleeper", 0) == 1)
    assert stack.processes["sleeper"].pid != first_pid
    assert stack.processes["sleeper"].poll() is None
    printed = capsys.readouterr().out
    assert "sleeper exited with code -9" in printed and "sleeper restarted (restart 1)" in printed


def test_a_process_that_keeps_crashing_waits_longer_each_time(stack: SleepyStack) -> None:
    wait_for(lambda: stack.restarts.get("crasher", 0) >= 4)
    assert stack._wait_s["crasher"] == pytest.approx(0.4)  # doubled up to the longest wait


def test_a_process_stopped_on_purpose_stays_stopped(stack: SleepyStack) -> None:
    stack.stop_process("sleeper")
    time.sleep(0.3)
    assert stack.restarts.get("sleeper", 0) == 0
    assert stack.processes["sleeper"].poll() is not None
    stack.restart_process("sleeper")
    assert stack.processes["sleeper"].poll() is None


def test_rasa_reads_a_token_that_begins_with_a_dash(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """A generated token may begin with "-"; Rasa's own parser must still take it as the token
    (a CI run once lost every end-to-end test to `rasa exited with code 2`)."""
    from rasa.__main__ import create_argument_parser

    monkeypatch.setenv("INTAKE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("RASA_TOKEN", "-Zx3_secret")
    from bot.core.settings import reset_settings

    reset_settings()
    try:
        command = Stack(load_settings(), model="models/intake.tar.gz").rasa_command(5005)
        parsed = create_argument_parser().parse_args(command[3:])
    finally:
        monkeypatch.delenv("RASA_TOKEN")
        reset_settings()
    assert parsed.auth_token == "-Zx3_secret"
    assert parsed.port == 5005


def test_without_rasa_token_rasa_still_starts_with_one_kept_under_var(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Rasa's HTTP API is never open: with RASA_TOKEN unset a token is created once in
    var/rasa_token, and every start (and the console, through the same settings) uses it."""
    monkeypatch.setenv("INTAKE_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("RASA_TOKEN", raising=False)
    command = Stack(load_settings(), model="models/intake.tar.gz").rasa_command(5005)
    stored = (tmp_path / "rasa_token").read_text().strip()
    assert len(stored) >= 32
    assert f"--auth-token={stored}" in command
    again = Stack(load_settings(), model="models/intake.tar.gz").rasa_command(5005)
    assert f"--auth-token={stored}" in again


def test_a_generated_secret_never_begins_with_a_dash(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("INTAKE_VAR_DIR", str(tmp_path))
    settings = load_settings()
    for index in range(300):  # about one token in 64 would begin with "-"
        assert not settings.secret("", f"secret-{index}").startswith("-")


def test_a_dead_servers_lock_clears_before_nginx_gives_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """A Rasa server killed mid-turn leaves the conversation locked (Redis) for the lock's
    lifetime; if that outlived nginx's read timeout, every try of that customer would time out
    for a minute (the soak saw it with Rasa's default of 60 s)."""
    import re

    from bot.core.settings import PROJECT_ROOT
    from bot.tools.runner import stack_environment

    monkeypatch.setenv("INTAKE_VAR_DIR", str(tmp_path))
    template = (PROJECT_ROOT / "deploy" / "nginx" / "intake.conf.template").read_text()
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", template).group(1))
    lifetime = int(stack_environment(load_settings(), base={})["TICKET_LOCK_LIFETIME"])
    assert 0 < lifetime < read_timeout
