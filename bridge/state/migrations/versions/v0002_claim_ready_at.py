"""Claim by one indexed column: ``bridge_study.ready_at``.

Revision 0001 found claimable rows with ``(status IN (due, waiting) AND next_attempt_at <=
now) OR (status = leased AND lease_expires_at < now)``, which no single index serves and
which sorts every candidate before taking the first few.  ``ready_at`` holds the moment a
row becomes claimable (next_attempt_at for due/waiting rows, lease_expires_at for leased
rows, NULL otherwise), so a claim is one range scan of ``ix_bridge_study_ready_at`` (or
of ``ix_bridge_study_archive_ready_at`` for one archive), already in claim order.
Existing rows get their ``ready_at`` computed here; no data is lost.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("bridge_study", sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE bridge_study SET ready_at = CASE"
        " WHEN status IN ('due', 'waiting') THEN next_attempt_at"
        " WHEN status = 'leased' THEN lease_expires_at"
        " ELSE NULL END"
    )
    # a leased row's next_attempt_at now means "due time of an event during the lease"
    op.execute("UPDATE bridge_study SET next_attempt_at = NULL WHERE status = 'leased'")
    op.create_index("ix_bridge_study_ready_at", "bridge_study", ["ready_at"])
    op.create_index("ix_bridge_study_archive_ready_at", "bridge_study", ["archive", "ready_at"])
    op.drop_index("ix_bridge_study_status_next", table_name="bridge_study")
    op.create_index("ix_bridge_study_status", "bridge_study", ["status"])


def downgrade() -> None:
    op.drop_index("ix_bridge_study_status", table_name="bridge_study")
    op.create_index("ix_bridge_study_status_next", "bridge_study", ["status", "next_attempt_at"])
    op.drop_index("ix_bridge_study_archive_ready_at", table_name="bridge_study")
    op.drop_index("ix_bridge_study_ready_at", table_name="bridge_study")
    op.drop_column("bridge_study", "ready_at")
