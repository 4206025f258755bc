"""Absence on the staff account: since when, why, and who covers.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

Column sizes are copied from bot/core/staff.py, not imported. Nobody starts absent; a
supervisor (or the person themselves) marks it on the console and clears it when they are back.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: Union[str, Sequence[str], None] = "0014"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add console_users.absent_since, absence_reason and covered_by."""
    with op.batch_alter_table("console_users") as batch:
        batch.add_column(sa.Column("absent_since", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("absence_reason", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("covered_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop the absence columns."""
    with op.batch_alter_table("console_users") as batch:
        batch.drop_column("covered_by")
        batch.drop_column("absence_reason")
        batch.drop_column("absent_since")
