"""What the dispatcher reads and writes: approval, claims, attempts and their outcome.

An item is claimed (`sending`) in a transaction of its own that commits before its
SMTP transaction begins, so a crash leaves at most the in-flight item in `sending`;
the delivery log row written with the claim tells what was under way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update

from ..errors import TransitionError
from ..queue import QueueItem, Status, check_transition, sources_of
from ..schema import DeliveryRow, ItemRow
from ._queue import QueueStore
from ._rows import aware_or_none, item_from, item_query, rowcount


class DeliveryStore(QueueStore):
    """Approval, claims and the delivery log.

    State changes run on the connection (Core), not through the ORM session: they
    are plain conditional UPDATEs, several per email, and the session's bookkeeping
    was most of their cost (benchmarks/dispatch.py).
    """

    def _move(
        self,
        item_id: int,
        target: Status,
        values: dict[str, Any],
        sources: Iterable[Status],
        *,
        fetch: bool = True,
    ) -> QueueItem | None:
        """Apply one transition as a conditional update; raise if the item is elsewhere."""
        allowed = [s for s in sources if s in sources_of(target)]
        result = self._connection.execute(
            update(ItemRow)
            .where(ItemRow.id == item_id, ItemRow.status.in_(allowed))
            .values(status=target, updated_at=self._now(), **values)
        )
        if rowcount(result) != 1:
            current = self.item(item_id).status
            check_transition(item_id, current, target)
            # Allowed by the table, but not by this path (`send` of an unknown item).
            raise TransitionError(
                f"item {item_id} is {current}: it cannot become {target} this way: "
                f"see 'reminders show {item_id}'"
            )
        return self.item(item_id) if fetch else None

    def _moved(
        self, item_id: int, target: Status, values: dict[str, Any], sources: Iterable[Status]
    ) -> QueueItem:
        """As `_move`, returning the item as it is now."""
        item = self._move(item_id, target, values, sources)
        assert item is not None
        return item

    def approve(self, item_id: int, actor: str) -> None:
        """Approve a pending item for sending."""
        self._move(
            item_id,
            Status.APPROVED,
            {"approved_by": actor, "reason": None, "next_attempt_at": None},
            [Status.PENDING],
            fetch=False,
        )

    def expire(self, item_id: int) -> None:
        """Expire one item whose window ended before it could be sent."""
        self._move(
            item_id,
            Status.EXPIRED,
            {"reason": "window_passed"},
            [Status.PENDING, Status.APPROVED],
            fetch=False,
        )

    def lock_for_sending(self, item_id: int, sources: Sequence[Status]) -> QueueItem | None:
        """Return the item if it is in `sources`, locking its row until the transaction ends.

        None when it is elsewhere, or (PostgreSQL) another transaction holds it:
        SKIP LOCKED, so two dispatchers never wait on, nor take, the same item.
        """
        query = (
            item_query()
            .where(ItemRow.id == item_id, ItemRow.status.in_([str(s) for s in sources]))
            .with_for_update(skip_locked=True, of=ItemRow)
        )
        row = self._db.execute(query).first()
        return item_from(row) if row is not None else None

    def hold(self, item_id: int, reason: str) -> None:
        """Keep an item in its tab because its contact lacks consent (pending or approved)."""
        self._connection.execute(
            update(ItemRow)
            .where(ItemRow.id == item_id, ItemRow.status.in_([Status.PENDING, Status.APPROVED]))
            .values(status=Status.PENDING, reason=reason, updated_at=self._now())
        )

    def pending_ids(self, agency: str, kind: str, listed_on: date | None = None) -> list[int]:
        """Return the ids of a tab's pending and approved items, oldest anchor first.

        With `listed_on`, only those whose window includes that day.
        """
        query = select(ItemRow.id).where(
            ItemRow.agency == agency,
            ItemRow.kind == kind,
            ItemRow.status.in_([Status.PENDING, Status.APPROVED]),
        )
        if listed_on is not None:
            query = query.where(
                ItemRow.visible_from <= listed_on, ItemRow.visible_until >= listed_on
            )
        return list(self._db.scalars(query.order_by(ItemRow.anchor_on, ItemRow.id)))

    def claim(self, item: QueueItem, claimant: str, sources: Sequence[Status]) -> QueueItem:
        """Mark an item `sending` for `claimant`, counting one more attempt."""
        now = self._now()
        self._move(
            item.id,
            Status.SENDING,
            {
                "claimed_by": claimant,
                "claimed_at": now,
                "attempts": ItemRow.attempts + 1,
                "next_attempt_at": None,
            },
            sources,
            fetch=False,
        )
        return replace(
            item,
            status=Status.SENDING,
            attempts=item.attempts + 1,
            next_attempt_at=None,
            updated_at=now,
        )

    def next_due(
        self, agencies: Sequence[str], now: datetime, exclude: Iterable[int] = ()
    ) -> list[tuple[str, int]]:
        """Return (agency, id) of the oldest approved item due now, per agency.

        On PostgreSQL the rows are locked with SKIP LOCKED, so replicas never pick
        the same one; on SQLite the database's single writer does the same.
        """
        found: list[tuple[str, int]] = []
        for agency in agencies:
            query = (
                select(ItemRow.id)
                .where(
                    ItemRow.status == Status.APPROVED,
                    ItemRow.agency == agency,
                    or_(ItemRow.next_attempt_at.is_(None), ItemRow.next_attempt_at <= now),
                    ItemRow.id.not_in(list(exclude)),
                )
                .order_by(ItemRow.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            item_id = self._db.scalar(query)
            if item_id is not None:
                found.append((agency, item_id))
        return found

    def start_delivery(
        self,
        item: QueueItem,
        *,
        recipient: str,
        message_id: str,
        actor: str,
        claimant: str,
    ) -> int:
        """Log the attempt about to be made on a claimed item; return the log row's id."""
        now = self._now()
        self._connection.execute(
            update(ItemRow).where(ItemRow.id == item.id).values(message_id=message_id)
        )
        result = self._connection.execute(
            insert(DeliveryRow)
            .values(
                item_id=item.id,
                agency=item.agency,
                attempt=item.attempts,
                recipient=recipient,
                message_id=message_id,
                actor=actor,
                claimed_by=claimant,
                started_at=now,
            )
            .returning(DeliveryRow.id)
        )
        delivery_id: int = result.scalar_one()
        return delivery_id

    def finish_delivery(
        self,
        item_id: int,
        delivery_id: int | None,
        *,
        target: Status,
        outcome: str,
        detail: str | None = None,
        smtp_code: int | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Settle a `sending` item: sent, back to approved (retry), failed or unknown."""
        now = self._now()
        values: dict[str, Any] = {"claimed_by": None, "claimed_at": None}
        if target is Status.SENT:
            values |= {"sent_at": now, "reason": None, "last_error": None}
        else:
            values |= {"last_error": detail, "reason": outcome}
        if target is Status.APPROVED:
            values["next_attempt_at"] = next_attempt_at
        self._move(item_id, target, values, [Status.SENDING], fetch=False)
        if delivery_id is not None:
            self._connection.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id)
                .values(finished_at=now, outcome=outcome, smtp_code=smtp_code, detail=detail)
            )

    def mark_sent_by(self, item_id: int, actor: str) -> QueueItem:
        """Record that a person checked an unknown item was delivered after all."""
        return self._moved(
            item_id,
            Status.SENT,
            {"sent_at": self._now(), "reason": f"marked sent by {actor}", "last_error": None},
            [Status.UNKNOWN],
        )

    def in_flight(self) -> list[tuple[int, str | None, datetime | None]]:
        """Return (id, claimant, claimed_at) of every item in `sending`, oldest first."""
        query = (
            select(ItemRow.id, ItemRow.claimed_by, ItemRow.claimed_at)
            .where(ItemRow.status == Status.SENDING)
            .order_by(ItemRow.id)
        )
        return [(i, c, aware_or_none(at)) for i, c, at in self._db.execute(query)]

    def give_up_in_flight(self, item_id: int, detail: str) -> bool:
        """Turn an abandoned `sending` item into `unknown`; False if it moved meanwhile."""
        now = self._now()
        result = self._connection.execute(
            update(ItemRow)
            .where(ItemRow.id == item_id, ItemRow.status == Status.SENDING)
            .values(
                status=Status.UNKNOWN,
                reason="interrupted",
                last_error=detail,
                claimed_by=None,
                claimed_at=None,
                updated_at=now,
            )
        )
        if rowcount(result) != 1:
            return False
        self._connection.execute(
            update(DeliveryRow)
            .where(DeliveryRow.item_id == item_id, DeliveryRow.outcome.is_(None))
            .values(finished_at=now, outcome="unknown", detail=detail)
        )
        return True

    def last_attempt_started(self, agency: str) -> datetime | None:
        """Return when the agency's latest delivery attempt began (for the rate limit)."""
        query = select(func.max(DeliveryRow.started_at)).where(DeliveryRow.agency == agency)
        return aware_or_none(self._connection.scalar(query))

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
