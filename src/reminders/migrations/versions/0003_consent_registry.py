"""consent registry: one entry per address, confirmation links, an append-only history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Moves consent from the contacts' own columns (email_confirmed, email_opt_out) to the
registry: every contact address becomes an entry (two spellings differing in letter
case are one), its flags become `import` events dated when the contact was last
imported, and the `system` opt-outs recorded by the dispatcher are applied. Then the
history table refuses UPDATE and DELETE (triggers), so nothing in it can be changed.

SQLite cannot add a foreign key to an existing table without copying it, and copying
`contacts` would break the bookings that refer to it: there the new columns are added
with a REFERENCES clause and the old ones dropped in place (SQLite 3.35+).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from email_validator import EmailNotValidError, validate_email

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

APPEND_ONLY = "consent_events is append-only: record a new event instead"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "addresses",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("address_key", sa.String(length=320), nullable=False),
        sa.Column("opted_out_by", sa.String(length=20), nullable=True),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmation_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("staff_confirmation_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addresses")),
        sa.UniqueConstraint("address_key", name=op.f("uq_addresses_address_key")),
    )
    op.create_table(
        "confirmations",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("address_id", Id, nullable=False),
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["address_id"], ["addresses.id"], name=op.f("fk_confirmations_address_id_addresses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_confirmations")),
        sa.UniqueConstraint("nonce_hash", name=op.f("uq_confirmations_nonce_hash")),
    )
    op.create_index(
        op.f("ix_confirmations_address_id"), "confirmations", ["address_id"], unique=False
    )
    if sqlite:
        op.execute("ALTER TABLE contacts ADD COLUMN address_id INTEGER REFERENCES addresses (id)")
        op.execute(
            "ALTER TABLE consent_events ADD COLUMN registry_id INTEGER REFERENCES addresses (id)"
        )
    else:
        op.add_column("contacts", sa.Column("address_id", Id, nullable=True))
        op.create_foreign_key(
            op.f("fk_contacts_address_id_addresses"),
            "contacts",
            "addresses",
            ["address_id"],
            ["id"],
        )
        op.add_column("consent_events", sa.Column("registry_id", Id, nullable=True))
        op.create_foreign_key(
            op.f("fk_consent_events_registry_id_addresses"),
            "consent_events",
            "addresses",
            ["registry_id"],
            ["id"],
        )
    op.create_index(op.f("ix_contacts_address_id"), "contacts", ["address_id"], unique=False)
    op.create_index(
        "ix_consent_events_registry_id_id", "consent_events", ["registry_id", "id"], unique=False
    )

    _move_consent_to_the_registry(op.get_bind())

    if sqlite:
        op.execute("ALTER TABLE contacts DROP COLUMN email_confirmed")
        op.execute("ALTER TABLE contacts DROP COLUMN email_opt_out")
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER consent_events_no_{event.lower()} BEFORE {event} ON "
                f"consent_events BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )
    else:
        op.drop_column("contacts", "email_confirmed")
        op.drop_column("contacts", "email_opt_out")
        op.execute(
            "CREATE FUNCTION consent_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER consent_events_no_change BEFORE UPDATE OR DELETE ON consent_events "
            "FOR EACH ROW EXECUTE FUNCTION consent_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER consent_events_no_truncate BEFORE TRUNCATE ON consent_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION consent_events_append_only()"
        )


def _normalised(address: str) -> str | None:
    try:
        valid = validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    return f"{valid.local_part}@{valid.ascii_domain}"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _move_consent_to_the_registry(connection: sa.Connection) -> None:
    """Create an entry per contact address and turn the contacts' flags into events."""
    meta = sa.MetaData()
    contacts = sa.Table("contacts", meta, autoload_with=connection)
    addresses = sa.Table("addresses", meta, autoload_with=connection)
    events = sa.Table("consent_events", meta, autoload_with=connection)
    entries: dict[str, dict[str, Any]] = {}
    links: list[tuple[int, str]] = []
    rows = connection.execute(
        sa.select(
            contacts.c.id,
            contacts.c.email,
            contacts.c.email_confirmed,
            contacts.c.email_opt_out,
            contacts.c.updated_at,
        ).order_by(contacts.c.id)
    )
    new_events: list[dict[str, Any]] = []
    for contact_id, email, confirmed, opted_out, updated_at in rows:
        address = _normalised(email) if email else None
        if address is None:
            continue
        key = address.lower()
        at = _aware(updated_at)
        entry = entries.setdefault(key, {"address": address, "address_key": key, "updated_at": at})
        links.append((contact_id, key))
        flags = [("confirm", confirmed, "confirmed_at"), ("opt_out", opted_out, "opted_out_at")]
        for action, flag, column in flags:
            if flag and column not in entry:
                entry[column] = at
                if action == "opt_out":
                    entry["opted_out_by"] = "import"
                new_events.append(
                    {
                        "address": entry["address"],
                        "key": key,
                        "action": action,
                        "source": "import",
                        "method": "csv import",
                        "actor": "migration",
                        "detail": "flag of the contacts file, before the registry existed",
                        "occurred_at": at,
                        "recorded_at": at,
                    }
                )
    # The dispatcher's `system` opt-outs (hard bounces) of the previous revision.
    for address, occurred_at in connection.execute(
        sa.select(events.c.address, events.c.occurred_at).where(
            events.c.action == "opt_out", events.c.source == "system"
        )
    ):
        normal = _normalised(address) or address
        key = normal.lower()
        entry = entries.setdefault(
            key, {"address": normal, "address_key": key, "updated_at": _aware(occurred_at)}
        )
        entry["opted_out_by"] = "system"
        entry["opted_out_at"] = _aware(occurred_at)
    ids: dict[str, int] = {}
    for key, entry in entries.items():
        ids[key] = connection.execute(
            addresses.insert().values(**entry).returning(addresses.c.id)
        ).scalar_one()
    for contact_id, key in links:
        connection.execute(
            contacts.update().where(contacts.c.id == contact_id).values(address_id=ids[key])
        )
    for address, event_id in connection.execute(sa.select(events.c.address, events.c.id)):
        key = (_normalised(address) or address).lower()
        connection.execute(
            events.update()
            .where(events.c.id == event_id)
            .values(address=entries[key]["address"], registry_id=ids.get(key))
        )
    for event in new_events:
        key = event.pop("key")
        connection.execute(events.insert().values(**event, registry_id=ids[key]))


def downgrade() -> None:
    raise NotImplementedError("the consent registry cannot be undone: restore a backup")
