"""The inbox keyed by a hash, labels recorded before they are written, and `trainer flush`.

On SQLite and PostgreSQL (the `db_url` fixture): a message longer than any VARCHAR, two
trainers labelling into one file at once, a failed write kept and written later.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest
from sqlalchemy import inspect, select, text

from bot.core.db import downgrade_database, get_engine, session_scope, upgrade_database
from bot.core.training import writer
from bot.core.training.inbox import collect_candidates, open_items, sync_inbox, text_key
from bot.core.training.intents import NLU_DIR
from bot.core.training.labelling import (
    LabelError,
    flush_labels,
    label_item,
    unwritten_count,
)
from bot.core.training.models import InboxItem, InboxLabel, key_hash
from tests.unit.test_trainer_collect import fill_tracker_store

# 2,000 different-looking CJK letters: far past the old VARCHAR(512), and past what a
# PostgreSQL btree entry holds once UTF-8 encoded (~6 kB), so the text cannot be indexed itself.
LONG = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(2000))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data" / "nlu"
    shutil.copytree(NLU_DIR, directory)
    return directory


def _add_items(url: str, *texts: str) -> List[int]:
    now = dt.datetime(2026, 11, 27, 2, 0)
    with session_scope(url) as session:
        items = [
            InboxItem(
                text_key=text_key(text),
                text=text,
                count=1,
                reasons=["fallback"],
                status="open",
                context={},
                first_seen=now,
                last_seen=now,
            )
            for text in texts
        ]
        session.add_all(items)
        session.flush()
        return [item.id for item in items]


def _trainer_command(*argv: str) -> int:
    """`python -m bot trainer …` without bot.cli.main's process-wide logging set-up."""
    from bot.tools.trainer.cli import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["trainer", *argv])
    return int(args.handler(args))


def _labels(url: str) -> List[InboxLabel]:
    with session_scope(url) as session:
        return list(session.execute(select(InboxLabel).order_by(InboxLabel.id)).scalars())


def test_a_2000_character_message_is_one_item_refresh_after_refresh(
    tmp_path: Path, db_url: str
) -> None:
    tracker = fill_tracker_store(
        tmp_path / "tracker.db",
        {
            "long-1": [(LONG, "nlu_fallback", 0.2, "抱歉没听懂", ["action_fallback"])],
            "long-2": [(LONG + "！！", "nlu_fallback", 0.2, "抱歉没听懂", ["action_fallback"])],
        },
    )
    candidates = collect_candidates(tracker)
    assert len(candidates) == 1 and len(candidates[0].key) > 1900
    with session_scope(db_url) as session:
        assert sync_inbox(session, candidates) == 1
    with session_scope(db_url) as session:
        assert sync_inbox(session, collect_candidates(tracker)) == 0
        (item,) = open_items(session)
        assert item.text == LONG and item.count == 2
        assert item.text_key == candidates[0].key
        assert item.key_hash == key_hash(candidates[0].key) and len(item.key_hash) == 64


def test_the_hash_follows_the_key() -> None:
    item = InboxItem(text_key="电表在唱歌")
    assert item.key_hash == key_hash("电表在唱歌") != key_hash("电表在唱")
    item.text_key = "电表在唱"
    assert item.key_hash == key_hash("电表在唱")


