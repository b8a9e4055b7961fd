"""Warnings of each study's latest mapping: ``bridge_mapping_warning``.

The mapping engine reports values it could not use (an unknown body part, an invalid date,
a coding scheme the mapping lacks); until this revision the sync dropped them, so nobody
could tell which studies were mapped with warnings.  One row per warning of the latest
mapping of a study, replaced at every attempt that mapped it.  Indexed by study (replace,
show) and by code (``imaging-bridge warnings list --code``, counts per code).  No existing
data changes; a downgrade drops only this table.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "bridge_mapping_warning",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("archive", sa.String(64), nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("place", sa.String(128), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("value", sa.String(64), nullable=True),
    )
    op.create_index(
        "ix_bridge_mapping_warning_study", "bridge_mapping_warning", ["archive", "study_uid"]
    )
    op.create_index("ix_bridge_mapping_warning_code", "bridge_mapping_warning", ["code"])


def downgrade() -> None:
    op.drop_index("ix_bridge_mapping_warning_code", table_name="bridge_mapping_warning")
    op.drop_index("ix_bridge_mapping_warning_study", table_name="bridge_mapping_warning")
    op.drop_table("bridge_mapping_warning")
