"""A trainer's decision on one inbox item: label it (into training data) or discard it.

Labelling replaces personal data first (bot.core.training.pii), records who decided what in the
database and commits, and only then writes the example into its area file
(bot.core.training.writer) — or, with ``patch_only``, returns the diff and records and writes
nothing. A label is never lost to a failed write: it stays in the database with its
``write_error`` (and ``written_at`` NULL) until `flush_labels` (``python -m bot trainer
flush``) writes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.core.clock import to_local, to_utc_naive, utc_now
from bot.core.training.intents import NLU_DIR, data_file_for
from bot.core.training.models import DISCARD_REASONS, InboxItem, InboxLabel
from bot.core.training.pii import pseudonymise
from bot.core.training.writer import LabelledExample, label_patch, write_markup

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000


class LabelError(ValueError):
    """The label cannot be applied (unknown item or intent, bad span, already decided)."""


@dataclass
class LabelResult:
    item_id: int
    example: str  # the Rasa markup written (personal data replaced)
    data_file: str
    patch: Optional[str] = None
    label_id: Optional[int] = None  # None for a patch (nothing recorded)
    written: bool = False
    write_error: Optional[str] = None

    @property
    def message(self) -> str:
        """What the trainer is told, in Chinese."""
        if self.patch is not None:
            return "已生成补丁（未写入训练文件）"
        if self.written:
            return f"已写入 {self.data_file}：{self.example}"
        return (
            f"已记录，写入训练文件失败：{self.write_error}，"
            "稍后可重试（python -m bot trainer flush）"
        )


@dataclass
class FlushReport:
    """What `flush_labels` did: ids of labels now written, and (id, error) of those still not."""

    written: List[int] = field(default_factory=list)
    failed: List[Tuple[int, str]] = field(default_factory=list)


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


def _decide(session: Session, item: InboxItem, status: str) -> None:
    """Move `item` from open to `status`, unless another trainer decided it meanwhile."""
    claimed = session.execute(
        update(InboxItem)
        .where(InboxItem.id == item.id, InboxItem.status == "open")
        .values(status=status)
        .execution_options(synchronize_session="fetch")
    )
    if claimed.rowcount != 1:
        raise LabelError(f"inbox item {item.id} was decided by someone else meanwhile")


def write_label(session: Session, label: InboxLabel, data_dir: Path = NLU_DIR) -> bool:
    """Write `label`'s example into its data file; sets written_at, or write_error on failure.

    Does not commit. Writing a label twice is harmless (an example already there is skipped).
    """
    try:
        write_markup(
            label.intent,
            label.example,
            label.labelled_by,
            Path(data_dir) / label.data_file,
            data_dir,
            when=to_local(label.labelled_at),
        )
    except Exception as error:  # any failure: the label stays, with its reason
        log.warning("label %s not written to %s: %r", label.id, label.data_file, error)
        label.write_error = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
        return False
    label.written_at = to_utc_naive(utc_now())
    label.write_error = None
    return True


def label_item(
    session: Session,
    item_id: int,
    intent: str,
    entities: Sequence[Dict[str, Any]],
    user: str,
    data_dir: Path = NLU_DIR,
    patch_only: bool = False,
) -> LabelResult:
    """Label inbox item `item_id` as `intent` with `entities` (spans of the item's text).

    Commits `session` once the label is recorded, then writes the data file and commits the
    outcome (written_at, or write_error: see `LabelResult.written`). Nothing is recorded or
    written with `patch_only`.
    """
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
    _decide(session, item, "labelled")
    label = InboxLabel(
        item_id=item.id,
        intent=intent,
        example=example.markup,
        data_file=path.name,
        labelled_by=user,
        labelled_at=to_utc_naive(utc_now()),
    )
    session.add(label)
    session.commit()  # the label is safe before the file is touched
    written = write_label(session, label, data_dir)
    session.commit()
    return LabelResult(
        item.id,
        example.markup,
        path.name,
        label_id=label.id,
        written=written,
        write_error=label.write_error,
    )


def discard_item(session: Session, item_id: int, reason: str, user: str) -> None:
    """Mark an item as not for training (noise, personal data, duplicate)."""
    if reason not in DISCARD_REASONS:
        raise LabelError(f"discard reason must be one of {DISCARD_REASONS}")
    item = _open_item(session, item_id)
    _decide(session, item, "discarded")
    session.add(
        InboxLabel(
            item_id=item.id,
            discard_reason=reason,
            labelled_by=user,
            labelled_at=to_utc_naive(utc_now()),
        )
    )
    session.flush()


_UNWRITTEN = (InboxLabel.intent.isnot(None), InboxLabel.written_at.is_(None))


def unwritten_count(session: Session) -> int:
    """Labels recorded but not (yet) in their data file."""
    query = select(func.count()).select_from(InboxLabel).where(*_UNWRITTEN)
    return int(session.execute(query).scalar_one())


def flush_labels(session: Session, data_dir: Path = NLU_DIR) -> FlushReport:
    """Write every label not written yet (oldest first), committing after each one."""
    query = select(InboxLabel).where(*_UNWRITTEN).order_by(InboxLabel.id)
    report = FlushReport()
    for label in session.execute(query).scalars().all():
        if write_label(session, label, data_dir):
            report.written.append(label.id)
        else:
            report.failed.append((label.id, label.write_error or ""))
        session.commit()
    return report