def test_two_trainers_labelling_into_one_file_at_once_keep_both_examples(
    db_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _add_items(db_url, "电表半夜自己在转", "电表走得比以前快一倍")
    # Widen the read-modify-write window: without the lock, both threads would read the file
    # before either writes it, and the second write would drop the first example.
    slow = writer.with_example

    def with_example(source: str, intent: str, markup: str) -> str:
        time.sleep(0.3)
        return slow(source, intent, markup)

    monkeypatch.setattr(writer, "with_example", with_example)
    start = threading.Barrier(2)
    errors: Dict[int, BaseException] = {}

    def label(item_id: int, user: str) -> None:
        try:
            start.wait()
            with session_scope(db_url) as session:
                result = label_item(session, item_id, "dispute_meter", [], user, data_dir)
            assert result.written and result.write_error is None
        except BaseException as error:  # reported below, with the thread's id
            errors[item_id] = error

    threads = [
        threading.Thread(target=label, args=(first, "trainer1")),
        threading.Thread(target=label, args=(second, "trainer2")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == {}
    written = (data_dir / "meter_dispute.yml").read_text(encoding="utf-8")
    assert "    - 电表半夜自己在转\n" in written and "    - 电表走得比以前快一倍\n" in written
    log = (data_dir / writer.LABELS_LOG).read_text(encoding="utf-8").splitlines()
    assert sorted(line.split("\t")[1] for line in log) == ["trainer1", "trainer2"]
    labels = _labels(db_url)
    assert len(labels) == 2 and all(label.written_at is not None for label in labels)
    assert not list(data_dir.glob(".*.tmp"))


def test_one_item_labelled_by_two_trainers_is_recorded_once(db_url: str, data_dir: Path) -> None:
    (item_id,) = _add_items(db_url, "电表半夜自己在转")
    with session_scope(db_url) as late:
        seen = late.get(InboxItem, item_id)  # this trainer saw it open (kept in `late`)
        assert seen is not None and seen.status == "open"
        with session_scope(db_url) as early:
            label_item(early, item_id, "dispute_meter", [], "trainer1", data_dir)
        with pytest.raises(LabelError, match="someone else"):
            label_item(late, item_id, "query_bill", [], "trainer2", data_dir)
    assert [(label.intent, label.labelled_by) for label in _labels(db_url)] == [
        ("dispute_meter", "trainer1")
    ]


def test_a_failed_write_keeps_the_label_and_flush_writes_it_later(
    db_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (item_id,) = _add_items(db_url, "电表半夜自己在转")
    before = (data_dir / "meter_dispute.yml").read_text(encoding="utf-8")

    def disk_full(path: Path, text: str) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(writer, "replace_text", disk_full)
        with session_scope(db_url) as session:
            result = label_item(session, item_id, "dispute_meter", [], "trainer1", data_dir)
        assert not result.written and "No space left on device" in (result.write_error or "")
        assert result.message.startswith("已记录，写入训练文件失败：OSError")
        assert "稍后可重试" in result.message
        (label,) = _labels(db_url)
        assert label.written_at is None and "No space left" in label.write_error
        assert label.example == "电表半夜自己在转" and label.data_file == "meter_dispute.yml"
        with session_scope(db_url) as session:
            assert session.get(InboxItem, item_id).status == "labelled"
            assert unwritten_count(session) == 1
            report = flush_labels(session, data_dir)  # still failing: kept, error refreshed
        assert report.written == [] and [i for i, _ in report.failed] == [label.id]
    assert (data_dir / "meter_dispute.yml").read_text(encoding="utf-8") == before

    with session_scope(db_url) as session:
        report = flush_labels(session, data_dir)
    assert report.written == [label.id] and report.failed == []
    (label,) = _labels(db_url)
    assert label.written_at is not None and label.write_error is None
    assert "    - 电表半夜自己在转\n" in (data_dir / "meter_dispute.yml").read_text(
        encoding="utf-8"
    )
    log = (data_dir / writer.LABELS_LOG).read_text(encoding="utf-8")
    assert "\ttrainer1\tdispute_meter\tmeter_dispute.yml\t电表半夜自己在转\n" in log
    with session_scope(db_url) as session:
        assert unwritten_count(session) == 0
        assert flush_labels(session, data_dir).written == []  # nothing left to do


def test_trainer_flush_command(
    db_url: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (item_id,) = _add_items(db_url, "电表走得比以前快一倍")
    with monkeypatch.context() as patched:
        patched.setattr(writer, "replace_text", _raise_permission_error)
        with session_scope(db_url) as session:
            assert not label_item(session, item_id, "dispute_meter", [], "t1", data_dir).written
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("INTAKE_NLU_DIR", str(data_dir))
    assert _trainer_command("flush") == 0
    assert "1 labels written, 0 still not written" in capsys.readouterr().out
    assert "    - 电表走得比以前快一倍\n" in (data_dir / "meter_dispute.yml").read_text(
        encoding="utf-8"
    )


def _raise_permission_error(path: Path, text: str) -> None:
    raise PermissionError(f"{path.name} is read-only")


def test_label_command_says_when_the_write_failed(
    db_url: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (item_id,) = _add_items(db_url, "电表走得比以前快一倍")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setattr(writer, "replace_text", _raise_permission_error)
    assert _trainer_command("label", str(item_id), "dispute_meter", "--data", str(data_dir)) == 1
    out = capsys.readouterr().out
    assert "recorded, but not written" in out and "meter_dispute.yml is read-only" in out
    assert "trainer flush" in out
    (label,) = _labels(db_url)
    assert label.written_at is None and "read-only" in label.write_error


def test_migration_0009_back_fills_hashes_and_marks_old_labels_written(db_url: str) -> None:
    downgrade_database(db_url, "0008")
    engine = get_engine(db_url)
    when = dt.datetime(2026, 11, 27, 2, 0)
    try:
        with engine.begin() as connection:
            for key in ("电表在唱歌", "电表半夜自己在转"):
                connection.execute(
                    text(
                        "INSERT INTO trainer_inbox_items (text_key, text, count, reasons, "
                        "context, status, first_seen, last_seen) "
                        "VALUES (:key, :key, 1, '[]', '{}', 'labelled', :when, :when)"
                    ),
                    {"key": key, "when": when},
                )
            ids = dict(
                connection.execute(text("SELECT text_key, id FROM trainer_inbox_items")).all()
            )
            connection.execute(
                text(
                    "INSERT INTO trainer_labels (item_id, intent, example, data_file, "
                    "discard_reason, labelled_by, labelled_at) VALUES "
                    "(:labelled, 'dispute_meter', '电表在唱歌', 'meter_dispute.yml', NULL, "
                    "'t1', :when), (:discarded, NULL, NULL, NULL, 'noise', 't1', :when)"
                ),
                {"labelled": ids["电表在唱歌"], "discarded": ids["电表半夜自己在转"], "when": when},
            )
        upgrade_database(db_url, "0009")
        with session_scope(db_url) as session:
            items = {i.text_key: i for i in session.execute(select(InboxItem)).scalars()}
            assert {k: i.key_hash for k, i in items.items()} == {k: key_hash(k) for k in ids}
            labels = session.execute(select(InboxLabel).order_by(InboxLabel.id)).scalars().all()
            assert [(label.written_at, label.write_error) for label in labels] == [
                (when, None),
                (None, None),
            ]
            assert unwritten_count(session) == 0  # written before 0009 recorded it
            session.add(
                InboxItem(
                    text_key=LONG,
                    text=LONG,
                    count=1,
                    reasons=[],
                    status="open",
                    context={},
                    first_seen=when,
                    last_seen=when,
                )
            )
        downgrade_database(db_url, "0008")  # a key longer than VARCHAR(512) cannot stay there
        columns = {c["name"] for c in inspect(engine).get_columns("trainer_inbox_items")}
        assert "key_hash" not in columns
        with engine.connect() as connection:
            left = connection.execute(text("SELECT count(*) FROM trainer_inbox_items")).scalar()
        assert left == (3 if engine.dialect.name == "sqlite" else 2)
    finally:
        upgrade_database(db_url)
