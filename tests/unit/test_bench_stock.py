"""The latency benchmark's stock bot set-up and its figures, without starting any server."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import List

import pytest
import yaml

from bench import latency, stock


def test_rest_channel_is_added_when_missing(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.yml"
    credentials.write_text("# rest:\nrasa:\n  url: http://localhost:5002/api\n")
    stock.ensure_rest_channel(credentials)
    loaded = yaml.safe_load(credentials.read_text())
    assert "rest" in loaded and loaded["rasa"] == {"url": "http://localhost:5002/api"}


def test_rest_channel_is_kept_when_present(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.yml"
    credentials.write_text("rest:\n#  nothing needed\n")
    stock.ensure_rest_channel(credentials)
    assert credentials.read_text() == "rest:\n#  nothing needed\n"
    empty = tmp_path / "empty.yml"
    stock.ensure_rest_channel(empty)
    assert yaml.safe_load(empty.read_text()) == {"rest": None}


def test_endpoints_use_an_sqlite_tracker_store_in_the_folder(tmp_path: Path) -> None:
    loaded = yaml.safe_load(stock.write_endpoints(tmp_path).read_text())
    assert loaded == {
        "tracker_store": {"type": "SQL", "dialect": "sqlite", "db": str(tmp_path / "tracker.db")}
    }


def test_a_folder_with_a_model_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[List[str]] = []
    monkeypatch.setattr(stock, "_run_logged", lambda command, *_: calls.append(command))
    (tmp_path / "models").mkdir()
    old, new = tmp_path / "models" / "a.tar.gz", tmp_path / "models" / "b.tar.gz"
    old.write_text("old")
    new.write_text("new")
    os.utime(old, (1_000, 1_000))
    assert stock.prepare_stock_bot(tmp_path, log=False) == new
    assert calls == []


def test_an_empty_folder_is_initialised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "stock"
    calls: List[List[str]] = []

    def fake_run(command: List[str], where: Path, _log: str) -> None:
        calls.append(command[1:])
        (where / "models").mkdir(exist_ok=True)
        (where / "models" / "m.tar.gz").write_text("model")

    monkeypatch.setattr(stock, "_run_logged", fake_run)
    assert stock.prepare_stock_bot(folder, log=False) == folder / "models" / "m.tar.gz"
    assert calls == [["init", "--no-prompt", "--init-dir", "."]]


def test_a_project_without_a_model_is_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.yml").write_text("recipe: default.v1\n")
    (tmp_path / "domain.yml").write_text("version: '3.1'\n")
    calls: List[List[str]] = []

    def fake_run(command: List[str], where: Path, _log: str) -> None:
        calls.append(command[1:])
        (where / "models").mkdir(exist_ok=True)
        (where / "models" / "m.tar.gz").write_text("model")

    monkeypatch.setattr(stock, "_run_logged", fake_run)
    stock.prepare_stock_bot(tmp_path, log=False)
    assert calls == [["train"]]


def test_report_ratios_and_targets() -> None:
    bots = (
        latency.Bot("stock", "http://127.0.0.1:1", latency.STOCK_TURNS),
        latency.Bot("assistant", "http://127.0.0.1:2", latency.ASSISTANT_TURNS),
    )
    single = {
        "stock": latency.Conversation(turns=[("greet", 10.0), ("mood", 10.0), ("affirm", 10.0)]),
        "assistant": latency.Conversation(
            turns=[("rule", 10.0), ("form", 12.0), ("form", 12.0), ("filing", 25.0)]
        ),
    }
    loads = {
        "stock": latency.Load(latencies=[10.0] * 100, seconds=10.0),
        "assistant": latency.Load(latencies=[20.0] * 80, seconds=10.0),
    }
    args = argparse.Namespace(model="m", rounds=1, customers=20, seconds=10.0)
    report = latency.build_report(bots, single, loads, args)
    assert report["ratios"]["one_customer_p50"] == 1.2
    assert report["ratios"]["filing_turn_p50"] == 2.5
    assert report["ratios"]["concurrent_messages_per_s"] == 0.8
    assert report["targets"]["one_customer_p50"]["met"] is True
    assert report["targets"]["filing_turn_p50"]["met"] is False
    assert report["targets"]["concurrent_messages_per_s"]["met"] is False
    assert not latency.has_problems(report)
    latency.print_report(report)  # prints without failing
