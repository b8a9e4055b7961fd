"""Base schema: studies (work queue), failures, checkpoints, audit.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_STATUSES = "'due', 'leased', 'synced', 'waiting', 'failed', 'deleted'"


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _serial() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bridge_study",
        sa.Column("archive", sa.String(64), nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(16), nullable=True),
        sa.Column("fingerprint", sa.String(128), nullable=True),
        sa.Column("content_hash", sa.String(128), nullable=True),
        sa.Column("fhir_id", sa.String(64), nullable=True),
        sa.Column("fhir_version", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _ts(), nullable=True),
        sa.Column("last_error_kind", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", _ts(), nullable=True),
        sa.Column("due_seq", sa.Integer(), nullable=False),
        sa.Column("claimed_seq", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("synced_at", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("archive", "study_uid"),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_bridge_study_status"),
    )
    op.create_index("ix_bridge_study_status_next", "bridge_study", ["status", "next_attempt_at"])
    op.create_index("ix_bridge_study_study_uid", "bridge_study", ["study_uid"])

    op.create_table(
        "bridge_failure",
        sa.Column("id", _serial(), primary_key=True, autoincrement=True),
        sa.Column("archive", sa.String(64), nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "operation_outcome",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("permanent", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_bridge_failure_study_uid", "bridge_failure", ["study_uid"])

    op.create_table(
        "bridge_checkpoint",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
    )

    op.create_table(
        "bridge_audit",
        sa.Column("id", _serial(), primary_key=True, autoincrement=True),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("archive", sa.String(64), nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("fhir_type", sa.String(64), nullable=False),
        sa.Column("fhir_id", sa.String(64), nullable=True),
        sa.Column("fhir_version", sa.String(64), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
    )
    op.create_index("ix_bridge_audit_study_uid", "bridge_audit", ["study_uid"])


def downgrade() -> None:
    op.drop_table("bridge_audit")
    op.drop_table("bridge_checkpoint")
    op.drop_table("bridge_failure")
    op.drop_table("bridge_study")
