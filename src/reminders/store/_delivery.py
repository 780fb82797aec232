"""What becomes of claimed items: settlements, recovery, send slots, the delivery log.

Settlements are conditional updates on items the claimant still holds, applied in
batches; an item whose lease passed is made `unknown` by whoever finds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from ..delivery import Settlement
from ..queue import QueueItem, Status, sources_of
from ..schema import DeliveryRow, ItemRow, SendSlotRow
from ._claims import Claimed, ClaimStore
from ._rows import ITEMS, aware, aware_or_none, batch_json, item_from, item_query, rowcount


@dataclass(frozen=True, slots=True, kw_only=True)
class Settled:
    """A claimed item's settlement, with what the delivery log keeps of its attempt."""

    item: Claimed
    settlement: Settlement
    message_id: str
    recipient: str
    started_at: datetime
    finished_at: datetime
    smtp_code: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    """An item found abandoned in `sending` and made `unknown`."""

    id: int
    agency: str
    attempt: int
    claimant: str | None
    #: the contact's address (None: it has none any more)
    to: str | None


#: SQLite: settle a whole batch in one statement, its rows a JSON array (see `settle`).
_SETTLE_ALL_SQLITE = text(
    """
    UPDATE items SET
        status = json_extract(b.value, '$.b_status'),
        reason = json_extract(b.value, '$.b_reason'),
        last_error = json_extract(b.value, '$.b_error'),
        message_id = json_extract(b.value, '$.b_message_id'),
        next_attempt_at = json_extract(b.value, '$.b_next'),
        sent_at = json_extract(b.value, '$.b_sent_at'),
        attempts = items.attempts - json_extract(b.value, '$.b_uncount'),
        lease_until = NULL,  -- claimed_by stays: who tried last
        updated_at = :now
    FROM json_each(:batch) AS b
    WHERE items.id = json_extract(b.value, '$.b_id')
        AND +items.status = 'sending'  -- '+': find each row by its id, not by the index
        AND +items.claimed_by = :claimant
    """
).bindparams(bindparam("now", type_=ITEMS.c.updated_at.type))


#: SQLite: log a whole batch's attempts in one statement, as `_SETTLE_ALL_SQLITE`.
_LOG_ALL_SQLITE = text(
    """
    INSERT INTO deliveries (item_id, agency, attempt, recipient, message_id, actor,
        claimed_by, started_at, finished_at, outcome, smtp_code, detail)
    SELECT json_extract(b.value, '$.item_id'), json_extract(b.value, '$.agency'),
        json_extract(b.value, '$.attempt'), json_extract(b.value, '$.recipient'),
        json_extract(b.value, '$.message_id'), json_extract(b.value, '$.actor'),
        json_extract(b.value, '$.claimed_by'), json_extract(b.value, '$.started_at'),
        json_extract(b.value, '$.finished_at'), json_extract(b.value, '$.outcome'),
        json_extract(b.value, '$.smtp_code'), json_extract(b.value, '$.detail')
    FROM json_each(:batch) AS b
    """
)


#: PostgreSQL: the same two statements, the JSON rows typed by jsonb_to_recordset.
_SETTLE_ALL_POSTGRESQL = text(
    """
    UPDATE items SET
        status = b.b_status,
        reason = b.b_reason,
        last_error = b.b_error,
        message_id = b.b_message_id,
        next_attempt_at = b.b_next,
        sent_at = b.b_sent_at,
        attempts = items.attempts - b.b_uncount,
        lease_until = NULL,
        updated_at = :now
    FROM jsonb_to_recordset(CAST(:batch AS jsonb)) AS b(
        b_id bigint, b_status varchar, b_reason varchar, b_error text,
        b_message_id varchar, b_next timestamptz, b_sent_at timestamptz, b_uncount integer)
    WHERE items.id = b.b_id AND items.status = 'sending' AND items.claimed_by = :claimant
    """
).bindparams(bindparam("now", type_=ITEMS.c.updated_at.type))
_LOG_ALL_POSTGRESQL = text(
    """
    INSERT INTO deliveries (item_id, agency, attempt, recipient, message_id, actor,
        claimed_by, started_at, finished_at, outcome, smtp_code, detail)
    SELECT item_id, agency, attempt, recipient, message_id, actor, claimed_by, started_at,
        finished_at, outcome, smtp_code, detail
    FROM jsonb_to_recordset(CAST(:batch AS jsonb)) AS b(
        item_id bigint, agency varchar, attempt integer, recipient varchar,
        message_id varchar, actor varchar, claimed_by varchar, started_at timestamptz,
        finished_at timestamptz, outcome varchar, smtp_code integer, detail text)
    """
)


