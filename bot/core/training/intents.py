"""Which intents a trainer can choose, their Chinese names, and the data file of each.

Service intents take name and file from the catalog (data/nlu/<code>.yml); the others from
intent_names.yml next to this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List

import yaml

from bot.core.catalog import load_catalog
from bot.core.settings import PROJECT_ROOT, get_settings

NLU_DIR = PROJECT_ROOT / "data" / "nlu"
NAMES_FILE = Path(__file__).with_name("intent_names.yml")


@dataclass(frozen=True)
class IntentChoice:
    """One entry of the trainer's intent picker."""

    intent: str
    name: str
    file_stem: str  # data/nlu/<file_stem>.yml


class UnknownIntent(ValueError):
    """The intent is neither a catalog service nor listed in intent_names.yml."""


@lru_cache(maxsize=1)
def _names() -> Dict[str, Any]:
    return yaml.safe_load(NAMES_FILE.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def intent_choices() -> Dict[str, IntentChoice]:
    """Every labellable intent, services first (catalog order), then queries, FAQ, control."""
    choices = {
        s.intent: IntentChoice(s.intent, s.name, s.code)
        for s in load_catalog().requestable
        if s.intent
    }
    for intent, spec in _names()["intents"].items():
        choices[intent] = IntentChoice(intent, spec["name"], spec["file"])
    return choices


def choice_list() -> List[Dict[str, str]]:
    """The picker's entries as JSON-ready dicts."""
    return [{"intent": c.intent, "name": c.name} for c in intent_choices().values()]


def entity_list() -> List[Dict[str, str]]:
    """Entities a trainer can mark on a message (the contract's, spec §2), with their names."""
    return [{"entity": e, "name": n} for e, n in _names()["entities"].items()]


def nlu_dir() -> Path:
    """Where labels are written: INTAKE_NLU_DIR (a scratch copy), else data/nlu."""
    return get_settings().nlu_dir


def data_file_for(intent: str, data_dir: Path = NLU_DIR) -> Path:
    """The training file a new example of `intent` belongs in."""
    try:
        return Path(data_dir) / f"{intent_choices()[intent].file_stem}.yml"
    except KeyError:
        raise UnknownIntent(intent) from None
