"""The queue as staff see it: listing items and moving them between states."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    update,
)

from ..errors import NotFoundError, TransitionError
from ..queue import QueueItem, Rendered, Status, check_transition, sources_of
from ..schema import ItemRow
from ._base import StoreBase
from ._rows import item_from, item_query, rowcount


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

    def save_edit(self, item_id: int, content: Rendered) -> QueueItem:
        """Store staff's version of an item's content; it is never re-rendered."""
        result = self._db.execute(
            update(ItemRow)
            .execution_options(synchronize_session=False)
            .where(ItemRow.id == item_id, ItemRow.status == Status.PENDING)
            .values(
                subject=content.subject,
                body_text=content.text,
                body_html=content.html,
                edited=True,
                updated_at=self._now(),
            )
        )
        if rowcount(result) != 1:
            current = self.item(item_id).status
            raise TransitionError(
                f"item {item_id} is {current}: only pending items can be edited "
                "(see 'reminders queue --status pending')"
            )
        return self.item(item_id)
