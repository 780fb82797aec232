"""item bodies: an email's text and HTML in their own table, beside its state

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

An item's row changes several times on its way out (claimed, sent), its bodies
never after planning or an edit. With the bodies in the row (3-4 kB), SQLite wrote
a whole page per item at every change; in `item_bodies` the rows that change are a
tenth of the size, so a claim or a settlement of 50 items writes a few pages.
ALTER TABLE ... DROP COLUMN on both backends (SQLite 3.35 or newer).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "item_bodies",
        sa.Column("item_id", Id, nullable=False, autoincrement=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_bodies_item_id_items")
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_bodies")),
    )
    op.execute(
        "INSERT INTO item_bodies (item_id, body_text, body_html) "
        "SELECT id, body_text, body_html FROM items"
    )
    op.drop_column("items", "body_text")
    op.drop_column("items", "body_html")


def downgrade() -> None:
    op.add_column("items", sa.Column("body_text", sa.Text(), nullable=False, server_default=""))
    op.add_column("items", sa.Column("body_html", sa.Text(), nullable=False, server_default=""))
    op.execute(
        "UPDATE items SET "
        "body_text = (SELECT b.body_text FROM item_bodies b WHERE b.item_id = items.id), "
        "body_html = (SELECT b.body_html FROM item_bodies b WHERE b.item_id = items.id) "
        "WHERE EXISTS (SELECT 1 FROM item_bodies b WHERE b.item_id = items.id)"
    )
    op.drop_table("item_bodies")
