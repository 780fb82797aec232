"""Contacts and bookings: upserts by `ref`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Integer,
    String,
    Table,
    bindparam,
    column,
    select,
    table,
    text,
    update,
)

from ..bookings import Booking, Contact
from ..consent import address_key, normalise_address
from ..schema import BookingRow, ContactRow, DataVersionRow
from ._consent import ConsentStore
from ._rows import UpsertCounts, batch_json, chunks, minor_units


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedContact:
    """What the last contacts file said of a contact (None: not known then)."""

    email: str | None
    confirmed: bool | None
    opt_out: bool | None
    #: the registry entry of its address (None: no address, or stored without its entry)
    entry_id: int | None = None


class RecordStore(ConsentStore):
    """Contacts and bookings."""

    def bump_data_versions(self, agencies: Iterable[str]) -> None:
        """Note that these agencies' bookings or contacts changed (their next pass runs).

        Once per agency and transaction: what the next pass compares is the version
        once committed, however many chunks of an import wrote to the agency.
        """
        codes = sorted(set(agencies) - self._bumped)
        if not codes:
            return
        self._bumped.update(codes)
        statement = self._insert(DataVersionRow)
        statement = statement.on_conflict_do_update(
            index_elements=["agency"], set_={"version": DataVersionRow.version + 1}
        )
        self._connection.execute(statement, [{"agency": c, "version": 1} for c in codes])

    def refresh_statistics(self) -> None:
        """Let PostgreSQL plan with the rows written so far in this transaction.

        ANALYZE in the importing transaction sees its own rows. Without it, an import
        into a small table keeps plans made when the table was empty (the look-ups
        by ref, the foreign-key checks): each one a scan of the whole table.
        """
        if self._dialect == "postgresql":
            self._connection.exec_driver_sql("ANALYZE contacts, addresses, bookings")

    def begin_ref_check(self) -> None:
        """Start remembering the refs of one file (`note_refs`), in a temporary table.

        An import spots a ref written twice in its file. A dict of every ref seen
        grew with the file (130 bytes a row: 130 MB for a million rows); the table
        lives in the database's temporary storage, and in this transaction only
        (dropped at commit on PostgreSQL, by `end_ref_check` on SQLite, undone with
        the rest on a rollback).
        """
        if self._dialect == "postgresql":
            self._connection.exec_driver_sql(
                "CREATE TEMPORARY TABLE import_refs (ref text PRIMARY KEY, line integer NOT NULL)"
                " ON COMMIT DROP"
            )
        else:
            self._connection.exec_driver_sql("DROP TABLE IF EXISTS temp.import_refs")
            self._connection.exec_driver_sql(
                "CREATE TEMPORARY TABLE import_refs (ref TEXT PRIMARY KEY, line INTEGER NOT NULL)"
                " WITHOUT ROWID"
            )

    def note_refs(self, first_lines: Mapping[str, int]) -> dict[str, int]:
        """Remember the refs of a chunk (ref -> its first line in the chunk).

        Return those an earlier chunk of the file had, with the line they were on.
        One statement a chunk; a second only when it wrote fewer rows than it was
        given, that is when the chunk repeats an earlier ref.
        """
        if not first_lines:
            return {}
        if self._dialect == "postgresql":
            rows = [{"ref": ref, "line": line} for ref, line in first_lines.items()]
            batch = {"batch": batch_json(rows, self._dialect)}
            written = self._connection.execute(_NOTE_REFS_POSTGRESQL, batch).rowcount
        else:
            # The driver's executemany: half the time of one statement over JSON rows.
            written = self._connection.exec_driver_sql(
                "INSERT OR IGNORE INTO temp.import_refs (ref, line) VALUES (?, ?)",
                list(first_lines.items()),
            ).rowcount
        if written == len(first_lines):
            return {}
        # The rows of this chunk have lines from its first on; earlier ones, before.
        query = select(_IMPORT_REFS.c.ref, _IMPORT_REFS.c.line).where(
            self._one_of(_IMPORT_REFS.c.ref, list(first_lines)),
            _IMPORT_REFS.c.line < min(first_lines.values()),
        )
        return {ref: line for ref, line in self._connection.execute(query).tuples()}

    def end_ref_check(self) -> None:
        """Forget the refs of the file (`begin_ref_check`)."""
        if self._dialect != "postgresql":
            self._connection.exec_driver_sql("DROP TABLE IF EXISTS temp.import_refs")

    def _agencies_planning(self, entity: str, refs: Sequence[str]) -> set[str]:
        """Return the agencies whose bookings these contacts or bookings (by ref) are now.

        A write to them changes what those agencies' next pass plans: their data
        versions go up (`bump_data_versions`), so a same-day pass does not skip them.
        """
        found: set[str] = set()
        for chunk in chunks(sorted(set(refs)), 500):
            if entity == "contacts":
                query = (
                    select(BookingRow.agency)
                    .join(ContactRow, ContactRow.id == BookingRow.contact_id)
                    .where(self._one_of(ContactRow.ref, chunk))
                    .distinct()
                )
            else:
                wanted = self._one_of(BookingRow.ref, chunk)
                query = select(BookingRow.agency).where(wanted).distinct()
            found.update(self._connection.scalars(query))
        return found

    def existing_contact_refs(self, refs: Iterable[str]) -> set[str]:
        """Return which of `refs` are known contacts."""
        wanted = sorted(set(refs))
        found: set[str] = set()
        for chunk in chunks(wanted, 500):
            query = select(ContactRow.ref).where(self._one_of(ContactRow.ref, chunk))
            found.update(self._db.scalars(query))
        return found

    def imported_contacts(self, refs: Iterable[str]) -> dict[str, ImportedContact]:
        """Return what the last import said of each known contact among `refs`."""
        found: dict[str, ImportedContact] = {}
        columns = (
            ContactRow.ref,
            ContactRow.email,
            ContactRow.imported_confirmed,
            ContactRow.imported_opt_out,
            ContactRow.address_id,
        )
        for chunk in chunks(sorted(set(refs)), 500):
            query = select(*columns).where(self._one_of(ContactRow.ref, chunk))
            for ref, email, confirmed, opt_out, entry_id in self._connection.execute(query):
                found[ref] = ImportedContact(
                    email=email, confirmed=confirmed, opt_out=opt_out, entry_id=entry_id
                )
        return found

    def upsert_contacts(
        self,
        contacts: Sequence[Contact],
        known: Iterable[str] | None = None,
        entry_ids: Mapping[str, int] | None = None,
    ) -> UpsertCounts:
        """Insert new contacts and update known ones, matched by `ref`.

        `known`: the refs among them already stored, when the caller looked them up.
        `entry_ids`: the registry entry of each contact's address, by contact ref, when
        the caller has them; the others are looked up (and created when missing).
        """
        now = self._now()
        known = None if known is None else set(known)
        # Only stored contacts can have bookings: new ones change no agency's plan.
        refs = [c.ref for c in contacts if known is None or c.ref in known]
        touched = self._agencies_planning("contacts", refs) if refs else set()
        ids = dict(entry_ids or {})
        missing = [c for c in contacts if c.email and c.ref not in ids]
        if missing:
            entries = self.address_ids(normalise_address(c.email) for c in missing if c.email)
            ids.update({c.ref: entries[address_key(c.email)] for c in missing if c.email})
        rows = [
            {
                "ref": c.ref,
                "agency": c.agency,
                "name": c.name,
                "email": c.email,
                "address_id": ids[c.ref] if c.email else None,
                "locale": c.locale,
                "imported_confirmed": c.email_confirmed,
                "imported_opt_out": c.email_opt_out,
                "updated_at": now,
            }
            for c in contacts
        ]
        counts = self._upsert(ContactRow, rows, known)
        if counts.created or counts.updated:
            self.bump_data_versions(touched | {c.agency for c in contacts})
        return counts

    def upsert_bookings(self, bookings: Sequence[Booking]) -> UpsertCounts:
        """Insert new bookings and update known ones, matched by `ref`."""
        now = self._now()
        touched = self._agencies_planning("bookings", [b.ref for b in bookings])
        contact_ids = self._contact_ids(b.contact_ref for b in bookings)
        rows = [
            {
                "ref": b.ref,
                "agency": b.agency,
                "contact_id": contact_ids[b.contact_ref],
                "property": b.property,
                "status": str(b.status),
                "option_expires_on": b.option_expires_on,
                "balance_due_on": b.balance_due_on,
                "balance_outstanding_minor": minor_units(b.balance_outstanding, b.currency),
                "currency": b.currency,
                "arrival_on": b.arrival_on,
                "departure_on": b.departure_on,
                "updated_at": now,
            }
            for b in bookings
        ]
        counts = self._upsert(BookingRow, rows)
        if counts.created or counts.updated:
            self.bump_data_versions(touched | {b.agency for b in bookings})
        return counts

    def _contact_ids(self, refs: Iterable[str]) -> dict[str, int]:
        ids: dict[str, int] = {}
        for chunk in chunks(sorted(set(refs)), 500):
            query = select(ContactRow.ref, ContactRow.id).where(self._one_of(ContactRow.ref, chunk))
            ids.update({ref: id_ for ref, id_ in self._db.execute(query)})
        return ids

    def _upsert(
        self,
        table: type[ContactRow | BookingRow],
        rows: list[dict[str, Any]],
        known_refs: Iterable[str] | None = None,
    ) -> UpsertCounts:
        """Insert or update by `ref`; a row whose values did not change is left alone.

        Leaving unchanged rows alone keeps their `updated_at`, which is what tells the
        planner which pending emails to render again. The stored values of the known
        refs are read in one query and compared here: new rows go in one plain insert,
        changed ones in one update, unchanged ones are not written at all.
        """
        if not rows:
            return UpsertCounts(created=0, updated=0, unchanged=0)
        target = cast("Table", table.__table__)
        columns = target.c
        data = [name for name in rows[0] if name not in ("ref", "updated_at")]
        stored: dict[str, tuple[Any, ...]] = {}
        refs = sorted({r["ref"] for r in rows})
        wanted = refs if known_refs is None else sorted(set(known_refs) & set(refs))
        for chunk in chunks(wanted, 500):
            query = select(columns.ref, *(columns[name] for name in data)).where(
                self._one_of(columns.ref, chunk)
            )
            stored.update({row[0]: tuple(row[1:]) for row in self._connection.execute(query)})
        new = [r for r in rows if r["ref"] not in stored]
        changed = [r for r in rows if r["ref"] in stored and stored[r["ref"]] != _values(r, data)]
        names = tuple(rows[0])
        if new:
            # A row another import added meanwhile is left to it (PostgreSQL).
            self._execute_many(
                f"insert {target.name}",
                lambda: self._insert(target).on_conflict_do_nothing(),
                names,
                [tuple(r.values()) for r in new],
            )
        if changed:
            self._execute_many(
                f"update {target.name}",
                lambda: (
                    update(target)
                    .where(columns.ref == bindparam("b_ref"))
                    .values({name: bindparam(f"b_{name}") for name in names if name != "ref"})
                ),
                [f"b_{name}" for name in names],
                [tuple(r.values()) for r in changed],
            )
        return UpsertCounts(
            created=len(new),
            updated=len(changed),
            unchanged=len(rows) - len(new) - len(changed),
        )


def _values(row: dict[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    return tuple(row[name] for name in names)


#: The refs of the file being imported (`begin_ref_check`): the temporary table of
#: either database (SQLite looks in its temporary schema first).
_IMPORT_REFS = table("import_refs", column("ref", String()), column("line", Integer()))
# The first row of a file with a ref wins: the others write nothing.
_NOTE_REFS_POSTGRESQL = text(
    """
    INSERT INTO import_refs (ref, line)
    SELECT b.ref, b.line FROM jsonb_to_recordset(CAST(:batch AS jsonb)) AS b(ref text, line integer)
    ON CONFLICT DO NOTHING
    """
)
