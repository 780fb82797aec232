"""Turning rows into domain values, and small helpers shared by the store."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol, cast

from babel.numbers import get_currency_precision
from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Result,
    Row,
    Table,
    and_,
    exists,
    select,
    update,
)

from ..bookings import Booking, BookingStatus, Contact
from ..consent import Action, AddressConsent, ConsentEvent, Source
from ..kinds import Eligibility
from ..planning import DateRange
from ..queue import QueueItem, Rendered, Status
from ..schema import (
    AddressRow,
    BookingRow,
    ConsentEventRow,
    ContactRow,
    ItemBodyRow,
    ItemRow,
    KindChoiceRow,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A booking the planner may queue an item for, with its contact."""

    booking_id: int
    booking: Booking
    contact: Contact


@dataclass(frozen=True, slots=True, kw_only=True)
class NewItem:
    agency: str
    kind: str
    booking_id: int
    anchor_on: date
    visible: DateRange
    status: Status
    content: Rendered
    #: created while its kind is set to auto_send: the daemon may approve it
    auto_send: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertCounts:
    created: int
    updated: int
    unchanged: int


ITEMS = cast("Table", ItemRow.__table__)
BODIES = cast("Table", ItemBodyRow.__table__)


def minor_units(amount: Decimal, currency: str) -> int:
    """Return `amount` in the currency's minor unit (cents for EUR)."""
    return int(amount.scaleb(get_currency_precision(currency)))


def major_units(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-get_currency_precision(currency))


def eligible(eligibility: Eligibility) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [
        BookingRow.status.in_([str(s) for s in eligibility.statuses])
    ]
    if eligibility.needs_outstanding_balance:
        conditions.append(BookingRow.balance_outstanding_minor > 0)
    return and_(*conditions)


def to_queue(
    agency: str | ColumnElement[str],
    kind: QueueKind,
    anchors: DateRange | tuple[ColumnElement[date], ColumnElement[date]],
) -> list[ColumnElement[bool]]:
    """Conditions on `BookingRow`: the agency's eligible bookings anchored in `anchors`
    that have no live item (any but a withdrawn one) for the kind and that anchor date.

    What a planning pass queues, and what the forecast counts. The agency and the
    range may be bound parameters, for a statement built once and run many times.
    """
    anchor = getattr(BookingRow, kind.anchor)
    first, last = (anchors.first, anchors.last) if isinstance(anchors, DateRange) else anchors
    live_item = exists().where(
        ItemRow.booking_id == BookingRow.id,
        ItemRow.kind == kind.name,
        ItemRow.anchor_on == anchor,
        ItemRow.status != Status.WITHDRAWN,
    )
    return [
        BookingRow.agency == agency,
        anchor.between(first, last),
        eligible(kind.eligibility),
        ~live_item,
    ]


class QueueKind(Protocol):
    """What `to_queue` reads of a kind."""

    @property
    def name(self) -> str: ...

    @property
    def anchor(self) -> str: ...

    @property
    def eligibility(self) -> Eligibility: ...


def item_query() -> Any:
    return (
        select(
            ItemRow,
            ItemBodyRow.body_text,
            ItemBodyRow.body_html,
            BookingRow.ref.label("booking_ref"),
            ContactRow.ref.label("contact_ref"),
            ContactRow.name.label("contact_name"),
            ContactRow.email,
            AddressRow,
            _kind_refused().label("kind_refused"),
        )
        .join(ItemBodyRow, ItemBodyRow.item_id == ItemRow.id)
        .join(BookingRow, BookingRow.id == ItemRow.booking_id)
        .join(ContactRow, ContactRow.id == BookingRow.contact_id)
        .outerjoin(AddressRow, AddressRow.id == ContactRow.address_id)
    )


def _kind_refused() -> ColumnElement[bool]:
    """The item's contact refused its kind (whatever its agency requires: see `consent_of`)."""
    return (
        exists()
        .where(
            KindChoiceRow.address_id == ContactRow.address_id,
            KindChoiceRow.kind == ItemRow.kind,
            KindChoiceRow.receive.is_(False),
        )
        .correlate_except(KindChoiceRow)
    )


def save_bodies(connection: Connection, item_id: int, content: Rendered) -> None:
    """Replace an item's text and HTML (after its row changed in the same transaction)."""
    connection.execute(
        update(BODIES)
        .where(BODIES.c.item_id == item_id)
        .values(body_text=content.text, body_html=content.html)
    )


