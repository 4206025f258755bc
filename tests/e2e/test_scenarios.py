"""The fast subset of the simulated customers (tests/scenarios/*.yml, `fast: true`), against a
real stack of their own with rate limits off — what `make evaluate` runs in full
(`python -m bench.scenarios`)."""

from __future__ import annotations

from typing import Iterator, List

import pytest

from bench.scenarios import Outcome, Scenario, StackClient, load_scenarios, play
from bench.stack import throwaway_stack
from tests.stack import MODEL

FAST = [s for s in load_scenarios() if s.fast]


def test_the_fast_subset_is_big_enough_and_covers_every_category() -> None:
    assert len(FAST) >= 30
    assert {s.category for s in FAST} == {s.category for s in load_scenarios()}


@pytest.fixture(scope="module")
def client() -> Iterator[StackClient]:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` (make test does)")
    with throwaway_stack(
        str(MODEL), "intake-scenarios-", {"INTAKE_RATE_LIMITS": "off"}, seed=True
    ) as stack:
        settings = stack.settings
        yield StackClient(
            f"http://127.0.0.1:{settings.rasa_port}",
            f"http://127.0.0.1:{settings.console_port}",
            settings.api_token(),
            settings.rasa_token,
        )


@pytest.mark.parametrize("scenario", FAST, ids=[s.id for s in FAST])
def test_scenario(scenario: Scenario, client: StackClient) -> None:
    outcome: Outcome = play(scenario, client)
    transcript: List[str] = [
        f"客户: {t.said}\n" + "\n".join(f"助手: {r}" for r in t.replies) for t in outcome.turns
    ]
    assert not outcome.failures, "\n".join([*outcome.failures, *transcript])
