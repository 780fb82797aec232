"""All SQL lives here: set-based queries named for intent, returning domain values.

ORM rows never leave this module. State changes are conditional updates that
fail loudly when an item is not in a state the transition table allows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

from babel.numbers import get_currency_precision
from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Engine,
    Result,
    Row,
    Table,
    and_,
    case,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .bookings import Booking, BookingStatus, Contact
from .clock import Clock
from .database import check_schema, unreachable
from .errors import NotFoundError, TransitionError
from .kinds import Eligibility, Kind
from .planning import DateRange, WithdrawReason
from .queue import QueueItem, Rendered, Status, check_transition, sources_of
from .schema import BookingRow, ContactRow, ItemRow, PlanningPassRow


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


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertCounts:
    created: int
    updated: int
    unchanged: int


_ITEMS = cast("Table", ItemRow.__table__)


class Database:
    """The connector: hands out a `Store` bound to one transaction."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def check(self) -> None:
        """Raise unless the database is reachable and at the current schema."""
        check_schema(self.engine)

    @contextmanager
    def transaction(self, *, dry_run: bool = False) -> Iterator[Store]:
        """Yield a store in one transaction; commit at the end unless `dry_run`."""
        try:
            with self.engine.connect() as connection:
                transaction = connection.begin()
                try:
                    yield Store(connection, self.clock)
                except BaseException:
                    transaction.rollback()
                    raise
                if dry_run:
                    transaction.rollback()
                else:
                    transaction.commit()
        except OperationalError as error:
            raise unreachable(self.engine, error) from None


def minor_units(amount: Decimal, currency: str) -> int:
    """Return `amount` in the currency's minor unit (cents for EUR)."""
    return int(amount.scaleb(get_currency_precision(currency)))


def major_units(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-get_currency_precision(currency))


