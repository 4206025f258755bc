"""Labelled examples go into the area file through a ruamel.yaml round trip."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from bot.core.training.intents import UnknownIntent, data_file_for
from bot.core.training.writer import (
    LABELS_LOG,
    LabelledExample,
    label_patch,
    to_markup,
    write_example,
)

CONTROL = """\
# 对话控制类意图 — header comment
version: "3.1"
nlu:
- intent: cancel
  examples: |
    - 不办了
    - 算了  # not a comment: part of the example text
# ---- section comment between intents
- intent: request_human
  examples: |
    - 转人工
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data" / "nlu"
    directory.mkdir(parents=True)
    (directory / "control.yml").write_text(CONTROL, encoding="utf-8")
    return directory


def test_appends_to_the_intent_block_and_keeps_everything_else(data_dir: Path) -> None:
    when = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    path = write_example(LabelledExample("cancel", "唔使喇，唔搞住"), "trainer1", data_dir, when)
    assert path == data_dir / "control.yml"
    expected = CONTROL.replace(
        "part of the example text\n", "part of the example text\n    - 唔使喇，唔搞住\n"
    )
    assert path.read_text(encoding="utf-8") == expected
    log = (data_dir / LABELS_LOG).read_text(encoding="utf-8")
    assert log == "2026-11-27T09:30:00+08:00\ttrainer1\tcancel\tcontrol.yml\t唔使喇，唔搞住\n"


def test_same_example_twice_changes_nothing(data_dir: Path) -> None:
    write_example(LabelledExample("cancel", "不办了"), "trainer1", data_dir)
    assert (data_dir / "control.yml").read_text(encoding="utf-8") == CONTROL
    assert not (data_dir / LABELS_LOG).exists()


def test_intent_missing_from_its_file_gets_a_new_entry(data_dir: Path) -> None:
    write_example(LabelledExample("deny", "唔係"), "trainer1", data_dir)
    text = (data_dir / "control.yml").read_text(encoding="utf-8")
    assert text.startswith(CONTROL) and text.endswith("- intent: deny\n  examples: |\n    - 唔係\n")


def test_entities_are_written_in_rasa_markup_with_unescaped_chinese_values() -> None:
    entities = [
        {"start": 0, "end": 2, "entity": "customer_type", "value": "非居民"},
        {"start": 5, "end": 16, "entity": "phone"},
    ]
    assert to_markup("工厂要电，13812345678", entities) == (
        '[工厂]{"entity": "customer_type", "value": "非居民"}要电，[13812345678](phone)'
    )


def test_patch_applies_with_git_and_writes_nothing(data_dir: Path) -> None:
    patch = label_patch(
        [LabelledExample("cancel", "先唔搞"), LabelledExample("request_human", "搵真人")], data_dir
    )
    assert (data_dir / "control.yml").read_text(encoding="utf-8") == CONTROL
    assert (
        "--- a/data/nlu/control.yml" in patch
        and "+    - 先唔搞" in patch
        and "+    - 搵真人" in patch
    )
    root = data_dir.parent.parent
    (root / "change.patch").write_text(patch, encoding="utf-8")
    subprocess.run(["git", "apply", "change.patch"], cwd=root, check=True)
    assert "    - 先唔搞\n" in (data_dir / "control.yml").read_text(encoding="utf-8")


def test_area_file_comes_from_the_catalog(tmp_path: Path) -> None:
    assert data_file_for("report_fault", tmp_path).name == "fault_repair.yml"
    assert data_file_for("query_bill", tmp_path).name == "query_bill.yml"
    with pytest.raises(UnknownIntent):
        data_file_for("no_such_intent", tmp_path)


def test_every_real_area_file_changes_by_exactly_one_added_line() -> None:
    import difflib
    import re

    from bot.core.training.intents import NLU_DIR
    from bot.core.training.writer import with_example

    for path in NLU_DIR.glob("*.yml"):
        source = path.read_text(encoding="utf-8")
        intent = re.search(r"^- intent: (\S+)", source, re.M)
        if intent is None:
            continue  # lookup tables, regexes
        updated = with_example(source, intent.group(1), "一个新例子")
        changes = [
            line
            for line in difflib.ndiff(source.splitlines(), updated.splitlines())
            if line[:1] in "+-"
        ]
        assert changes == ["+     - 一个新例子"], path.name


def test_concurrent_writers_keep_every_example(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from bot.core.training import writer

    slow = writer.with_example

    def with_example(source: str, intent: str, markup: str) -> str:
        time.sleep(0.05)  # read … (another writer would read the same file here) … write
        return slow(source, intent, markup)

    monkeypatch.setattr(writer, "with_example", with_example)
    examples = [f"第{n}个例子" for n in range(6)]
    threads = [
        threading.Thread(
            target=write_example, args=(LabelledExample("cancel", text), "t", data_dir)
        )
        for text in examples
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    written = (data_dir / "control.yml").read_text(encoding="utf-8")
    assert all(f"    - {text}\n" in written for text in examples)
    assert len((data_dir / LABELS_LOG).read_text(encoding="utf-8").splitlines()) == 6


def test_the_file_is_replaced_atomically_and_keeps_its_mode(data_dir: Path) -> None:
    import os

    from bot.core.training.writer import lock_path

    path = data_dir / "control.yml"
    path.chmod(0o640)
    inode = path.stat().st_ino
    write_example(LabelledExample("cancel", "唔搞喇"), "trainer1", data_dir)
    assert path.stat().st_ino != inode  # a new file renamed over the old one
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)
    assert lock_path(path) == data_dir / ".control.yml.lock" and lock_path(path).exists()
    assert sorted(p.name for p in data_dir.iterdir() if p.name.endswith(".tmp")) == []
    assert os.access(path, os.R_OK)


def test_a_failed_replace_leaves_the_file_and_no_temporary(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    def fail(source: str, target: str) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="rename failed"):
        write_example(LabelledExample("cancel", "唔搞喇"), "trainer1", data_dir)
    assert (data_dir / "control.yml").read_text(encoding="utf-8") == CONTROL
    assert not (data_dir / LABELS_LOG).exists()
    assert [p.name for p in data_dir.iterdir() if p.name.endswith(".tmp")] == []
