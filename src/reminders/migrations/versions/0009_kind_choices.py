"""kind choices: a contact may refuse one kind of email and keep the others

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

`kind_choices` keeps the current choice per (address, kind), keyed so the
dispatcher's claim finds a refusal by its primary key; every change is also a
`refuse_kind` / `accept_kind` event of the history, whose new `kind` column names
the kind. The history stays append-only: ADD COLUMN keeps its triggers (no table
copy, on SQLite either).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kind_choices",
        sa.Column("address_id", Id, nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("receive", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["address_id"], ["addresses.id"], name=op.f("fk_kind_choices_address_id_addresses")
        ),
        sa.PrimaryKeyConstraint("address_id", "kind", name=op.f("pk_kind_choices")),
    )
    # Not batch_alter_table: on SQLite it would copy the table and lose its triggers.
    op.add_column("consent_events", sa.Column("kind", sa.String(length=50), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on both backends: no rewrite that would touch the rows.
    op.drop_column("consent_events", "kind")
    op.drop_table("kind_choices")
