"""The house rules: one reader of settings, documented variables, layering that points down."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.settings import PROJECT_ROOT, Settings, environment_variables, load_settings

ENV_EXAMPLE = PROJECT_ROOT / ".env.example"


def test_env_example_lists_exactly_the_variables_the_code_reads() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    assert documented == set(environment_variables())


def test_no_module_reads_the_environment_but_the_settings() -> None:
    readers = []
    for path in sorted((PROJECT_ROOT / "bot").rglob("*.py")) + sorted(
        (PROJECT_ROOT / "actions").rglob("*.py")
    ):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"os\.environ\.get|os\.getenv|os\.environ\[", line):
                readers.append(f"{path.relative_to(PROJECT_ROOT)}:{number}")
    assert readers == []


def test_settings_are_typed_and_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASA_PORT", "6005")
    monkeypatch.setenv("CONSOLE_HTTPS_ONLY", "1")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "${TELEGRAM_BOT_TOKEN}")  # unexpanded credentials.yml
    settings = load_settings()
    assert settings.rasa_port == 6005 and settings.console_https_only is True
    assert settings.telegram_bot_token == ""
    assert settings.service.handoff.claim_wait_minutes == 10
    assert settings.areas.districts["南澳县"] == "remote"
    with pytest.raises(TypeError):
        settings.rasa_port = 1  # type: ignore[misc]  # frozen


def test_a_test_builds_its_own_settings() -> None:
    settings = Settings(database_url_override="sqlite:////tmp/x.db", var_dir=Path("/tmp/var-x"))
    assert settings.database_url == "sqlite:////tmp/x.db"
    assert settings.api_token_file == Path("/tmp/var-x/api_token")


def test_every_dependency_points_down() -> None:
    """import-linter's contracts (.importlinter): layers, a pure core, no bench in the product."""
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "lint-imports"),
            "--config",
            str(PROJECT_ROOT / ".importlinter"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout[-3000:]
