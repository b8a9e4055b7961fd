"""The rooms' task queue: ``bridge_task`` (issues 14-17).

Work that follows a study's sync (publishing its sharing manifest, mapping its reports and
dose) or stands beside it (migrating a legacy study) is queued here, one row per (kind,
key), with the study queue's rules: leases, an enqueue during a lease re-runs the task,
claims by ``ready_at`` through ``ix_bridge_task_kind_ready_at``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "bridge_task",
        sa.Column("kind", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", _json(), nullable=True),
        sa.Column("result", _json(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("due_seq", sa.Integer(), nullable=False),
        sa.Column("claimed_seq", sa.Integer(), nullable=False),
        sa.Column("ready_at", _ts(), nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", _ts(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("done_at", _ts(), nullable=True),
        sa.CheckConstraint("status IN ('due', 'leased', 'done', 'failed')",
                           name="ck_bridge_task_status"),
    )
    op.create_index("ix_bridge_task_kind_ready_at", "bridge_task", ["kind", "ready_at"])
    op.create_index("ix_bridge_task_kind_status", "bridge_task", ["kind", "status"])


def downgrade() -> None:
    op.drop_index("ix_bridge_task_kind_status", table_name="bridge_task")
    op.drop_index("ix_bridge_task_kind_ready_at", table_name="bridge_task")
    op.drop_table("bridge_task")
