"""The Rasa server, with this project's patch points applied first: `python -m bot.plugins.rasa_server run …`
takes exactly `rasa run`'s arguments (the runner uses it instead of `rasa run`).

Patch points (each small, each tested in tests/unit/test_rasa_patches.py):

* **Action responses validated with a validator built once.** Rasa 3.6's
  `RemoteAction._validate_action_result` calls `jsonschema.validate(result, schema)` on every
  action-server answer, which re-checks the schema itself each time: under load that was 54 %
  of the Rasa server's CPU (py-spy). The same JSON schema is checked with a
  `Draft…Validator` built once per schema; a malformed answer is still refused with the same
  `ValidationError`.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any, Dict, List, Optional

_PATCHED = False


@lru_cache(maxsize=8)
def _validator_for(schema_key: str) -> Any:
    import json

    from jsonschema.validators import validator_for

    schema = json.loads(schema_key)
    cls = validator_for(schema)
    cls.check_schema(schema)  # once, as jsonschema.validate would on every call
    return cls(schema)


def validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    """`RemoteAction._validate_action_result` with a cached validator (same errors)."""
    import json

    from jsonschema import ValidationError
    from rasa.shared.constants import DOCS_BASE_URL

    validator = _validator_for(json.dumps(self.action_response_format_spec(), sort_keys=True))
    try:
        validator.validate(result)
        return True
    except ValidationError as error:
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
        raise error


def apply_patches() -> None:
    """Apply every patch point once (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
    _PATCHED = True


def main(argv: Optional[List[str]] = None) -> None:
    """`rasa …` with the patches applied (and personal data masked in its logs)."""
    from bot.core.privacy import install_log_masking

    install_log_masking()
    apply_patches()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *(argv if argv is not None else sys.argv[1:])]
    rasa_main()


if __name__ == "__main__":
    main()