class DeliveryStore(ClaimStore):
    """Settlements, recovery, send slots and the delivery log."""

    def settle(self, claimant: str, actor: str, settled: Sequence[Settled]) -> list[int]:
        """Apply settlements to items `claimant` still holds; return the ids applied.

        An item whose lease passed may have been made `unknown` by someone else
        meanwhile: it is left as it is (and its attempt is still logged).
        """
        if not settled:
            return []
        now = self._now()
        for entry in settled:
            assert Status.SENDING in sources_of(entry.settlement.target), entry.settlement.target
        rows = [
            {
                "b_id": e.item.id,
                "b_status": str(e.settlement.target),
                "b_reason": e.settlement.reason,
                "b_error": None if e.settlement.target is Status.SENT else e.settlement.detail,
                "b_message_id": e.message_id,
                "b_next": e.settlement.next_attempt_at,
                "b_sent_at": e.finished_at if e.settlement.target is Status.SENT else None,
                "b_uncount": 0 if e.settlement.counts else 1,
            }
            for e in settled
        ]
        # One statement for the batch, its rows a JSON array: an executemany runs a
        # statement a row, and each lets go of the interpreter lock while the database
        # works, which the sending thread takes each time.
        sqlite = self._dialect == "sqlite"
        batch = batch_json(rows, self._dialect)
        applied_count = rowcount(
            self._connection.execute(
                _SETTLE_ALL_SQLITE if sqlite else _SETTLE_ALL_POSTGRESQL,
                {"claimant": claimant, "now": now, "batch": batch},
            )
        )
        ids = [e.item.id for e in settled]
        if applied_count == len(settled):
            applied = ids
        else:
            holding = select(ItemRow.id).where(
                ItemRow.id.in_(ids), ItemRow.status != Status.SENDING
            )
            applied = [i for i in self._connection.scalars(holding)]
        logged = [e for e in settled if e.settlement.counts]
        if logged:
            logs = [
                {
                    "item_id": e.item.id,
                    "agency": e.item.agency,
                    "attempt": e.item.attempt,
                    "recipient": e.recipient,
                    "message_id": e.message_id,
                    "actor": actor,
                    "claimed_by": claimant,
                    "started_at": e.started_at,
                    "finished_at": e.finished_at,
                    "outcome": e.settlement.logged_as,
                    "smtp_code": e.smtp_code,
                    "detail": e.settlement.detail,
                }
                for e in logged
            ]
            batch = batch_json(logs, self._dialect)
            self._connection.execute(
                _LOG_ALL_SQLITE if sqlite else _LOG_ALL_POSTGRESQL, {"batch": batch}
            )
        return applied

    def sending_claimants(self) -> set[str | None]:
        """Return the claimants of every item in `sending`."""
        query = select(ItemRow.claimed_by).where(ItemRow.status == Status.SENDING).distinct()
        return set(self._connection.scalars(query))

    def recover(self, now: datetime, gone: Sequence[str | None]) -> list[Recovered]:
        """Make `unknown` the `sending` items whose lease passed or whose claimant is gone."""
        abandoned = [ITEMS.c.lease_until < now, ITEMS.c.lease_until.is_(None)]
        named = [c for c in gone if c is not None]
        if named:
            abandoned.append(ITEMS.c.claimed_by.in_(named))
        if None in gone:
            abandoned.append(ITEMS.c.claimed_by.is_(None))
        result = self._connection.execute(
            update(ITEMS)
            .where(ITEMS.c.status == Status.SENDING, or_(*abandoned))
            .values(status=Status.UNKNOWN, reason="interrupted", lease_until=None, updated_at=now)
            .returning(ITEMS.c.id, ITEMS.c.agency, ITEMS.c.attempts, ITEMS.c.claimed_by)
        )
        rows = sorted(result, key=lambda r: r.id)
        contacts = self._details_of([row.id for row in rows])
        return [
            Recovered(id=i, agency=a, attempt=n, claimant=c, to=contacts[i][2])
            for i, a, n, c in rows
        ]

    def note_recovered(self, notes: Sequence[tuple[Recovered, str, str]]) -> None:
        """Record why recovered items are unknown: (item, Message-ID, detail)."""
        now = self._now()
        for recovered, message_id, detail in notes:
            self._connection.execute(
                update(ITEMS)
                .where(ITEMS.c.id == recovered.id)
                .values(last_error=detail, message_id=message_id)
            )
            self._connection.execute(
                insert(DeliveryRow).values(
                    item_id=recovered.id,
                    agency=recovered.agency,
                    attempt=recovered.attempt,
                    recipient=recovered.to or "",
                    message_id=message_id,
                    actor="",
                    claimed_by=recovered.claimant or "",
                    started_at=now,
                    finished_at=now,
                    outcome="unknown",
                    detail=detail,
                )
            )

    def stuck(self, now: datetime) -> list[tuple[int, str, str | None, datetime | None]]:
        """Return (id, agency, claimant, lease) of `sending` items whose lease passed."""
        query = (
            select(ItemRow.id, ItemRow.agency, ItemRow.claimed_by, ItemRow.lease_until)
            .where(
                ItemRow.status == Status.SENDING,
                or_(ItemRow.lease_until.is_(None), ItemRow.lease_until < now),
            )
            .order_by(ItemRow.id)
        )
        return [(i, a, c, aware_or_none(at)) for i, a, c, at in self._connection.execute(query)]

    def count_by_agency(self, status: Status) -> dict[str, int]:
        """Return how many items of each agency are in `status`."""
        query = (
            select(ItemRow.agency, func.count())
            .where(ItemRow.status == status)
            .group_by(ItemRow.agency)
        )
        return {agency: count for agency, count in self._connection.execute(query)}

    def take_slot(self, agency: str, now: datetime, interval: timedelta) -> datetime | None:
        """Take the agency's send slot if it is free at `now`: None when taken.

        Otherwise return when it is next free. One conditional statement, so two
        processes never take the same slot.
        """
        statement = self._insert(SendSlotRow).values(agency=agency, next_at=now + interval)
        statement = statement.on_conflict_do_update(
            index_elements=["agency"],
            set_={"next_at": statement.excluded.next_at},
            where=SendSlotRow.next_at <= now,
        ).returning(SendSlotRow.agency)
        if self._connection.execute(statement).first() is not None:
            return None
        next_at = self._connection.scalar(
            select(SendSlotRow.next_at).where(SendSlotRow.agency == agency)
        )
        return aware(next_at) if next_at is not None else now

    def release_slot(self, agency: str, now: datetime, interval: timedelta) -> None:
        """Give back a slot taken at `now` and not used."""
        self._connection.execute(
            update(SendSlotRow)
            .where(SendSlotRow.agency == agency, SendSlotRow.next_at == now + interval)
            .values(next_at=now)
        )

    def mark_sent_by(self, item_id: int, actor: str) -> QueueItem:
        """Record that a person checked an unknown item was delivered after all."""
        result = self._connection.execute(
            update(ITEMS)
            .where(ITEMS.c.id == item_id, ITEMS.c.status == Status.UNKNOWN)
            .values(
                status=Status.SENT,
                sent_at=self._now(),
                reason=f"marked sent by {actor}",
                last_error=None,
                updated_at=self._now(),
            )
        )
        if rowcount(result) != 1:
            return self.transition(item_id, Status.SENT)  # raises, saying why
        return self.item(item_id)

    def deliveries(self, item_id: int) -> list[dict[str, Any]]:
        """Return the item's delivery attempts, oldest first."""
        query = select(DeliveryRow).where(DeliveryRow.item_id == item_id).order_by(DeliveryRow.id)
        return [
            {
                "attempt": row.attempt,
                "recipient": row.recipient,
                "message_id": row.message_id,
                "actor": row.actor,
                "started_at": aware_or_none(row.started_at),
                "finished_at": aware_or_none(row.finished_at),
                "outcome": row.outcome,
                "smtp_code": row.smtp_code,
                "detail": row.detail,
            }
            for row in self._db.scalars(query)
        ]

    def items_by_id(self, item_ids: Sequence[int]) -> dict[int, QueueItem]:
        """Return the items among `item_ids` that exist, by id."""
        if not item_ids:
            return {}
        query = item_query().where(ItemRow.id.in_(list(item_ids)))
        return {item.id: item for item in map(item_from, self._db.execute(query))}
