"""Trainer inbox: misunderstood customer messages and the labels trainers gave them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Allowed values in the CHECK constraints are copied from bot/core/training/models.py, not imported.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create trainer_inbox_items and trainer_labels."""
    op.create_table(
        "trainer_inbox_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text_key", sa.String(length=512), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("predicted_intent", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'labelled', 'discarded')",
            name=op.f("ck_trainer_inbox_items_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trainer_inbox_items")),
        sa.UniqueConstraint("text_key", name=op.f("uq_trainer_inbox_items_text_key")),
    )
    op.create_index(
        op.f("ix_trainer_inbox_items_status"), "trainer_inbox_items", ["status"], unique=False
    )
    op.create_table(
        "trainer_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("example", sa.Text(), nullable=True),
        sa.Column("data_file", sa.String(length=255), nullable=True),
        sa.Column("discard_reason", sa.String(length=32), nullable=True),
        sa.Column("labelled_by", sa.String(length=64), nullable=False),
        sa.Column("labelled_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "(intent IS NOT NULL) OR (discard_reason IS NOT NULL)",
            name=op.f("ck_trainer_labels_label_or_discard"),
        ),
        sa.CheckConstraint(
            "discard_reason IS NULL OR discard_reason IN ('noise', 'personal_data', 'duplicate')",
            name=op.f("ck_trainer_labels_discard_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["trainer_inbox_items.id"],
            name=op.f("fk_trainer_labels_item_id_trainer_inbox_items"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trainer_labels")),
    )
    op.create_index(op.f("ix_trainer_labels_item_id"), "trainer_labels", ["item_id"], unique=False)


def downgrade() -> None:
    """Drop the trainer tables."""
    op.drop_index(op.f("ix_trainer_labels_item_id"), table_name="trainer_labels")
    op.drop_table("trainer_labels")
    op.drop_index(op.f("ix_trainer_inbox_items_status"), table_name="trainer_inbox_items")
    op.drop_table("trainer_inbox_items")
