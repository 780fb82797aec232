"""The consent registry: one row per address, its append-only history, confirmation links.

The history is written here and nowhere else, by INSERT only (the database refuses
UPDATE and DELETE on it as well). Addresses are found by their key (normalised, then
case-folded), so contacts whose addresses differ only in letter case share one entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, text, update

from ..consent import Action, AddressConsent, ConsentEvent, Source, address_key
from ..errors import InvalidAddress
from ..schema import (
    AddressRow,
    BookingRow,
    ConfirmationRow,
    ConsentEventRow,
    ContactRow,
    DeliveryRow,
    ItemRow,
)
from ._base import StoreBase
from ._rows import batch_json, chunks, consent_from, event_from, report_filters

#: What `consent_from` reads of an entry, and its key.
_ENTRY_COLUMNS = (
    AddressRow.id,
    AddressRow.address_key,
    AddressRow.address,
    AddressRow.opted_out_by,
    AddressRow.opted_out_at,
    AddressRow.confirmed_at,
    AddressRow.confirmation_sent_at,
    AddressRow.staff_confirmation_sent_at,
)


#: The columns of a history event, in the order `_event_row` gives them.
_EVENT_COLUMNS = (
    "address",
    "registry_id",
    "action",
    "source",
    "method",
    "actor",
    "detail",
    "kind",
    "occurred_at",
    "recorded_at",
)


def _event_row(entry_id: int, event: ConsentEvent) -> tuple[Any, ...]:
    return (
        event.address,
        entry_id,
        str(event.action),
        str(event.source),
        event.method,
        event.actor,
        event.detail,
        event.kind,
        event.occurred_at,
        event.recorded_at,
    )


class ConsentStore(StoreBase):
    """Registry entries, their history and the confirmation links sent."""

    def address_ids(self, addresses: Iterable[str]) -> dict[str, int]:
        """Return the entry id of each normalised address, creating missing entries.

        The result is keyed by address key. A concurrent creation of the same entry
        loses quietly (ON CONFLICT DO NOTHING) and the existing id is returned.
        """
        wanted: dict[str, str] = {}
        for address in addresses:
            wanted.setdefault(address_key(address), address)  # the first spelling seen
        if not wanted:
            return {}
        now = self._now()
        statement = self._insert(AddressRow.__table__).on_conflict_do_nothing()
        rows = [
            {"address": address, "address_key": key, "updated_at": now}
            for key, address in sorted(wanted.items())
        ]
        for chunk in chunks(rows, 500):
            self._connection.execute(statement, list(chunk))
        ids: dict[str, int] = {}
        for chunk in chunks(sorted(wanted), 500):
            query = select(AddressRow.address_key, AddressRow.id).where(
                self._one_of(AddressRow.address_key, chunk)
            )
            ids.update({key: id_ for key, id_ in self._connection.execute(query)})
        return ids

    def consent_entry(self, address: str) -> tuple[int, AddressConsent] | None:
        """Return the entry of `address` (any letter case), or None if unknown."""
        row = self._db.scalar(
            select(AddressRow).where(AddressRow.address_key == address_key(address))
        )
        return None if row is None else (row.id, consent_from(row))

    def lock_consent_entry(self, address: str) -> tuple[int, AddressConsent] | None:
        """As `consent_entry`, locking the row until the transaction ends (PostgreSQL)."""
        row = self._db.scalar(
            select(AddressRow)
            .where(AddressRow.address_key == address_key(address))
            .with_for_update()
        )
        return None if row is None else (row.id, consent_from(row))

    def lock_consent_entries(self, keys: Iterable[str]) -> dict[str, tuple[int, AddressConsent]]:
        """Return the entries of these address keys, locked until the transaction ends."""
        return self._consent_entries(keys, lock=True)

    def _consent_entries(
        self, keys: Iterable[str], *, lock: bool
    ) -> dict[str, tuple[int, AddressConsent]]:
        found: dict[str, tuple[int, AddressConsent]] = {}
        for chunk in chunks(sorted(set(keys)), 500):
            query = select(*_ENTRY_COLUMNS).where(self._one_of(AddressRow.address_key, chunk))
            for row in self._connection.execute(query.with_for_update() if lock else query):
                found[row.address_key] = (row.id, consent_from(row))  # type: ignore[arg-type]
        return found

    def add_consent_entries(self, records: Mapping[str, AddressConsent]) -> dict[str, int]:
        """Create the entries of these new addresses (by address key) with their facts.

        Return the ids of the entries written, by address key. An entry another
        transaction created after the caller read the registry is left as it is and
        missing from the result: its facts are that transaction's, so the caller
        decides again on them.
        """
        if not records:
            return {}
        if self._dialect == "sqlite":
            return self._add_numbered_entries(records)
        now = self._now()
        created: dict[str, int] = {}
        # One statement a chunk, its rows a JSON array; RETURNING names the entries
        # written, where an executemany had to read them back.
        for chunk in chunks(list(records.items()), 5000):
            rows = [{"address": r.address, "address_key": key, **_facts(r)} for key, r in chunk]
            result = self._connection.execute(
                _ADD_ENTRIES_POSTGRESQL, {"batch": batch_json(rows, self._dialect), "now": now}
            )
            created.update({key: entry_id for entry_id, key in result})
        return created

    def _add_numbered_entries(self, records: Mapping[str, AddressConsent]) -> dict[str, int]:
        """SQLite: the entries take the ids after the highest, with the driver's executemany.

        SQLite has one writer at a time (imports hold the write lock from their start),
        so no entry can appear between this transaction's reading of the registry and
        this insert, and every id given is the entry's. Should a key be there all the
        same, its row is left as it is (ON CONFLICT DO NOTHING) and the entries are
        read back by id, so a key is never given an id it did not get.
        """
        top = self._connection.execute(select(func.max(AddressRow.id))).scalar() or 0
        now = self._now()
        created = {key: top + n for n, key in enumerate(records, start=1)}
        written = self._execute_many(
            "add_numbered_entries",
            lambda: self._insert(AddressRow.__table__).on_conflict_do_nothing(),
            ("id", "address", "address_key", *_FACT_NAMES, "updated_at"),
            [
                (created[key], record.address, key, *_facts(record).values(), now)
                for key, record in records.items()
            ],
        )
        if written != len(created):
            query = select(AddressRow.address_key, AddressRow.id).where(AddressRow.id > top)
            created = {key: entry_id for key, entry_id in self._connection.execute(query)}
        return created

    def update_consents(self, records: Mapping[int, AddressConsent]) -> None:
        """Store the new facts of these entries (by id), in one statement."""
        now = self._now()
        names = ("b_id", *(f"b_{name}" for name in _FACT_NAMES), "b_updated_at")
        self._execute_many(
            "update_consents",
            _update_consents_statement,
            names,
            [(entry_id, *_facts(record).values(), now) for entry_id, record in records.items()],
        )

    def append_consent_events(self, events: Sequence[tuple[int, ConsentEvent]]) -> None:
        """Append events to their entries' histories (by entry id), in one statement."""
        self._execute_many(
            "append_consent_events",
            lambda: insert(ConsentEventRow),
            _EVENT_COLUMNS,
            [_event_row(entry_id, event) for entry_id, event in events],
        )

    def record_consent(self, entry_id: int, record: AddressConsent, event: ConsentEvent) -> None:
        """Store the entry's new facts and append the event that changed them."""
        self._connection.execute(
            update(AddressRow)
            .where(AddressRow.id == entry_id)
            .values(**_facts(record), updated_at=self._now())
        )
        self.append_consent_event(entry_id, event)

    def swap_consent(self, entry_id: int, seen: AddressConsent, new: AddressConsent) -> bool:
        """Store `new` as the entry's facts if they are still `seen`; False if they changed.

        One conditional statement: a decision taken on `seen` is written only while
        every fact it rested on still holds (two requests at once: one wins, the other
        reads again and decides again).
        """
        unchanged = [
            getattr(AddressRow, name).is_not_distinct_from(value)
            for name, value in _facts(seen).items()
        ]
        result = self._connection.execute(
            update(AddressRow)
            .where(AddressRow.id == entry_id, *unchanged)
            .values(**_facts(new), updated_at=self._now())
            .returning(AddressRow.id)
        )
        return result.first() is not None

    def append_consent_event(self, entry_id: int, event: ConsentEvent) -> None:
        """Append one event to the entry's history (which is never changed)."""
        values = dict(zip(_EVENT_COLUMNS, _event_row(entry_id, event), strict=True))
        self._connection.execute(insert(ConsentEventRow).values(**values))

    def history(self, entry_id: int) -> list[ConsentEvent]:
        """Return the entry's events, oldest first (by when they happened, then recorded)."""
        query = (
            select(ConsentEventRow)
            .where(ConsentEventRow.registry_id == entry_id)
            .order_by(ConsentEventRow.occurred_at, ConsentEventRow.id)
        )
        return [event_from(row) for row in self._db.scalars(query)]

    def opted_out(
        self,
        *,
        source: Source | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        prefix: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[AddressConsent, ConsentEvent | None]]:
        """Return the opted-out entries (and the event that opted each out), by address.

        `since` and `until` bound when the opt-out happened (`until` excluded);
        `prefix` matches the start of the address, in any letter case; `after` and
        `limit` give one page: at most `limit` entries whose key comes after `after`.
        """
        query = report_filters(
            select(AddressRow).where(AddressRow.opted_out_by.is_not(None)),
            AddressRow.opted_out_by,
            AddressRow.opted_out_at,
            source=source,
            since=since,
            until=until,
            prefix=prefix,
        )
        if after is not None:
            query = query.where(AddressRow.address_key > after)
        query = query.order_by(AddressRow.address_key)
        if limit is not None:
            query = query.limit(limit)
        rows = list(self._db.scalars(query))
        causes = self._latest_opt_outs([row.id for row in rows])
        return [(consent_from(row), causes.get(row.id)) for row in rows]

    def _latest_opt_outs(self, entry_ids: list[int]) -> dict[int, ConsentEvent]:
        found: dict[int, ConsentEvent] = {}
        for chunk in chunks(entry_ids, 500):
            query = (
                select(ConsentEventRow)
                .where(
                    ConsentEventRow.registry_id.in_(chunk),
                    ConsentEventRow.action == str(Action.OPT_OUT),
                )
                .order_by(ConsentEventRow.id)
            )
            for row in self._db.scalars(query):
                assert row.registry_id is not None
                found[row.registry_id] = event_from(row)
        return found

    def contact_hints(self, entry_id: int) -> list[tuple[str | None, str, str]]:
        """Return (locale, agency, name) of the contacts using the entry, oldest first."""
        query = (
            select(ContactRow.locale, ContactRow.agency, ContactRow.name)
            .where(ContactRow.address_id == entry_id)
            .order_by(ContactRow.id)
        )
        return [(locale, agency, name) for locale, agency, name in self._db.execute(query)]

    def writers(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """Return, by address key, the agencies that wrote to it, the one whose zone applies first.

        First the agency of the latest email sent to the address (an attempt the mail
        server accepted, to one of the contacts using it, at that very address: a
        contact's former address does not count), then the agencies of its contacts,
        oldest contact first. An address nothing wrote to and no contact uses is left out.
        """
        found: dict[str, list[str]] = {}
        for chunk in chunks(sorted(set(keys)), 500):
            sent = (
                select(AddressRow.address_key, DeliveryRow.agency, DeliveryRow.recipient)
                .join(ContactRow, ContactRow.address_id == AddressRow.id)
                .join(BookingRow, BookingRow.contact_id == ContactRow.id)
                .join(ItemRow, ItemRow.booking_id == BookingRow.id)
                .join(DeliveryRow, DeliveryRow.item_id == ItemRow.id)
                .where(AddressRow.address_key.in_(chunk), DeliveryRow.outcome == "sent")
                .order_by(DeliveryRow.started_at.desc(), DeliveryRow.id.desc())
            )
            for key, agency, recipient in self._connection.execute(sent):
                if key not in found and _key_of(recipient) == key:
                    found[key] = [agency]
            contacts = (
                select(AddressRow.address_key, ContactRow.agency)
                .join(ContactRow, ContactRow.address_id == AddressRow.id)
                .where(AddressRow.address_key.in_(chunk))
                .order_by(ContactRow.id)
            )
            for key, agency in self._connection.execute(contacts):
                found.setdefault(key, []).append(agency)
        return found

    def add_confirmation(
        self,
        entry_id: int,
        nonce_hash: str,
        *,
        requested_by: Source,
        expires_at: datetime,
    ) -> None:
        """Keep the hash of a confirmation link's secret, to check it once."""
        self._connection.execute(
            insert(ConfirmationRow).values(
                address_id=entry_id,
                nonce_hash=nonce_hash,
                requested_by=str(requested_by),
                created_at=self._now(),
                expires_at=expires_at,
            )
        )

    def confirmation(self, nonce_hash: str) -> dict[str, Any] | None:
        """Return what is known of a confirmation link, by the hash of its secret."""
        row = self._db.scalar(
            select(ConfirmationRow).where(ConfirmationRow.nonce_hash == nonce_hash)
        )
        if row is None:
            return None
        return {
            "entry_id": row.address_id,
            "expires_at": row.expires_at,
            "used_at": row.used_at,
        }

    def use_confirmation(self, nonce_hash: str, entry_id: int, now: datetime) -> bool:
        """Take the one use of a confirmation link of the entry, still in date; False if not.

        One conditional statement: of requests at once, exactly one gets True.
        """
        result = self._connection.execute(
            update(ConfirmationRow)
            .where(
                ConfirmationRow.nonce_hash == nonce_hash,
                ConfirmationRow.address_id == entry_id,
                ConfirmationRow.used_at.is_(None),
                ConfirmationRow.expires_at >= now,
            )
            .values(used_at=now)
            .returning(ConfirmationRow.id)
        )
        return result.first() is not None

    def drop_confirmation(self, nonce_hash: str) -> None:
        """Forget a confirmation link whose email could not be sent (it was never seen)."""
        self._connection.execute(
            delete(ConfirmationRow).where(ConfirmationRow.nonce_hash == nonce_hash)
        )


def _key_of(recipient: str) -> str | None:
    try:
        return address_key(recipient)
    except InvalidAddress:  # sent long ago, before addresses were checked
        return None


#: The columns of an entry's facts, as `_facts` gives them.
_FACT_NAMES = (
    "opted_out_by",
    "opted_out_at",
    "confirmed_at",
    "confirmation_sent_at",
    "staff_confirmation_sent_at",
)


#: Create entries from a JSON array of rows (`add_consent_entries` on PostgreSQL).
_ADD_ENTRIES_POSTGRESQL = text(
    """
    INSERT INTO addresses (address, address_key, opted_out_by, opted_out_at, confirmed_at,
        confirmation_sent_at, staff_confirmation_sent_at, updated_at)
    SELECT b.address, b.address_key, b.opted_out_by, b.opted_out_at, b.confirmed_at,
        b.confirmation_sent_at, b.staff_confirmation_sent_at, :now
    FROM jsonb_to_recordset(CAST(:batch AS jsonb)) AS b(
        address varchar, address_key varchar, opted_out_by varchar,
        opted_out_at timestamptz, confirmed_at timestamptz, confirmation_sent_at timestamptz,
        staff_confirmation_sent_at timestamptz)
    ON CONFLICT DO NOTHING
    RETURNING id, address_key
    """
).bindparams(bindparam("now", type_=AddressRow.__table__.c.updated_at.type))


def _update_consents_statement() -> Any:
    return (
        update(AddressRow)
        .where(AddressRow.id == bindparam("b_id"))
        .values(
            {name: bindparam(f"b_{name}") for name in (*_FACT_NAMES, "updated_at")},
        )
    )


def _facts(record: AddressConsent) -> dict[str, Any]:
    """The columns of an entry's facts, by name."""
    return {
        "opted_out_by": str(record.opted_out_by) if record.opted_out_by else None,
        "opted_out_at": record.opted_out_at,
        "confirmed_at": record.confirmed_at,
        "confirmation_sent_at": record.confirmation_sent_at,
        "staff_confirmation_sent_at": record.staff_confirmation_sent_at,
    }
