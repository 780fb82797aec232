"""import flags: what the last contacts file said of each contact's consent

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An import applies a flag to the registry only when it differs from what the
    # previous import said: re-importing an unchanged file changes nothing, so it
    # never undoes what staff recorded since. NULL: imported before this revision.
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("imported_confirmed", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("imported_opt_out", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("imported_opt_out")
        batch_op.drop_column("imported_confirmed")
