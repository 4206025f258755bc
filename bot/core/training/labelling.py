"""A trainer's decision on one inbox item: label it (into training data) or discard it.

Labelling replaces personal data first (bot.core.training.pii), then writes the example into its
area file (bot.core.training.writer) — or, with ``patch_only``, returns the diff and writes
nothing — and records who decided what in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy.orm import Session

from bot.core.clock import to_utc_naive, utc_now
from bot.core.training.intents import NLU_DIR, data_file_for
from bot.core.training.models import DISCARD_REASONS, InboxItem, InboxLabel
from bot.core.training.pii import pseudonymise
from bot.core.training.writer import LabelledExample, label_patch, write_example


class LabelError(ValueError):
    """The label cannot be applied (unknown item or intent, bad span, already decided)."""


@dataclass
class LabelResult:
    item_id: int
    example: str  # the Rasa markup written (personal data replaced)
    data_file: str
    patch: Optional[str] = None


def _open_item(session: Session, item_id: int) -> InboxItem:
    item = session.get(InboxItem, item_id)
    if item is None:
        raise LabelError(f"inbox item {item_id} not found")
    if item.status != "open":
        raise LabelError(f"inbox item {item_id} is already {item.status}")
    return item


def check_entities(text: str, entities: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Entities as {start, end, entity[, value]} within `text`, non-overlapping, non-blank."""
    cleaned: List[Dict[str, Any]] = []
    for entity in sorted(entities, key=lambda e: int(e["start"])):
        start, end, name = int(entity["start"]), int(entity["end"]), str(entity["entity"])
        if not (0 <= start < end <= len(text)) or not text[start:end].strip():
            raise LabelError(f"entity {name} span {start}-{end} is outside the text")
        if cleaned and start < cleaned[-1]["end"]:
            raise LabelError(f"entity {name} overlaps {cleaned[-1]['entity']}")
        item = {"start": start, "end": end, "entity": name}
        if entity.get("value") not in (None, ""):
            item["value"] = entity["value"]
        cleaned.append(item)
    return cleaned


def label_item(
    session: Session,
    item_id: int,
    intent: str,
    entities: Sequence[Dict[str, Any]],
    user: str,
    data_dir: Path = NLU_DIR,
    patch_only: bool = False,
) -> LabelResult:
    """Label inbox item `item_id` as `intent` with `entities` (spans of the item's text)."""
    item = _open_item(session, item_id)
    try:
        path = data_file_for(intent, data_dir)
    except ValueError:
        raise LabelError(f"unknown intent {intent}") from None
    text, moved = pseudonymise(item.text, check_entities(item.text, entities))
    example = LabelledExample(intent, text, moved)
    if patch_only:
        return LabelResult(
            item.id, example.markup, path.name, patch=label_patch([example], data_dir)
        )
    write_example(example, user, data_dir)
    session.add(
        InboxLabel(
            item_id=item.id,
            intent=intent,
            example=example.markup,
            data_file=path.name,
            labelled_by=user,
            labelled_at=to_utc_naive(utc_now()),
        )
    )
    item.status = "labelled"
    session.flush()
    return LabelResult(item.id, example.markup, path.name)


def discard_item(session: Session, item_id: int, reason: str, user: str) -> None:
    """Mark an item as not for training (noise, personal data, duplicate)."""
    if reason not in DISCARD_REASONS:
        raise LabelError(f"discard reason must be one of {DISCARD_REASONS}")
    item = _open_item(session, item_id)
    session.add(
        InboxLabel(
            item_id=item.id,
            discard_reason=reason,
            labelled_by=user,
            labelled_at=to_utc_naive(utc_now()),
        )
    )
    item.status = "discarded"
    session.flush()