class Store:
    """Queries and state changes within one transaction."""

    def __init__(self, connection: Connection, clock: Clock) -> None:
        # A session joined to the caller's transaction, for ORM-typed selects.
        self._db = Session(bind=connection, autoflush=False, expire_on_commit=False)
        self._connection = connection
        self._dialect = connection.dialect.name
        self._clock = clock

    def _now(self) -> datetime:
        return self._clock.now()

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        return dialect.insert(table)

    # -- contacts and bookings ---------------------------------------------

    def existing_contact_refs(self, refs: Iterable[str]) -> set[str]:
        """Return which of `refs` are known contacts."""
        wanted = sorted(set(refs))
        found: set[str] = set()
        for chunk in _chunks(wanted, 500):
            found.update(self._db.scalars(select(ContactRow.ref).where(ContactRow.ref.in_(chunk))))
        return found

    def upsert_contacts(self, contacts: Sequence[Contact]) -> UpsertCounts:
        """Insert new contacts and update known ones, matched by `ref`."""
        now = self._now()
        rows = [
            {
                "ref": c.ref,
                "agency": c.agency,
                "name": c.name,
                "email": c.email,
                "locale": c.locale,
                "email_confirmed": c.email_confirmed,
                "email_opt_out": c.email_opt_out,
                "updated_at": now,
            }
            for c in contacts
        ]
        return self._upsert(ContactRow, rows)

    def upsert_bookings(self, bookings: Sequence[Booking]) -> UpsertCounts:
        """Insert new bookings and update known ones, matched by `ref`."""
        now = self._now()
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
        return self._upsert(BookingRow, rows)

    def _contact_ids(self, refs: Iterable[str]) -> dict[str, int]:
        ids: dict[str, int] = {}
        for chunk in _chunks(sorted(set(refs)), 500):
            query = select(ContactRow.ref, ContactRow.id).where(ContactRow.ref.in_(chunk))
            ids.update({ref: id_ for ref, id_ in self._db.execute(query)})
        return ids

    def _upsert(
        self, table: type[ContactRow | BookingRow], rows: list[dict[str, Any]]
    ) -> UpsertCounts:
        """Insert or update by `ref`; a row whose values did not change is left alone.

        Leaving unchanged rows alone keeps their `updated_at`, which is what tells the
        planner which pending emails to render again.
        """
        if not rows:
            return UpsertCounts(created=0, updated=0, unchanged=0)
        refs = {r["ref"] for r in rows}
        known: set[str] = set()
        for chunk in _chunks(sorted(refs), 500):
            known.update(self._db.scalars(select(table.ref).where(table.ref.in_(chunk))))
        statement = self._insert(table.__table__)
        data = [name for name in rows[0] if name not in ("ref", "updated_at")]
        statement = statement.on_conflict_do_update(
            index_elements=["ref"],
            set_={name: statement.excluded[name] for name in rows[0] if name != "ref"},
            where=or_(
                *(
                    table.__table__.c[name].is_distinct_from(statement.excluded[name])
                    for name in data
                )
            ),
        ).returning(table.__table__.c.ref)
        written: set[str] = set()
        for chunk in _chunks(rows, 500):
            written.update(self._connection.execute(statement, list(chunk)).scalars())
        created = len(refs - known)
        updated = len(written & known)
        return UpsertCounts(
            created=created, updated=updated, unchanged=len(refs) - created - updated
        )

    # -- planning ----------------------------------------------------------

    def last_planned_on(self, agency: str) -> date | None:
        query = select(PlanningPassRow.last_planned_on).where(PlanningPassRow.agency == agency)
        return self._db.scalar(query)

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

    def passes(self) -> dict[str, tuple[date, datetime]]:
        """Return each agency's last planned day and when that pass ran."""
        rows = self._db.execute(select(PlanningPassRow))
        return {r.agency: (r.last_planned_on, _aware(r.last_run_at)) for r in rows.scalars()}

    def candidates(self, agency: str, kind: Kind, anchors: DateRange) -> list[Candidate]:
        """Return the agency's eligible bookings anchored in `anchors` with no live item.

        One indexed range query per agency and kind; bookings that already have an
        item for this kind and anchor date (other than a withdrawn one) are left out.
        """
        anchor = getattr(BookingRow, kind.anchor)
        live_item = exists().where(
            ItemRow.booking_id == BookingRow.id,
            ItemRow.kind == kind.name,
            ItemRow.anchor_on == anchor,
            ItemRow.status != Status.WITHDRAWN,
        )
        query = (
            select(BookingRow, ContactRow)
            .join(ContactRow, ContactRow.id == BookingRow.contact_id)
            .where(
                BookingRow.agency == agency,
                anchor.between(anchors.first, anchors.last),
                _eligible(kind.eligibility),
                ~live_item,
            )
            .order_by(anchor, BookingRow.ref)
        )
        return [
            Candidate(booking_id=b.id, booking=_booking(b, c.ref), contact=_contact(c))
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
                "rendered_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for i in items
        ]
        # The partial unique index decides: a concurrent pass loses quietly. One
        # statement for the batch; a key missing from what it returns already existed.
        table = _ITEMS
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
                Candidate(booking_id=b.id, booking=_booking(b, c.ref), contact=_contact(c)),
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
        return _rowcount(result) == 1

    def withdraw_unqualified(self, agency: str, kind: Kind) -> dict[WithdrawReason, int]:
        """Withdraw the agency's pending items of `kind` whose booking no longer qualifies."""
        anchor = getattr(BookingRow, kind.anchor)
        rules: list[tuple[WithdrawReason, ColumnElement[bool]]] = [
            (WithdrawReason.DATE_MOVED, or_(anchor.is_(None), anchor != ItemRow.anchor_on)),
            (WithdrawReason.CANCELLED, BookingRow.status == BookingStatus.CANCELLED),
            (WithdrawReason.NOT_ELIGIBLE, BookingRow.status.not_in(kind.eligibility.statuses)),
            (WithdrawReason.AGENCY_CHANGED, BookingRow.agency != ItemRow.agency),
        ]
        if kind.eligibility.needs_outstanding_balance:
            rules.append((WithdrawReason.BALANCE_PAID, BookingRow.balance_outstanding_minor <= 0))
        # One statement per kind: the first rule that holds names the reason.
        table = _ITEMS
        booking_of_item = BookingRow.id == table.c.booking_id
        reason = (
            select(case(*[(condition, str(r)) for r, condition in rules]))
            .where(booking_of_item)
            .scalar_subquery()
        )
        statement = (
            update(table)
            .where(
                table.c.agency == agency,
                table.c.kind == kind.name,
                table.c.status.in_(sources_of(Status.WITHDRAWN)),
                exists().where(booking_of_item, or_(*(condition for _, condition in rules))),
            )
            .values(status=Status.WITHDRAWN, reason=reason, updated_at=self._now())
            .returning(table.c.reason)
        )
        return dict(
            Counter(WithdrawReason(r) for r in self._connection.execute(statement).scalars())
        )

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
        return _rowcount(result)

    # -- the queue ---------------------------------------------------------

    def items(
        self,
        *,
        agency: str | None = None,
        kind: str | None = None,
        statuses: Iterable[Status] | None = None,
        ids: Iterable[int] | None = None,
    ) -> list[QueueItem]:
        """List items, grouped by agency and kind, oldest anchor first."""
        query = _item_query().order_by(ItemRow.agency, ItemRow.kind, ItemRow.anchor_on, ItemRow.id)
        if agency is not None:
            query = query.where(ItemRow.agency == agency)
        if kind is not None:
            query = query.where(ItemRow.kind == kind)
        if statuses is not None:
            query = query.where(ItemRow.status.in_([str(s) for s in statuses]))
        if ids is not None:
            query = query.where(ItemRow.id.in_(list(ids)))
        return [_item(row) for row in self._db.execute(query)]

    def item(self, item_id: int) -> QueueItem:
        """Return item `item_id`, or say how to find one."""
        row = self._db.execute(_item_query().where(ItemRow.id == item_id)).first()
        if row is None:
            raise NotFoundError(
                f"no item {item_id}: list the items with 'reminders queue --status all'"
            )
        return _item(row)

    def transition(self, item_id: int, target: Status, *, reason: str | None = None) -> QueueItem:
        """Move one item to `target` if the transition table allows it, else raise."""
        result = self._db.execute(
            update(ItemRow)
            .execution_options(synchronize_session=False)
            .where(ItemRow.id == item_id, ItemRow.status.in_(sources_of(target)))
            .values(status=target, reason=reason, updated_at=self._now())
        )
        if _rowcount(result) != 1:
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
        if _rowcount(result) != 1:
            current = self.item(item_id).status
            raise_not_editable(item_id, current)
        return self.item(item_id)

    def count_by_tab(self, statuses: Iterable[Status]) -> list[Row[Any]]:
        """Count items per (agency, kind, status)."""
        query = (
            select(ItemRow.agency, ItemRow.kind, ItemRow.status, func.count())
            .where(ItemRow.status.in_([str(s) for s in statuses]))
            .group_by(ItemRow.agency, ItemRow.kind, ItemRow.status)
            .order_by(ItemRow.agency, ItemRow.kind)
        )
        return list(self._db.execute(query))


