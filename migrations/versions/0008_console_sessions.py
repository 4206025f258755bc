"""Console users: session versions (logout everywhere), lockout after failed sign-ins.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add session_version, failed_logins, locked_until and last_login_at."""
    with op.batch_alter_table("console_users") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("last_login_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    """Drop the four columns."""
    with op.batch_alter_table("console_users") as batch:
        for column in ("last_login_at", "locked_until", "failed_logins", "session_version"):
            batch.drop_column(column)
