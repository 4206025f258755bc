"""Trainer inbox keyed by a hash; labels recorded first, written to their data file after.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

``trainer_inbox_items.text_key`` was VARCHAR(512) and unique: on PostgreSQL one message longer
than that made every inbox refresh fail (and a long unique text would overflow a btree index
entry anyway). The key becomes ``Text`` without an index; ``key_hash`` (SHA-256 hex of the
key, unique) is what the inbox looks items up by. Existing rows are back-filled here.

``trainer_labels`` get ``written_at`` and ``write_error``: a label is committed before its
example goes into data/nlu, and ``python -m bot trainer flush`` retries the ones not written.
Labels made before this revision were written before they were recorded, so they get
``written_at = labelled_at``.

The hash is computed here (hashlib), not imported from bot/core/training/models.py.
"""

import hashlib
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_items = sa.table(
    "trainer_inbox_items",
    sa.column("id", sa.Integer()),
    sa.column("text_key", sa.Text()),
    sa.column("key_hash", sa.String(64)),
)
_labels = sa.table(
    "trainer_labels",
    sa.column("intent", sa.String(64)),
    sa.column("labelled_at", sa.DateTime()),
    sa.column("written_at", sa.DateTime()),
)


def _backfill_key_hash() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(_items.c.id, _items.c.text_key)).all()
    for item_id, text_key in rows:
        digest = hashlib.sha256(text_key.encode("utf-8")).hexdigest()
        connection.execute(_items.update().where(_items.c.id == item_id).values(key_hash=digest))


def upgrade() -> None:
    """text_key → Text (no unique), key_hash unique + indexed; written_at/write_error on labels."""
    with op.batch_alter_table("trainer_inbox_items") as batch:
        batch.add_column(sa.Column("key_hash", sa.String(length=64), nullable=True))
    _backfill_key_hash()
    with op.batch_alter_table("trainer_inbox_items") as batch:
        batch.drop_constraint(op.f("uq_trainer_inbox_items_text_key"), type_="unique")
        batch.alter_column(
            "text_key",
            existing_type=sa.String(length=512),
            type_=sa.Text(),
            existing_nullable=False,
        )
        batch.alter_column("key_hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_index(op.f("ix_trainer_inbox_items_key_hash"), ["key_hash"], unique=True)

    with op.batch_alter_table("trainer_labels") as batch:
        batch.add_column(sa.Column("written_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("write_error", sa.Text(), nullable=True))
    op.execute(
        _labels.update()
        .where(_labels.c.intent.isnot(None))
        .values(written_at=_labels.c.labelled_at)
    )


def downgrade() -> None:
    """Back to VARCHAR(512) + unique text_key (items with longer keys are deleted on PostgreSQL)."""
    with op.batch_alter_table("trainer_labels") as batch:
        batch.drop_column("write_error")
        batch.drop_column("written_at")

    if op.get_bind().dialect.name != "sqlite":  # SQLite never enforced the length
        op.execute(_items.delete().where(sa.func.length(_items.c.text_key) > 512))
    with op.batch_alter_table("trainer_inbox_items") as batch:
        batch.drop_index(op.f("ix_trainer_inbox_items_key_hash"))
        batch.drop_column("key_hash")
        batch.alter_column(
            "text_key",
            existing_type=sa.Text(),
            type_=sa.String(length=512),
            existing_nullable=False,
        )
        batch.create_unique_constraint(op.f("uq_trainer_inbox_items_text_key"), ["text_key"])