def raise_not_editable(item_id: int, current: Status) -> None:
    raise TransitionError(
        f"item {item_id} is {current}: only pending items can be edited "
        "(see 'reminders queue --status pending')"
    )


def _eligible(eligibility: Eligibility) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [
        BookingRow.status.in_([str(s) for s in eligibility.statuses])
    ]
    if eligibility.needs_outstanding_balance:
        conditions.append(BookingRow.balance_outstanding_minor > 0)
    return and_(*conditions)


def _item_query() -> Any:
    return (
        select(
            ItemRow,
            BookingRow.ref.label("booking_ref"),
            ContactRow.ref.label("contact_ref"),
            ContactRow.name.label("contact_name"),
            ContactRow.email,
            ContactRow.email_confirmed,
            ContactRow.email_opt_out,
        )
        .join(BookingRow, BookingRow.id == ItemRow.booking_id)
        .join(ContactRow, ContactRow.id == BookingRow.contact_id)
    )


def _item(row: Row[Any]) -> QueueItem:
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
        text=item.body_text,
        html=item.body_html,
        locale=item.locale,
        edited=item.edited,
        reason=item.reason,
        created_at=_aware(item.created_at),
        updated_at=_aware(item.updated_at),
        email_confirmed=row.email_confirmed,
        email_opt_out=row.email_opt_out,
    )


def _booking(row: BookingRow, contact_ref: str) -> Booking:
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


def _contact(row: ContactRow) -> Contact:
    return Contact(
        ref=row.ref,
        agency=row.agency,
        name=row.name,
        email=row.email,
        locale=row.locale,
        email_confirmed=row.email_confirmed,
        email_opt_out=row.email_opt_out,
    )


def _rowcount(result: Result[Any]) -> int:
    return cast("CursorResult[Any]", result).rowcount


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
