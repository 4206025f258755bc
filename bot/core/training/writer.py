"""Write labelled examples into data/nlu/<area>.yml, keeping the file as people wrote it.

ruamel.yaml round-trips our NLU files byte for byte (comments, order, block scalars), so a
new example changes exactly one line: it is appended to its intent's ``examples: |`` block
(a new ``- intent:`` entry at the end when the file has none yet). Who labelled what and
when goes to data/nlu/LABELS.log, one tab-separated line per label (append-only, so it
merges cleanly in git; Rasa reads only .yml/.json/.md from data/). `label_patch` returns the
same change as a unified diff instead, for review (`git apply` / `patch -p1`).

Several trainers (console workers, the CLI) may label into the same file at once: the
read-modify-write of an area file runs under an exclusive ``fcntl.flock`` on a lock file next
to it (``.<file>.lock``), and the new text replaces the file atomically (a temporary file in
the same directory, then ``os.replace``), so a reader never sees half a file and no writer
overwrites another's example.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import fcntl
import io
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import LiteralScalarString

from bot.core.clock import local_zone
from bot.core.training.intents import NLU_DIR, data_file_for

LABELS_LOG = "LABELS.log"


@dataclass
class LabelledExample:
    """An example ready for training data (personal data already replaced)."""

    intent: str
    text: str
    entities: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def markup(self) -> str:
        return to_markup(self.text, self.entities)


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True  # type: ignore[assignment]  # ruamel's own attribute
    yaml.width = 4096  # type: ignore[assignment]  # never re-wrap long Chinese lines
    yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


def to_markup(text: str, entities: Sequence[Dict[str, Any]]) -> str:
    """Rasa's inline annotation: ``[span](entity)`` or ``[span]{"entity": …, "value": …}``.

    Not Rasa's TrainingDataWriter.generate_message: it escapes Chinese values to \\uXXXX,
    unlike every hand-written file in data/nlu.
    """
    text = re.sub(r"\s", " ", text)  # one example is one line (same length: spans stay valid)
    out, cursor = [], 0
    for entity in sorted(entities, key=lambda e: e["start"]):
        span = text[entity["start"] : entity["end"]]
        out.append(text[cursor : entity["start"]])
        value = entity.get("value")
        if value is None or value == span:
            out.append(f"[{span}]({entity['entity']})")
        else:
            attributes = json.dumps(
                {"entity": entity["entity"], "value": value}, ensure_ascii=False
            )
            out.append(f"[{span}]{attributes}")
        cursor = entity["end"]
    return "".join(out) + text[cursor:]


def with_example(source: str, intent: str, markup: str) -> str:
    """The YAML text `source` with `markup` added under `intent` (unchanged if already there)."""
    yaml = _yaml()
    document = yaml.load(source) if source.strip() else None
    if document is None:
        document = CommentedMap([("version", "3.1"), ("nlu", [])])
    entries = document.setdefault("nlu", [])
    line = f"- {markup}\n"
    entry = next((e for e in entries if e.get("intent") == intent), None)
    if entry is None:
        entries.append(CommentedMap([("intent", intent), ("examples", LiteralScalarString(line))]))
    else:
        examples = str(entry.get("examples") or "")
        if line in examples.splitlines(keepends=True) or line.rstrip("\n") in examples.splitlines():
            return source
        if examples and not examples.endswith("\n"):
            examples += "\n"
        entry["examples"] = LiteralScalarString(examples + line)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _relative(path: Path, data_dir: Path) -> str:
    """`data/nlu/<file>` as the repository knows it, wherever `data_dir` is checked out."""
    return str(path.resolve().relative_to(Path(data_dir).resolve().parent.parent))


def lock_path(path: Path) -> Path:
    """The lock file guarding `path`: ``.<name>.lock`` in the same directory."""
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`'s lock file (blocks until other writers are done).

    ``flock`` locks belong to the open file description, so two threads of one process exclude
    each other as well as two processes do.
    """
    with open(lock_path(path), "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically: a temporary file beside it, then ``os.replace``.

    The file keeps its permissions (a new one gets rw-r--r--); a file without write permission
    is refused, as a plain write would be, although replacing it would be possible.
    """
    if path.exists():
        if not os.access(path, os.W_OK):
            raise PermissionError(f"{path.name} is read-only")
        mode = stat.S_IMODE(path.stat().st_mode)
    else:
        mode = 0o644
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_markup(
    intent: str,
    markup: str,
    user: str,
    path: Path,
    data_dir: Path = NLU_DIR,
    when: dt.datetime | None = None,
) -> bool:
    """Add the example `markup` of `intent` to `path` and log it, under the file's lock.

    Returns False when the example was there already (nothing written, nothing logged).
    """
    with locked(path):
        source = path.read_text(encoding="utf-8") if path.exists() else ""
        updated = with_example(source, intent, markup)
        if updated == source:
            return False
        replace_text(path, updated)
        when = when or dt.datetime.now(local_zone())
        log_path = Path(data_dir) / LABELS_LOG
        with locked(log_path), log_path.open("a", encoding="utf-8") as log:
            log.write(
                f"{when.isoformat(timespec='seconds')}\t{user}\t{intent}\t{path.name}\t{markup}\n"
            )
    return True


def write_example(
    example: LabelledExample, user: str, data_dir: Path = NLU_DIR, when: dt.datetime | None = None
) -> Path:
    """Append `example` to its area file and log who/when; returns the file written."""
    path = data_file_for(example.intent, data_dir)
    write_markup(example.intent, example.markup, user, path, data_dir, when)
    return path


def label_patch(examples: Sequence[LabelledExample], data_dir: Path = NLU_DIR) -> str:
    """A unified diff adding `examples` to their area files (nothing is written)."""
    changed: Dict[Path, List[str]] = {}
    for example in examples:
        path = data_file_for(example.intent, data_dir)
        if path not in changed:
            changed[path] = [path.read_text(encoding="utf-8") if path.exists() else ""]
        changed[path].append(with_example(changed[path][-1], example.intent, example.markup))
    diff: List[str] = []
    for path, versions in changed.items():
        name = _relative(path, data_dir)
        diff.extend(
            difflib.unified_diff(
                versions[0].splitlines(keepends=True),
                versions[-1].splitlines(keepends=True),
                fromfile=f"a/{name}",
                tofile=f"b/{name}",
            )
        )
    return "".join(diff)
