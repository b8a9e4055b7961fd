"""Replay memory of signed notifications, shared by every process using the store.

``POST /notifications`` refuses a signature already used within the tolerance window.
Before this revision that memory was kept in each process, so with several ``imaging-bridge serve``
processes behind a load balancer a captured request could be replayed to another one.
``bridge_webhook_signature`` holds each accepted signature until it expires; the index on
``expires_at`` makes the purge of expired rows a range scan.  No existing data changes.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "bridge_webhook_signature",
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature"),
    )
    op.create_index(
        "ix_bridge_webhook_signature_expires_at", "bridge_webhook_signature", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(
        "ix_bridge_webhook_signature_expires_at", table_name="bridge_webhook_signature"
    )
    op.drop_table("bridge_webhook_signature")
