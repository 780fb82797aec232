"""items: who last edited an item, and whether it was created while auto_send was on

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edited_by", sa.String(length=100), nullable=True))
        # Items already queued were created while staff reviewed them: never auto-sent.
        batch_op.add_column(
            sa.Column("auto_send", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_column("auto_send")
        batch_op.drop_column("edited_by")
