"""leases: claims carry a deadline; per-agency send slots for the rate limit

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        # A claim walks one status of a tab in anchor order and stops at its batch;
        # the expiry finds an agency's items by status too. It replaces the index on
        # (status, visible_until), which the planner preferred, sorting the whole tab.
        batch_op.drop_index("ix_items_status_visible_until")
        batch_op.create_index(
            "ix_items_status_agency_kind_anchor_on_id",
            ["status", "agency", "kind", "anchor_on", "id"],
            unique=False,
        )
    op.create_table(
        "send_slots",
        sa.Column("agency", sa.String(length=50), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agency", name=op.f("pk_send_slots")),
    )


def downgrade() -> None:
    op.drop_table("send_slots")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_status_agency_kind_anchor_on_id")
        batch_op.create_index(
            "ix_items_status_visible_until", ["status", "visible_until"], unique=False
        )
        batch_op.drop_column("lease_until")
