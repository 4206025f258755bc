"""schemathesis against the console's JSON API (its own OpenAPI description): whatever it
sends — odd strings, huge numbers, missing fields, wrong types — no answer is a 5xx."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests

from bot.core.settings import PROJECT_ROOT
from bot.tools.runner import Stack
from tests.stack import API_TOKEN

SCHEMATHESIS = PROJECT_ROOT / ".venv-tools" / "bin" / "schemathesis"


def test_the_json_api_never_answers_with_a_server_error(stack: Stack, tmp_path: Path) -> None:
    if not SCHEMATHESIS.exists():
        pytest.fail("schemathesis is not installed: `make tools` (make test does)", pytrace=False)
    base = f"http://127.0.0.1:{stack.settings.console_port}"
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    schema = requests.get(f"{base}/api/v1/openapi.json", headers=auth, timeout=10).json()
    assert schema["paths"], "no operations described"
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            str(path),
            "--url",
            base,
            "-H",
            f"Authorization: Bearer {API_TOKEN}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--seed",
            "2026",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
