"""Escalation of tickets not resolved on time: the level reached and when.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01

Column types are copied from bot/core/tickets/models.py, not imported. Existing tickets start
at level 0; the console's background loop escalates those already late on its next run.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: Union[str, Sequence[str], None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add tickets.escalation_level (0) and tickets.escalated_at."""
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column("escalation_level", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("escalated_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    """Drop the escalation columns."""
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("escalated_at")
        batch.drop_column("escalation_level")
