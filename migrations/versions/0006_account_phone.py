"""Billing accounts: the contact phone on file, whose last four digits verify a bill query.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add billing_accounts.phone."""
    with op.batch_alter_table("billing_accounts") as batch:
        batch.add_column(sa.Column("phone", sa.String(length=20), nullable=True))


def downgrade() -> None:
    """Drop billing_accounts.phone."""
    with op.batch_alter_table("billing_accounts") as batch:
        batch.drop_column("phone")
