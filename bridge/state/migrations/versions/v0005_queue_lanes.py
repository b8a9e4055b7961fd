"""Priority lanes in the work queue: ``bridge_study.lane`` (issue 19).

Until this revision the queue was strictly "oldest due first", so a study stored through
the STOW proxy behind a 2,000-study backfill was claimed 2,001st.  Each row now says which
lane it waits in (``realtime`` or ``bulk``, see ``bridge.state.enums.LANE_OF_REASON``) and
a claim reads each lane's ready rows from ``ix_bridge_study_lane_ready_at`` (or
``ix_bridge_study_archive_lane_ready_at`` for one archive): still one index range scan per
lane, already in claim order.  These replace the indexes on ``ready_at`` and ``(archive,
ready_at)`` of revision 0002, which no query needs any more (each would only slow down
every write of the queue).

Existing rows: queued ones (due, waiting, leased) last marked by a real-time source
(reason ``stow``, ``notification`` or ``poll``) go to the real-time lane, every other row to
the bulk lane.  The column's server default ``bulk`` also serves a bridge older than this
revision still writing during a rolling upgrade.  No CHECK constraint: SQLite can only add
one by copying the whole table; the store writes ``Lane`` values only.

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "bridge_study",
        sa.Column("lane", sa.String(16), nullable=False, server_default="bulk"),
    )
    op.execute(
        "UPDATE bridge_study SET lane = 'realtime'"
        " WHERE status IN ('due', 'waiting', 'leased')"
        " AND reason IN ('stow', 'notification', 'poll')"
    )
    op.create_index("ix_bridge_study_lane_ready_at", "bridge_study", ["lane", "ready_at"])
    op.create_index(
        "ix_bridge_study_archive_lane_ready_at", "bridge_study", ["archive", "lane", "ready_at"]
    )
    op.drop_index("ix_bridge_study_archive_ready_at", table_name="bridge_study")
    op.drop_index("ix_bridge_study_ready_at", table_name="bridge_study")


def downgrade() -> None:
    op.create_index("ix_bridge_study_ready_at", "bridge_study", ["ready_at"])
    op.create_index("ix_bridge_study_archive_ready_at", "bridge_study", ["archive", "ready_at"])
    op.drop_index("ix_bridge_study_archive_lane_ready_at", table_name="bridge_study")
    op.drop_index("ix_bridge_study_lane_ready_at", table_name="bridge_study")
    op.drop_column("bridge_study", "lane")
