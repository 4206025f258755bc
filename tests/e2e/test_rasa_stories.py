"""`rasa test core` on tests/stories: the rules and digressions predict the right actions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.core.settings import PROJECT_ROOT
from tests.stack import MODEL


def test_conversation_stories_pass(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "rasa"),
            "test",
            "core",
            "--model",
            str(MODEL),
            "--stories",
            "tests/stories",
            "--out",
            str(tmp_path),
            "--fail-on-prediction-errors",
        ],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "RASA_TELEMETRY_ENABLED": "false",
            "RASA_TRACKER_DB": str(tmp_path / "tracker.db"),
            "ACTION_ENDPOINT_URL": "http://127.0.0.1:9/webhook",
        },  # actions are not run here
        capture_output=True,
        text=True,
        timeout=600,
    )
    failed = tmp_path / "failed_test_stories.yml"
    details = failed.read_text(encoding="utf-8") if failed.exists() else result.stdout[-3000:]
    assert result.returncode == 0, details
