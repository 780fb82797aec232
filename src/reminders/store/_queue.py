"""The queue as staff see it: listing items and moving them between states."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import (
    exists,
    update,
)

from ..errors import NotFoundError, TransitionError
from ..queue import QueueItem, Rendered, Status, check_transition, sources_of
from ..schema import DeliveryRow, ItemRow
from ._base import StoreBase
from ._rows import item_from, item_query, rowcount, save_bodies


class QueueStore(StoreBase):
    """Listing and state changes of items."""

    def items(
        self,
        *,
        agency: str | None = None,
        kind: str | None = None,
        statuses: Iterable[Status] | None = None,
        ids: Iterable[int] | None = None,
    ) -> list[QueueItem]:
        """List items, grouped by agency and kind, oldest anchor first."""
        query = item_query().order_by(ItemRow.agency, ItemRow.kind, ItemRow.anchor_on, ItemRow.id)
        if agency is not None:
            query = query.where(ItemRow.agency == agency)
        if kind is not None:
            query = query.where(ItemRow.kind == kind)
        if statuses is not None:
            query = query.where(ItemRow.status.in_([str(s) for s in statuses]))
        if ids is not None:
            query = query.where(ItemRow.id.in_(list(ids)))
        return [item_from(row) for row in self._db.execute(query)]

    def item(self, item_id: int) -> QueueItem:
        """Return item `item_id`, or say how to find one."""
        row = self._db.execute(item_query().where(ItemRow.id == item_id)).first()
        if row is None:
            raise NotFoundError(
                f"no item {item_id}: list the items with 'reminders queue --status all'"
            )
        return item_from(row)

    def transition(self, item_id: int, target: Status, *, reason: str | None = None) -> QueueItem:
        """Move one item to `target` if the transition table allows it, else raise."""
        result = self._db.execute(
            update(ItemRow)
            .execution_options(synchronize_session=False)
            .where(ItemRow.id == item_id, ItemRow.status.in_(sources_of(target)))
            .values(status=target, reason=reason, updated_at=self._now())
        )
        if rowcount(result) != 1:
            check_transition(item_id, self.item(item_id).status, target)
        return self.item(item_id)

    def restore(self, item_id: int, today: date, reason: str) -> QueueItem | None:
        """Bring a discarded item back to pending if its window includes `today`.

        Return None when the item is not discarded, its window does not include
        `today`, or it was discarded after a send whose outcome is unknown (it may
        have arrived): the caller says which.
        """
        check_transition(item_id, Status.DISCARDED, Status.PENDING)  # the table allows it
        # A delivery logged `unknown` may have arrived: restoring would let it go twice.
        unknown_send = exists().where(
            DeliveryRow.item_id == ItemRow.id, DeliveryRow.outcome == str(Status.UNKNOWN)
        )
        result = self._db.execute(
            update(ItemRow)
            .execution_options(synchronize_session=False)
            .where(
                ItemRow.id == item_id,
                ItemRow.status == Status.DISCARDED,
                ItemRow.visible_from <= today,
                ItemRow.visible_until >= today,
                ~unknown_send,
            )
            .values(status=Status.PENDING, reason=reason, updated_at=self._now())
        )
        return self.item(item_id) if rowcount(result) == 1 else None

    def had_unknown_send(self, item_id: int) -> bool:
        """Tell whether a send of the item ended with an unknown outcome."""
        query = exists().where(
            DeliveryRow.item_id == item_id, DeliveryRow.outcome == str(Status.UNKNOWN)
        )
        return bool(self._db.scalar(query.select()))

    def save_edit(
        self,
        item_id: int,
        content: Rendered,
        *,
        actor: str | None = None,
        read_at: datetime | None = None,
    ) -> QueueItem | None:
        """Store staff's version of an item's content; it is never re-rendered.

        `read_at` is the item's `updated_at` when the editor read it: if the item
        changed since, nothing is saved and None is returned (a stale save).
        """
        conditions = [ItemRow.id == item_id, ItemRow.status == Status.PENDING]
        if read_at is not None:
            conditions.append(ItemRow.updated_at == read_at)
        result = self._db.execute(
            update(ItemRow)
            .execution_options(synchronize_session=False)
            .where(*conditions)
            .values(subject=content.subject, edited=True, edited_by=actor, updated_at=self._now())
        )
        if rowcount(result) == 1:
            save_bodies(self._connection, item_id, content)
        else:
            current = self.item(item_id)
            if current.status is Status.PENDING:
                return None
            raise TransitionError(
                f"item {item_id} is {current.status}: only pending items can be edited "
                "(see 'reminders queue --status pending')"
            )
        return self.item(item_id)
