"""Hand-backs through the notice outbox: a notice may belong to a hand-over instead of a ticket.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

Kinds in the CHECK constraint are copied from bot/core/notifications/models.py, not imported.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: Union[str, Sequence[str], None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD_KINDS = "kind IN ('ticket_status', 'handoff_timeout')"
NEW_KINDS = "kind IN ('ticket_status', 'handoff_timeout', 'handback', 'handback_rating')"


def upgrade() -> None:
    """Nullable ticket, a hand-over reference, two more kinds."""
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("ticket_id", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("ticket_status", existing_type=sa.String(length=16), nullable=True)
        batch.add_column(sa.Column("handoff_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_notifications_handoff_id_handoffs"), "handoffs", ["handoff_id"], ["id"]
        )
        batch.create_index(op.f("ix_notifications_handoff_id"), ["handoff_id"], unique=False)
        batch.create_index(
            "ix_notifications_conversation_id_state", ["conversation_id", "state"], unique=False
        )
        batch.drop_constraint(op.f("ck_notifications_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_notifications_kind"), NEW_KINDS)


def downgrade() -> None:
    """Back to ticket notices only (hand-back notices are dropped)."""
    op.execute("DELETE FROM notifications WHERE ticket_id IS NULL")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint(op.f("ck_notifications_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_notifications_kind"), OLD_KINDS)
        batch.drop_index("ix_notifications_conversation_id_state")
        batch.drop_index(op.f("ix_notifications_handoff_id"))
        batch.drop_constraint(op.f("fk_notifications_handoff_id_handoffs"), type_="foreignkey")
        batch.drop_column("handoff_id")
        batch.alter_column("ticket_status", existing_type=sa.String(length=16), nullable=False)
        batch.alter_column("ticket_id", existing_type=sa.Integer(), nullable=False)
