"""planning versions: a same-day pass skips an agency whose data and kinds did not change

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every import that writes an agency's bookings or contacts adds one to its
    # version, in the import's own transaction; a pass records the version it read.
    # Versions, not times: an import that commits while a pass runs is never missed.
    op.create_table(
        "data_versions",
        sa.Column("agency", sa.String(length=50), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("agency", name=op.f("pk_data_versions")),
    )
    with op.batch_alter_table("planning_passes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planned_version", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("planned_kinds", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("planning_passes", schema=None) as batch_op:
        batch_op.drop_column("planned_kinds")
        batch_op.drop_column("planned_version")
    op.drop_table("data_versions")
