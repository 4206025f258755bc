"""Every change of agent on a hand-over: transfers and absences (who, from, to, why).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02

A JSON list on the hand-over itself (hand-overs have no history table); old rows start empty.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: Union[str, Sequence[str], None] = "0016"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add handoffs.moves."""
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(sa.Column("moves", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop handoffs.moves."""
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("moves")