def item_from(row: Row[Any]) -> QueueItem:
    item: ItemRow = row[0]
    return QueueItem(
        id=item.id,
        agency=item.agency,
        kind=item.kind,
        status=Status(item.status),
        booking_ref=row.booking_ref,
        contact_ref=row.contact_ref,
        contact_name=row.contact_name,
        to=row.email,
        anchor_on=item.anchor_on,
        visible_from=item.visible_from,
        visible_until=item.visible_until,
        subject=item.subject,
        text=row.body_text,
        html=row.body_html,
        locale=item.locale,
        edited=item.edited,
        reason=item.reason,
        created_at=aware(item.created_at),
        updated_at=aware(item.updated_at),
        approved_by=item.approved_by,
        attempts=item.attempts,
        next_attempt_at=aware_or_none(item.next_attempt_at),
        message_id=item.message_id,
        sent_at=aware_or_none(item.sent_at),
        last_error=item.last_error,
        consent=consent_from(row.AddressRow) if row.AddressRow is not None else None,
        edited_by=item.edited_by,
        kind_refused=bool(row.kind_refused),
    )


def consent_from(row: AddressRow) -> AddressConsent:
    return AddressConsent(
        address=row.address,
        opted_out_by=Source(row.opted_out_by) if row.opted_out_by else None,
        opted_out_at=aware_or_none(row.opted_out_at),
        confirmed_at=aware_or_none(row.confirmed_at),
        confirmation_sent_at=aware_or_none(row.confirmation_sent_at),
        staff_confirmation_sent_at=aware_or_none(row.staff_confirmation_sent_at),
    )


def event_from(row: ConsentEventRow) -> ConsentEvent:
    return ConsentEvent(
        address=row.address,
        action=Action(row.action),
        source=Source(row.source),
        method=row.method,
        actor=row.actor,
        detail=row.detail,
        occurred_at=aware(row.occurred_at),
        recorded_at=aware(row.recorded_at),
        kind=row.kind,
    )


def booking_from(row: BookingRow, contact_ref: str) -> Booking:
    return Booking(
        ref=row.ref,
        agency=row.agency,
        contact_ref=contact_ref,
        property=row.property,
        status=BookingStatus(row.status),
        option_expires_on=row.option_expires_on,
        balance_due_on=row.balance_due_on,
        balance_outstanding=major_units(row.balance_outstanding_minor, row.currency),
        currency=row.currency,
        arrival_on=row.arrival_on,
        departure_on=row.departure_on,
    )


def contact_from(row: ContactRow) -> Contact:
    return Contact(
        ref=row.ref,
        agency=row.agency,
        name=row.name,
        email=row.email,
        locale=row.locale,
    )


def rowcount(result: Result[Any]) -> int:
    return cast("CursorResult[Any]", result).rowcount


def aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


def batch_json(rows: Sequence[dict[str, Any]], dialect: str) -> str:
    """A batch's rows as the JSON its statement reads; instants as the database keeps them.

    SQLite: naive UTC with microseconds, as SQLAlchemy stores them (the text is compared
    as stored); PostgreSQL: ISO 8601 with the offset, read as timestamptz. A batch's
    instants are mostly one (its `now`): each is formatted once.
    """
    seen: dict[datetime, str] = {}

    def instant(value: object) -> str:
        if not isinstance(value, datetime):
            raise TypeError(f"{value!r} is not JSON serialisable")
        if (written := seen.get(value)) is None:
            utc = value.astimezone(UTC)
            sqlite = dialect == "sqlite"
            written = utc.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else utc.isoformat()
            seen[value] = written
        return written

    return json.dumps(rows, default=instant)


def chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def report_filters(
    query: Any,
    source_column: Any,
    when_column: Any,
    *,
    source: Any = None,
    since: datetime | None = None,
    until: datetime | None = None,
    prefix: str | None = None,
) -> Any:
    """Narrow a consent report's query: by source, time range (`until` excluded) and
    address prefix (any letter case; `%` and `_` in it are plain characters)."""
    if source is not None:
        query = query.where(source_column == str(source))
    if since is not None:
        query = query.where(when_column >= since)
    if until is not None:
        query = query.where(when_column < until)
    if prefix:
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(AddressRow.address_key.like(f"{escaped}%", escape="\\"))
    return query
