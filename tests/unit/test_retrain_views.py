"""The trainer page's 「训练新模型」 API, signed in for real: who may, one at a time, refusals.

The worker is a stand-in here (app.state.retrain_worker); the real one, the real Rasa server
and the browser are in tests/e2e/test_retrain_e2e.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.core.db import dispose_engines, session_scope, upgrade_database
from bot.core.settings import Settings
from bot.core.training.retrain import ModelChange, RetrainRun
from tests.unit.console_helpers import make_client, sign_in


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'console.db'}"
    upgrade_database(url)
    yield url
    dispose_engines(url)


@pytest.fixture
def started() -> List[int]:
    """The run ids the stand-in worker was started for."""
    return []


@pytest.fixture
def client(url: str, started: List[int], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    for client in make_client(url, monkeypatch):
        client.app.state.retrain_worker = lambda settings, run_id: started.append(run_id)
        yield client


def test_only_trainers_start_a_run_and_only_with_the_csrf_header(
    client: TestClient, started: List[int]
) -> None:
    assert client.get("/console/trainer/api/retrain").status_code == 401
    csrf = sign_in(client, "agent1")
    assert (
        client.post("/console/trainer/api/retrain", headers={"X-CSRF-Token": csrf}).status_code
        == 403
    )
    csrf = sign_in(client, "trainer1")
    assert client.post("/console/trainer/api/retrain").status_code == 403  # no CSRF header
    assert started == []
    answer = client.post("/console/trainer/api/retrain", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 202, answer.text
    state = answer.json()
    assert started == [state["working"]["id"]]
    assert (
        state["working"]["status_label"] == "排队中"
        and state["working"]["requested_by"] == "trainer1"
    )
    assert state["margins"] == {"overall": 0.005, "intent": 0.05}  # config/trainer.yml
    page = client.get("/console/trainer", headers={"Accept": "text/html"})
    assert "训练新模型" in page.text and "/console/static/retrain.js" in page.text


def test_a_second_run_waits_for_the_first(client: TestClient, started: List[int]) -> None:
    csrf = sign_in(client, "trainer1")
    headers = {"X-CSRF-Token": csrf}
    assert client.post("/console/trainer/api/retrain", headers=headers).status_code == 202
    second = client.post("/console/trainer/api/retrain", headers=headers)
    assert second.status_code == 409
    assert second.json()["detail"] == "已有模型在训练、上线或回退，请等它完成后再试。"
    assert len(started) == 1
    # nothing to go live or roll back yet: said, not a 500
    run_id = started[0]
    live = client.post(f"/console/trainer/api/retrain/{run_id}/live", headers=headers)
    assert live.status_code == 409 and live.json()["detail"] == "只有评估通过的模型才能上线。"
    back = client.post("/console/trainer/api/retrain/rollback", headers=headers)
    assert back.status_code == 409 and back.json()["detail"] == "没有可以回退的模型。"
    assert client.post("/console/trainer/api/retrain/0/live", headers=headers).status_code == 404


def test_a_worker_that_cannot_start_is_recorded_and_frees_the_slot(
    client: TestClient, url: str
) -> None:
    def broken(settings: Settings, run_id: int) -> None:
        raise OSError("no such file: python")

    client.app.state.retrain_worker = broken
    csrf = sign_in(client, "trainer1")
    answer = client.post("/console/trainer/api/retrain", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 500 and answer.json()["detail"] == "无法启动训练，请联系运维。"
    with session_scope(url) as session:
        run = session.scalars(select(RetrainRun)).one()
        assert (run.status, run.active, run.error) == ("failed", None, "无法启动训练：OSError")
        assert [c.action for c in session.scalars(select(ModelChange))] == ["requested", "failed"]
    client.app.state.retrain_worker = lambda settings, run_id: None
    assert (
        client.post("/console/trainer/api/retrain", headers={"X-CSRF-Token": csrf}).status_code
        == 202
    )
