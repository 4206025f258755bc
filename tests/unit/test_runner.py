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
