"""The trainer's retrain runs and the history of its models.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

Copied from bot/core/training/retrain.py, not imported. `active` is 1 while a run trains,
evaluates, goes live or is rolled back, else NULL: its unique index allows one at a time.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: Union[str, Sequence[str], None] = "0015"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

STATUSES = (
    "queued",
    "training",
    "evaluating",
    "ready",
    "rejected",
    "failed",
    "live",
    "replaced",
    "rolled_back",
)


def upgrade() -> None:
    """Create trainer_retrain_runs and trainer_model_history."""
    op.create_table(
        "trainer_retrain_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("stage", sa.String(length=200), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("train_steps", sa.Integer(), nullable=True),
        sa.Column("candidate_path", sa.Text(), nullable=True),
        sa.Column("serving_path", sa.Text(), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=True),
        sa.Column("verdict", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("live_at", sa.DateTime(), nullable=True),
        sa.Column("live_by", sa.String(length=64), nullable=True),
        sa.Column("previous_path", sa.Text(), nullable=True),
        sa.Column("replaced_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN (" + ", ".join(repr(s) for s in STATUSES) + ")",
            name=op.f("ck_trainer_retrain_runs_status"),
        ),
        sa.CheckConstraint(
            "active IS NULL OR active = 1", name=op.f("ck_trainer_retrain_runs_active_one")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trainer_retrain_runs")),
        sa.UniqueConstraint("active", name=op.f("uq_trainer_retrain_runs_active")),
    )
    op.create_index(op.f("ix_trainer_retrain_runs_status"), "trainer_retrain_runs", ["status"])
    op.create_table(
        "trainer_model_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["trainer_retrain_runs.id"],
            name=op.f("fk_trainer_model_history_run_id_trainer_retrain_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trainer_model_history")),
    )
    op.create_index(op.f("ix_trainer_model_history_at"), "trainer_model_history", ["at"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index(op.f("ix_trainer_model_history_at"), table_name="trainer_model_history")
    op.drop_table("trainer_model_history")
    op.drop_index(op.f("ix_trainer_retrain_runs_status"), table_name="trainer_retrain_runs")
    op.drop_table("trainer_retrain_runs")
