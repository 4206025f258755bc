"""The branch office of a ticket (config/areas.yml `branches`).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

The column size and index name are copied from bot/core/tickets/models.py and the naming
convention of bot/core/db.py, not imported. Existing tickets keep no branch (unassigned);
new tickets get theirs from the address when they are filed.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: Union[str, Sequence[str], None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add tickets.branch and its index."""
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("branch", sa.String(length=32), nullable=True))
    op.create_index(op.f("ix_tickets_branch"), "tickets", ["branch"], unique=False)


def downgrade() -> None:
    """Drop tickets.branch."""
    op.drop_index(op.f("ix_tickets_branch"), table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("branch")
