"""Tickets: the first-contact promise (complaints: contact within 24 h) and when it was kept.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add tickets.first_contact_due_at and tickets.first_contacted_at."""
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("first_contact_due_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("first_contacted_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    """Drop the two columns."""
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("first_contacted_at")
        batch.drop_column("first_contact_due_at")
