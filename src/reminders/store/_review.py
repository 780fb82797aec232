"""What staff ask about the days ahead and about one booking: forecast counts, explain."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, literal, select, union_all

from ..consent import AddressConsent
from ..kinds import Kind
from ..planning import DateRange
from ..queue import QueueItem, Status
from ..schema import AddressRow, BookingRow, ContactRow, ItemRow
from ._base import StoreBase
from ._rows import (
    Candidate,
    booking_from,
    consent_from,
    contact_from,
    item_from,
    item_query,
    to_queue,
)
from ._rules import still_qualifies


class ReviewStore(StoreBase):
    """Read-only queries of the forecast and of `explain`."""

    def forecast_counts(
        self, agency: str, kind: Kind, anchors: DateRange, first_day: date
    ) -> tuple[dict[date, int], dict[date, int]]:
        """Count, in one statement, what the tab will hold from `first_day` on.

        Return (bookings a pass would queue, by anchor date within `anchors`;
        pending items that still qualify and are listed on `first_day` or later,
        by their last listed day).
        """
        anchor = getattr(BookingRow, kind.anchor)
        to_come = (
            select(literal("new").label("part"), anchor.label("day"), func.count().label("n"))
            .where(*to_queue(agency, kind, anchors))
            .group_by(anchor)
        )
        queued = (
            select(
                literal("queued").label("part"),
                ItemRow.visible_until.label("day"),
                func.count().label("n"),
            )
            .join(BookingRow, BookingRow.id == ItemRow.booking_id)
            .where(
                ItemRow.agency == agency,
                ItemRow.kind == kind.name,
                ItemRow.status == Status.PENDING,
                ItemRow.visible_until >= first_day,
                still_qualifies(kind),
            )
            .group_by(ItemRow.visible_until)
        )
        new: dict[date, int] = {}
        listed: dict[date, int] = {}
        for part, day, count in self._connection.execute(union_all(to_come, queued)):
            (new if part == "new" else listed)[_day(day)] = count
        return new, listed

    def booking_of(self, ref: str) -> tuple[Candidate, AddressConsent | None] | None:
        """Return the booking `ref` with its contact and the contact's consent entry."""
        query = (
            select(BookingRow, ContactRow, AddressRow)
            .join(ContactRow, ContactRow.id == BookingRow.contact_id)
            .outerjoin(AddressRow, AddressRow.id == ContactRow.address_id)
            .where(BookingRow.ref == ref)
        )
        row = self._db.execute(query).first()
        if row is None:
            return None
        booking, contact, address = row
        candidate = Candidate(
            booking_id=booking.id,
            booking=booking_from(booking, contact.ref),
            contact=contact_from(contact),
        )
        return candidate, consent_from(address) if address is not None else None

    def booking_items(self, booking_id: int) -> list[QueueItem]:
        """Return every item of one booking, oldest first."""
        query = item_query().where(ItemRow.booking_id == booking_id).order_by(ItemRow.id)
        return [item_from(row) for row in self._db.execute(query)]


def _day(value: date | str) -> date:
    # A literal in a UNION loses its type on SQLite: the dates come back as text.
    return value if isinstance(value, date) else date.fromisoformat(value)
