"""The Rasa server's patch points (bot/plugins/rasa_server.py) keep Rasa's behaviour."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from bot.plugins import rasa_server


@pytest.fixture
def action() -> RemoteAction:
    rasa_server.apply_patches()
    return RemoteAction("action_ask_phone", EndpointConfig("http://127.0.0.1:9/webhook"))


GOOD: Dict[str, Any] = {
    "events": [{"event": "slot", "name": "requested_slot", "value": "phone"}],
    "responses": [{"text": "请留一个联系电话。"}],
}


def test_the_patch_replaces_rasas_validation() -> None:
    rasa_server.apply_patches()
    rasa_server.apply_patches()  # idempotent
    assert RemoteAction._validate_action_result is rasa_server.validate_action_result


def test_a_well_formed_answer_passes(action: RemoteAction) -> None:
    assert action._validate_action_result(GOOD) is True


@pytest.mark.parametrize(
    "malformed",
    [
        {"events": "not a list", "responses": []},
        {"events": [{"name": "no event type"}], "responses": []},
        {"events": [], "responses": "not a list"},
    ],
)
def test_a_malformed_answer_is_still_refused_with_rasas_hint(
    action: RemoteAction, malformed: Dict[str, Any]
) -> None:
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result(malformed)


def test_the_validator_is_built_once(action: RemoteAction) -> None:
    rasa_server._validator_for.cache_clear()
    for _ in range(50):
        action._validate_action_result(GOOD)
    info = rasa_server._validator_for.cache_info()
    assert (info.misses, info.hits) == (1, 49)
