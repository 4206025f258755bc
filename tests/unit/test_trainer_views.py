"""The trainer inbox through the console's JSON API, signed in for real."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from bot.core.db import session_scope
from bot.core.training.intents import NLU_DIR
from bot.core.training.models import InboxItem
from tests.unit.console_helpers import make_client, sign_in

TEXT = "我叫陈伟明，电话13812345678，电表在唱歌"


@pytest.fixture
def nlu_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "data" / "nlu"
    shutil.copytree(NLU_DIR, directory)
    monkeypatch.setenv("INTAKE_NLU_DIR", str(directory))
    return directory


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'console.db'}"
    from bot.core.db import dispose_engines, upgrade_database

    upgrade_database(url)
    now = dt.datetime(2026, 11, 27, 2, 0)
    with session_scope(url) as session:
        for text, count in ((TEXT, 3), ("电表半夜自己在转", 1)):
            session.add(
                InboxItem(
                    text_key=text,
                    text=text,
                    count=count,
                    reasons=["fallback"],
                    predicted_intent="nlu_fallback",
                    confidence=0.2,
                    status="open",
                    context={"previous_bot": "请问办理什么业务？", "next_user": "不是"},
                    first_seen=now,
                    last_seen=now,
                )
            )
    yield from make_client(url, monkeypatch)
    dispose_engines(url)


def _items(client: TestClient) -> list:
    response = client.get("/console/trainer/api/inbox")
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_only_trainers_and_admins_get_in(client: TestClient) -> None:
    assert client.get("/console/trainer/api/inbox").status_code == 401
    sign_in(client, "agent1")
    assert client.get("/console/trainer/api/inbox").status_code == 403
    sign_in(client, "trainer1")
    assert client.get("/console/trainer/api/inbox").status_code == 200
    page = client.get("/console/trainer", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "训练收件箱" in page.text


def test_inbox_lists_items_with_intents_in_chinese(client: TestClient) -> None:
    sign_in(client, "trainer1")
    data = client.get("/console/trainer/api/inbox").json()
    assert [(i["text"], i["count"]) for i in data["items"]] == [(TEXT, 3), ("电表半夜自己在转", 1)]
    assert data["items"][0]["context"]["previous_bot"] == "请问办理什么业务？"
    names = {c["intent"]: c["name"] for c in data["intents"]}
    assert names["dispute_meter"].startswith("计量") and names["cancel"] == "取消办理"
    assert {"entity": "phone", "name": "联系电话"} in data["entities"]


def test_label_writes_a_pseudonymised_example_into_the_area_file(
    client: TestClient, nlu_dir: Path
) -> None:
    csrf = sign_in(client, "trainer1")
    item = _items(client)[0]
    phone = (TEXT.index("138"), TEXT.index("138") + 11)
    body = {
        "item_id": item["id"],
        "intent": "dispute_meter",
        "entities": [{"start": phone[0], "end": phone[1], "entity": "phone"}],
    }
    assert client.post("/console/trainer/api/label", json=body).status_code == 403  # no CSRF header
    response = client.post("/console/trainer/api/label", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["data_file"] == "meter_dispute.yml"
    assert result["written"] is True and result["write_error"] is None
    assert result["message"] == f"已写入 meter_dispute.yml：{result['example']}"
    written = (nlu_dir / "meter_dispute.yml").read_text(encoding="utf-8")
    assert f"    - {result['example']}\n" in written
    assert "陈伟明" not in written and "13812345678" not in written
    assert "(phone)，电表在唱歌" in result["example"] and result["example"].startswith("我叫")
    assert "trainer1\tdispute_meter\tmeter_dispute.yml" in (nlu_dir / "LABELS.log").read_text(
        encoding="utf-8"
    )
    assert [i["text"] for i in _items(client)] == ["电表半夜自己在转"]
    again = client.post("/console/trainer/api/label", json=body, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 422


def test_patch_discard_and_bad_requests(client: TestClient, nlu_dir: Path) -> None:
    csrf = sign_in(client, "trainer1")
    headers = {"X-CSRF-Token": csrf}
    first, second = _items(client)
    before = (nlu_dir / "meter_dispute.yml").read_text(encoding="utf-8")
    patch = client.post(
        "/console/trainer/api/label",
        headers=headers,
        json={"item_id": second["id"], "intent": "dispute_meter", "patch": True},
    ).json()
    assert (
        "+    - 电表半夜自己在转" in patch["patch"]
        and "a/data/nlu/meter_dispute.yml" in patch["patch"]
    )
    assert (nlu_dir / "meter_dispute.yml").read_text(encoding="utf-8") == before
    bad_intent = client.post(
        "/console/trainer/api/label",
        headers=headers,
        json={"item_id": second["id"], "intent": "nope"},
    )
    assert bad_intent.status_code == 422
    bad_span = client.post(
        "/console/trainer/api/label",
        headers=headers,
        json={
            "item_id": second["id"],
            "intent": "dispute_meter",
            "entities": [{"start": 5, "end": 99, "entity": "phone"}],
        },
    )
    assert bad_span.status_code == 422
    discarded = client.post(
        "/console/trainer/api/discard",
        headers=headers,
        json={"item_id": first["id"], "reason": "personal_data"},
    )
    assert discarded.status_code == 200
    assert [i["id"] for i in _items(client)] == [second["id"]]


def test_a_failed_write_is_recorded_and_the_trainer_is_told(
    client: TestClient, nlu_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.training import writer

    def read_only(path: Path, text: str) -> None:
        raise PermissionError(f"{path.name} is read-only")

    csrf = sign_in(client, "trainer1")
    item = _items(client)[1]
    before = (nlu_dir / "meter_dispute.yml").read_text(encoding="utf-8")
    with monkeypatch.context() as patched:
        patched.setattr(writer, "replace_text", read_only)
        response = client.post(
            "/console/trainer/api/label",
            headers={"X-CSRF-Token": csrf},
            json={"item_id": item["id"], "intent": "dispute_meter"},
        )
    assert response.status_code == 202, response.text
    result = response.json()
    assert result["written"] is False and "read-only" in result["write_error"]
    assert result["message"].startswith("已记录，写入训练文件失败：PermissionError")
    assert "稍后可重试" in result["message"]
    assert (nlu_dir / "meter_dispute.yml").read_text(encoding="utf-8") == before
    inbox = client.get("/console/trainer/api/inbox").json()
    assert inbox["unwritten"] == 1 and item["id"] not in [i["id"] for i in inbox["items"]]


def test_refresh_with_a_2000_character_message_twice(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.test_trainer_collect import fill_tracker_store
    from tests.unit.test_trainer_labels import LONG

    url = fill_tracker_store(
        tmp_path / "tracker.db",
        {"long": [(LONG, "nlu_fallback", 0.2, "抱歉没听懂", ["action_fallback"])]},
    )
    monkeypatch.setenv("RASA_TRACKER_URL", url)
    sign_in(client, "trainer1")
    for _ in range(2):
        response = client.get("/console/trainer/api/inbox", params={"refresh": 1})
        assert response.status_code == 200, response.text
        assert [i["text"] for i in response.json()["items"]].count(LONG) == 1
