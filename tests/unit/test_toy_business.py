"""A new business type is one catalog entry plus its NLU file: add a toy one to a copy of the
project, generate, let Rasa validate the result, and drive its form through the actions."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from bot.core.catalog import load_catalog
from bot.core.db import session_scope, upgrade_database
from bot.core.settings import PROJECT_ROOT
from bot.core.tickets.repository import TicketRepository
from bot.tools.generate import GeneratedPaths, write_generated
from tests.unit.test_actions import completed_form, form_turn, run, sent

TOY = {
    "keywords": ["树障", "树枝碰到电线", "砍树"],
    "intent": "report_tree_hazard",
    "name": "树障清理",
    "department": "抢修",
    "priority": "normal",
    "required": ["address", "phone", "description"],
    "visit_address": True,
    "time_limit": {"kind": "working_days", "days": 3},
    "materials": [],
}
TOY_NLU = """version: "3.1"
nlu:
- intent: report_tree_hazard
  examples: |
    - 门口的大树树枝碰到电线了，能不能来修剪一下
    - 树障清理
    - 村口榕树长得太高，树枝压着电线
    - 台风过后有棵树歪到电线上了，还没断，麻烦来处理
    - 我家楼下的树枝一刮风就打到高压线
    - 申请砍树，树杈挨着电线杆
    - 后山的竹子长到电线那里了
    - 屋企门口棵树搭住电线，唔该派人嚟剪下
    - 路边行道树碰线，晚上会冒火花吗，先来修剪吧
    - 果园的荔枝树枝条快碰到电线了
"""


@pytest.fixture
def toy_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of domain/, data/ and config.yml whose catalog has one more business."""
    root = tmp_path / "project"
    for part in ("domain", "data"):
        shutil.copytree(PROJECT_ROOT / part, root / part)
    shutil.copy(PROJECT_ROOT / "config.yml", root / "config.yml")
    (root / "actions").mkdir()
    raw = yaml.safe_load((PROJECT_ROOT / "bot" / "catalog.yml").read_text(encoding="utf-8"))
    raw["services"]["tree_trimming"] = TOY
    catalog_path = root / "catalog.yml"
    catalog_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    (root / "data" / "nlu" / "tree_trimming.yml").write_text(TOY_NLU, encoding="utf-8")
    monkeypatch.setenv("INTAKE_CATALOG", str(catalog_path))
    write_generated(load_catalog(), GeneratedPaths(root))
    yield root


def _generated_validators(root: Path) -> Any:
    spec = importlib.util.spec_from_file_location(
        "toy_form_validators", root / "actions" / "form_validators.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_domain_passes_rasa_data_validate(toy_project: Path) -> None:
    domain = yaml.safe_load((toy_project / "domain" / "catalog.yml").read_text(encoding="utf-8"))
    assert "report_tree_hazard" in domain["intents"]
    assert domain["forms"]["tree_trimming_form"]["required_slots"] == [
        "address",
        "phone",
        "description",
        "confirm_submission",
    ]
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "rasa"),
            "data",
            "validate",
            "--domain",
            "domain",
            "--data",
            "data",
            "--config",
            "config.yml",
            "--fail-on-warnings",
        ],
        cwd=toy_project,
        capture_output=True,
        text=True,
    )
    errors = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "tree" in line.lower() and ("error" in line.lower() or "warn" in line.lower())
    ]
    assert errors == []
    rules = (toy_project / "data" / "catalog_rules.yml").read_text(encoding="utf-8")
    assert "tree_trimming: start" in rules and "tree_trimming: submit" in rules


@pytest.mark.asyncio
async def test_its_form_is_driven_through_the_actions(
    toy_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'toy.db'}")
    upgrade_database()
    validators = _generated_validators(toy_project)
    validator = validators.ValidateTreeTrimmingForm()
    assert validator.name() == "validate_tree_trimming_form"

    # a town alone is not enough for the crew: the rest of the address is asked for
    turn = form_turn("tree_trimming_form", "address", "潮南区两英镇", {"address": "潮南区两英镇"})
    events, _ = await run(validator, turn)
    assert {e["name"]: e["value"] for e in events}["address_partial"] == "潮南区两英镇"

    turn = form_turn("tree_trimming_form", "phone", "电话153200174896", {"phone": "153200174896"})
    events, dispatcher = await run(validator, turn)
    assert sent(dispatcher) == [
        {"text": "您给的电话 153200174896 是12位，手机号是11位，请再核对一下。"}
    ]

    from actions.requests import ActionSubmitRequest

    slots = {
        "address": "潮南区两英镇古溪村三巷12号",
        "phone": "13812345678",
        "description": "村口榕树树枝压着电线",
    }
    events, dispatcher = await run(
        ActionSubmitRequest(), completed_form("tree_trimming_form", slots)
    )
    with session_scope() as session:
        [ticket] = TicketRepository(session).list(conversation_id="conv-1")
        assert (ticket.category, ticket.department, ticket.priority) == (
            "tree_trimming",
            "抢修",
            "normal",
        )
        assert ticket.details == slots
    assert sent(dispatcher)[0]["service_name"] == "树障清理"
