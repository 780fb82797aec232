"""What the planning pass reads and writes: candidates, new items, withdrawal, expiry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import (
    ColumnElement,
    case,
    exists,
    func,
    or_,
    select,
    update,
)

from ..kinds import Kind
from ..planning import DateRange, WithdrawReason
from ..queue import Rendered, Status, sources_of
from ..schema import BookingRow, ContactRow, ItemRow, PlanningPassRow
from ._base import StoreBase
from ._rows import (
    ITEMS,
    Candidate,
    NewItem,
    aware,
    booking_from,
    contact_from,
    rowcount,
    to_queue,
)
from ._rules import KindLike, withdrawal_rules


class PlanningStore(StoreBase):
    """The planner's queries."""

    def last_planned_on(self, agency: str) -> date | None:
        query = select(PlanningPassRow.last_planned_on).where(PlanningPassRow.agency == agency)
        return self._db.scalar(query)

    def last_passes(self) -> dict[str, tuple[date, datetime]]:
        """Return each agency's last planned local day and when that pass ran."""
        query = select(
            PlanningPassRow.agency, PlanningPassRow.last_planned_on, PlanningPassRow.last_run_at
        )
        return {agency: (day, aware(at)) for agency, day, at in self._db.execute(query)}

    def claim_summary(self, agency: str, today: date) -> date | None:
        """Note that `agency`'s summary of `today` goes out; return the previous day noted.

        A result equal to `today` means it already went out (or the agency was never
        planned): nothing was changed.
        """
        previous = self._db.scalar(
            select(PlanningPassRow.summary_sent_on).where(PlanningPassRow.agency == agency)
        )
        result = self._db.execute(
            update(PlanningPassRow)
            .execution_options(synchronize_session=False)
            .where(
                PlanningPassRow.agency == agency,
                or_(
                    PlanningPassRow.summary_sent_on.is_(None),
                    PlanningPassRow.summary_sent_on < today,
                ),
            )
            .values(summary_sent_on=today)
        )
        return previous if rowcount(result) == 1 else today

    def release_summary(self, agency: str, today: date, previous: date | None) -> None:
        """Undo `claim_summary` after the summary could not be sent."""
        self._db.execute(
            update(PlanningPassRow)
            .execution_options(synchronize_session=False)
            .where(PlanningPassRow.agency == agency, PlanningPassRow.summary_sent_on == today)
            .values(summary_sent_on=previous)
        )

    def record_pass(self, agency: str, today: date) -> None:
        """Remember that `agency` was planned for `today` (a later day is never undone)."""
        statement = self._insert(PlanningPassRow).values(
            agency=agency, last_planned_on=today, last_run_at=self._now()
        )
        statement = statement.on_conflict_do_update(
            index_elements=["agency"],
            set_={
                "last_planned_on": func.max(
                    PlanningPassRow.last_planned_on, statement.excluded.last_planned_on
                )
                if self._dialect == "sqlite"
                else func.greatest(
                    PlanningPassRow.last_planned_on, statement.excluded.last_planned_on
                ),
                "last_run_at": statement.excluded.last_run_at,
            },
        )
        self._db.execute(statement)

    def candidates(self, agency: str, kind: Kind, anchors: DateRange) -> list[Candidate]:
        """Return the agency's eligible bookings anchored in `anchors` with no live item.

        One indexed range query per agency and kind (`planning.anchors_to_plan`
        gives the range); bookings that already have an
        item for this kind and anchor date (other than a withdrawn one) are left out.
        """
        anchor = getattr(BookingRow, kind.anchor)
        query = (
            select(BookingRow, ContactRow)
            .join(ContactRow, ContactRow.id == BookingRow.contact_id)
            .where(*to_queue(agency, kind, anchors))
            .order_by(anchor, BookingRow.ref)
        )
        return [
            Candidate(booking_id=b.id, booking=booking_from(b, c.ref), contact=contact_from(c))
            for b, c in self._db.execute(query)
        ]

    def add_items(self, items: Sequence[NewItem]) -> list[int | None]:
        """Insert items; return each one's new id, or None where one already existed."""
        if not items:
            return []
        now = self._now()
        rows = [
            {
                "agency": i.agency,
                "kind": i.kind,
                "booking_id": i.booking_id,
                "anchor_on": i.anchor_on,
                "visible_from": i.visible.first,
                "visible_until": i.visible.last,
                "status": str(i.status),
                "locale": i.content.locale,
                "subject": i.content.subject,
                "body_text": i.content.text,
                "body_html": i.content.html,
                "edited": False,
                "auto_send": i.auto_send,
                "rendered_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for i in items
        ]
        # The partial unique index decides: a concurrent pass loses quietly. One
        # statement for the batch; a key missing from what it returns already existed.
        table = ITEMS
        statement = (
            self._insert(table)
            .on_conflict_do_nothing()
            .returning(table.c.id, table.c.booking_id, table.c.kind, table.c.anchor_on)
        )
        added = {
            (row.booking_id, row.kind, row.anchor_on): row.id
            for row in self._connection.execute(statement, rows)
        }
        return [added.get((i.booking_id, i.kind, i.anchor_on)) for i in items]

    def stale_items(self, agency: str, kind: str) -> list[tuple[int, date, Candidate]]:
        """Return pending, unedited items whose booking or contact changed since rendering."""
        query = (
            select(ItemRow.id, ItemRow.anchor_on, BookingRow, ContactRow)
            .join(BookingRow, BookingRow.id == ItemRow.booking_id)
            .join(ContactRow, ContactRow.id == BookingRow.contact_id)
            .where(
                ItemRow.agency == agency,
                ItemRow.kind == kind,
                ItemRow.status == Status.PENDING,
                ItemRow.edited.is_(False),
                or_(
                    BookingRow.updated_at > ItemRow.rendered_at,
                    ContactRow.updated_at > ItemRow.rendered_at,
                ),
            )
            .order_by(ItemRow.id)
        )
        return [
            (
                item_id,
                anchor_on,
                Candidate(booking_id=b.id, booking=booking_from(b, c.ref), contact=contact_from(c)),
            )
            for item_id, anchor_on, b, c in self._db.execute(query)
        ]

    def save_render(self, item_id: int, content: Rendered) -> bool:
        """Replace a pending, unedited item's content; False if staff got there first."""
        result = self._db.execute(
            update(ItemRow)
            .execution_options(synchronize_session=False)
            .where(
                ItemRow.id == item_id, ItemRow.status == Status.PENDING, ItemRow.edited.is_(False)
            )
            .values(
                subject=content.subject,
                body_text=content.text,
                body_html=content.html,
                locale=content.locale,
                rendered_at=self._now(),
                updated_at=self._now(),
            )
        )
        return rowcount(result) == 1

    def withdraw_unqualified(self, agency: str, kind: Kind) -> dict[WithdrawReason, int]:
        """Withdraw the agency's pending items of `kind` whose booking no longer qualifies."""
        withdrawn = self.withdraw_where(kind, [ITEMS.c.agency == agency, ITEMS.c.kind == kind.name])
        return dict(Counter(reason for _, reason in withdrawn))

    def withdraw_where(
        self, kind: KindLike, where: Sequence[ColumnElement[bool]]
    ) -> list[tuple[int, WithdrawReason]]:
        """Withdraw the pending and approved items matching `where` that no longer qualify.

        One statement: the first withdrawal rule that holds names the reason.
        Return (id, reason) of each item withdrawn.
        """
        table = ITEMS
        rules = withdrawal_rules(kind)
        booking_of_item = BookingRow.id == table.c.booking_id
        reason = (
            select(case(*[(condition, str(r)) for r, condition in rules]))
            .where(booking_of_item)
            .scalar_subquery()
        )
        statement = (
            update(table)
            .where(
                *where,
                table.c.status.in_(sources_of(Status.WITHDRAWN)),
                exists().where(booking_of_item, or_(*(condition for _, condition in rules))),
            )
            .values(status=Status.WITHDRAWN, reason=reason, updated_at=self._now())
            .returning(table.c.id, table.c.reason)
        )
        return [(i, WithdrawReason(r)) for i, r in self._connection.execute(statement)]

    def expire_passed(self, agency: str, today: date) -> int:
        """Expire the agency's pending items whose window ended before `today`."""
        result = self._db.execute(
            update(ItemRow)
            .execution_options(synchronize_session=False)
            .where(
                ItemRow.agency == agency,
                ItemRow.status.in_(sources_of(Status.EXPIRED)),
                ItemRow.visible_until < today,
            )
            .values(status=Status.EXPIRED, reason="window_passed", updated_at=self._now())
        )
        return rowcount(result)
