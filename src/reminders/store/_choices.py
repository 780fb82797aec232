"""Contacts' choices per kind of email: which kinds an address refused.

One row per (address, kind) a choice was made for, its primary key the lookup the
dispatcher's claim makes (`_rules.kind_refused`). The history of the choices is in
the consent events (`refuse_kind`, `accept_kind`), written by the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..consent import Source, address_key
from ..schema import AddressRow, KindChoiceRow
from ._base import StoreBase
from ._rows import aware, report_filters


@dataclass(frozen=True, slots=True, kw_only=True)
class KindChoice:
    """The choice recorded for one kind of email at one address."""

    address: str
    kind: str
    #: False: refused
    receive: bool
    source: Source
    method: str
    actor: str
    chosen_at: datetime


class KindChoiceStore(StoreBase):
    """Reads and writes `kind_choices`."""

    def kind_choices(self, entry_id: int) -> dict[str, bool]:
        """Return the choices recorded for the entry: {kind: receive}, by kind."""
        query = (
            select(KindChoiceRow.kind, KindChoiceRow.receive)
            .where(KindChoiceRow.address_id == entry_id)
            .order_by(KindChoiceRow.kind)
        )
        return {kind: bool(receive) for kind, receive in self._connection.execute(query)}

    def refused_kinds(self, address: str) -> frozenset[str]:
        """Return the kinds `address` (any letter case) refused."""
        query = (
            select(KindChoiceRow.kind)
            .join(AddressRow, AddressRow.id == KindChoiceRow.address_id)
            .where(
                AddressRow.address_key == address_key(address),
                KindChoiceRow.receive.is_(False),
            )
        )
        return frozenset(self._connection.scalars(query))

    def choose_kind(
        self,
        entry_id: int,
        kind: str,
        receive: bool,
        *,
        source: Source,
        method: str,
        actor: str,
        chosen_at: datetime,
    ) -> None:
        """Record the entry's choice for `kind` (replacing the one before, if any)."""
        values = {
            "receive": receive,
            "source": str(source),
            "method": method,
            "actor": actor,
            "chosen_at": chosen_at,
            "updated_at": self._now(),
        }
        statement = self._insert(KindChoiceRow.__table__).values(
            address_id=entry_id, kind=kind, **values
        )
        self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=[KindChoiceRow.address_id, KindChoiceRow.kind], set_=values
            )
        )

    def kind_refusals(
        self,
        *,
        kind: str | None = None,
        source: Source | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        prefix: str | None = None,
    ) -> list[KindChoice]:
        """Return the refusals of a kind (or of any), by address then kind.

        Filters as `opted_out`'s: `since` and `until` bound when the refusal was made
        (`until` excluded); `prefix` matches the start of the address, any letter case.
        """
        query = (
            select(AddressRow.address, KindChoiceRow)
            .join(AddressRow, AddressRow.id == KindChoiceRow.address_id)
            .where(KindChoiceRow.receive.is_(False))
        )
        if kind is not None:
            query = query.where(KindChoiceRow.kind == kind)
        query = report_filters(
            query,
            KindChoiceRow.source,
            KindChoiceRow.chosen_at,
            source=source,
            since=since,
            until=until,
            prefix=prefix,
        )
        query = query.order_by(AddressRow.address_key, KindChoiceRow.kind)
        return [
            KindChoice(
                address=address,
                kind=row.kind,
                receive=row.receive,
                source=Source(row.source),
                method=row.method,
                actor=row.actor,
                chosen_at=aware(row.chosen_at),
            )
            for address, row in self._db.execute(query)
        ]
