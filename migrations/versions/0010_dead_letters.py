"""Dead letters: outbound work given up after its bounded retries (Telegram polling first).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Column sizes and the CHECK constraint are copied from bot/core/dead_letters.py, not imported.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: Union[str, Sequence[str], None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create dead_letters."""
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.CheckConstraint("attempts >= 1", name=op.f("ck_dead_letters_attempts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index(
        "ix_dead_letters_source_created_at", "dead_letters", ["source", "created_at"], unique=False
    )


def downgrade() -> None:
    """Drop dead_letters."""
    op.drop_index("ix_dead_letters_source_created_at", table_name="dead_letters")
    op.drop_table("dead_letters")
