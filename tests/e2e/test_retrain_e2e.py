"""「训练新模型」 → compare → 「上线」 → 「回退」, as a trainer does it: in real Chromium, against a
real Rasa server, with the real worker process the console starts.

The assistant is the small one of tests/fixtures/retrain (three intents, the project's NLU
components) so each training takes seconds. The serving model knows greet and goodbye; the
trainer's new examples teach `thank`. After 「上线」 the running Rasa server answers `thank` for
「谢谢」; after 「回退」 it no longer does, and the live file is the original again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
from playwright import sync_api

from bench.stack import free_port
from bot.core.db import session_scope, upgrade_database
from bot.core.settings import PROJECT_ROOT, load_settings
from bot.core.staff import add_user
from tests.e2e.console_thread import console_in_thread, environment
from tests.stack import SCREENSHOTS, open_page

expect = sync_api.expect
FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "retrain"
PASSWORD = "retrain-browser-pass"
TOKEN = "retrain-e2e-token"


def _train(root: Path, name: str) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rasa",
            "train",
            "--config",
            str(root / "config.yml"),
            "--domain",
            str(root / "domain.yml"),
            "--data",
            str(root / "data"),
            "--out",
            str(root / "models"),
            "--fixed-model-name",
            name,
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    return root / "models" / f"{name}.tar.gz"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the small assistant with its serving model trained (models/intake.tar.gz)."""
    root = tmp_path_factory.mktemp("retrain")
    for name in ("config.yml", "domain.yml", "holdout.yml", "thank_extra.yml"):
        shutil.copy(FIXTURE / name, root / name)
    shutil.copytree(FIXTURE / "data", root / "data")
    _train(root, "intake")
    (root / "trainer.yml").write_text(
        "retrain:\n"
        + "".join(
            f"  {key}: {root / value}\n"
            for key, value in {
                "config": "config.yml",
                "domain": "domain.yml",
                "data": "data",
                "holdout": "holdout.yml",
                "models_dir": "models",
                "live_model": "models/intake.tar.gz",
            }.items()
        )
        + "  load_timeout_s: 120\n",
        encoding="utf-8",
    )
    (root / "endpoints.yml").write_text("# in-memory tracker store, no action server\n")
    (root / "credentials.yml").write_text("rest:\n")
    return root


@pytest.fixture(scope="module")
def rasa(project: Path) -> Iterator[str]:
    """The project's Rasa server (its patch points applied) serving the small model."""
    port = free_port()
    log = (project / "rasa.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.plugins.rasa_server",
            "run",
            "--enable-api",
            "--model",
            str(project / "models" / "intake.tar.gz"),
            "--port",
            str(port),
            "--interface",
            "127.0.0.1",
            "--endpoints",
            str(project / "endpoints.yml"),
            "--credentials",
            str(project / "credentials.yml"),
            f"--auth-token={TOKEN}",
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "INTAKE_VAR_DIR": str(project / "var")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if requests.get(f"{url}/status", params={"token": TOKEN}, timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Rasa did not start: {(project / 'rasa.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="module")
def console(project: Path, rasa: str) -> Iterator[str]:
    env = {
        "INTAKE_VAR_DIR": str(project / "var"),
        "DATABASE_URL": f"sqlite:///{project / 'console.db'}",
        "INTAKE_TRAINER_CONFIG": str(project / "trainer.yml"),
        "RASA_URL": rasa,
        "RASA_TOKEN": TOKEN,
        "CONSOLE_SWEEP_SECONDS": "0",
    }
    with environment(env):  # the worker the console starts inherits these
        settings = load_settings()
        upgrade_database(settings.database_url)
        with session_scope(settings.database_url) as session:
            add_user(session, "xunlian", PASSWORD, "trainer", "王训练")
        with console_in_thread(settings) as url:
            yield url


def intent_of(rasa: str, text: str) -> str:
    answer = requests.post(
        f"{rasa}/model/parse", params={"token": TOKEN}, json={"text": text}, timeout=10
    )
    answer.raise_for_status()
    return str(answer.json()["intent"]["name"])


def test_train_compare_go_live_and_roll_back(
    browser: "sync_api.Browser", project: Path, rasa: str, console: str
) -> None:
    live = project / "models" / "intake.tar.gz"
    serving_bytes = live.read_bytes()
    assert intent_of(rasa, "谢谢") != "thank"  # the serving model never saw a thank-you
    # the trainer's labels (as the inbox writes them) are in the data before training
    shutil.copy(project / "thank_extra.yml", project / "data" / "thank_extra.yml")

    with open_page(browser, 30_000, viewport={"width": 1366, "height": 900}) as page:
        page.goto(f"{console}/console/trainer")
        page.fill("input[name=username]", "xunlian")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#retrain-rollback")).to_be_hidden()

        page.click("#retrain-start")
        expect(page.locator("#retrain-working")).to_be_visible()
        expect(page.locator("#retrain-start")).to_be_disabled()
        run = page.locator("#retrain-runs tbody tr").first
        expect(run.locator("td").nth(1)).to_have_text("可上线", timeout=240_000)
        expect(page.locator("#retrain-working")).to_be_hidden()
        # the comparison: the serving model missed every thank-you, the candidate none
        expect(run.locator("td").nth(4)).to_have_text("0.667 → 1.000")
        expect(run.locator("td").nth(6)).to_contain_text("不比在用模型差，可以上线")
        expect(run.locator(".intent-changes summary")).to_contain_text("各意图 F1 变化")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "trainer-retrain-ready.png"), full_page=True)
        assert intent_of(rasa, "谢谢") != "thank"  # judged, not yet live

        run.locator("button.go-live").click()
        expect(run.locator("td").nth(1)).to_have_text("在用", timeout=150_000)
        assert intent_of(rasa, "谢谢") == "thank"  # the running server serves the candidate
        assert (
            live.read_bytes() == (project / "models" / "candidates" / "run-1.tar.gz").read_bytes()
        )
        expect(page.locator("#retrain-rollback")).to_be_visible()

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#retrain-rollback")
        expect(run.locator("td").nth(1)).to_have_text("已回退", timeout=150_000)
        assert intent_of(rasa, "谢谢") != "thank"
        assert live.read_bytes() == serving_bytes  # a restarted server gets the old one too
        expect(page.locator("#retrain-rollback")).to_be_hidden()

        page.click("#retrain-history-box summary")
        history = page.locator("#retrain-history tbody tr")
        expect(history).to_have_count(4)
        rows = history.evaluate_all(
            "rows => rows.map(r => r.cells[2].textContent + '/' + r.cells[3].textContent)"
        )
        assert rows == ["回退/xunlian", "上线/xunlian", "评估完成/system", "开始训练/xunlian"]
        page.screenshot(path=str(SCREENSHOTS / "trainer-retrain-history.png"), full_page=True)
