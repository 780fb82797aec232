"""What the planning pass reads and writes: candidates, new items, withdrawal, expiry."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    Table,
    Update,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from ..bookings import Contact
from ..kinds import Eligibility, Kind
from ..planning import DateRange, WithdrawReason
from ..queue import Rendered, Status, sources_of
from ..schema import BookingRow, ContactRow, DataVersionRow, ItemRow, PlanningPassRow
from ._base import StoreBase
from ._rows import (
    BODIES,
    ITEMS,
    Candidate,
    NewItem,
    aware,
    booking_from,
    rowcount,
    save_bodies,
    to_queue,
)
from ._rules import KindLike, withdrawal_rules


@dataclass(frozen=True, slots=True, kw_only=True)
class PassState:
    """An agency's latest planning pass (None: never planned) and its data version now."""

    last_planned_on: date | None
    version: int
    planned_version: int | None = None
    planned_kinds: str | None = None

    def is_unchanged(self, today: date, kinds: str) -> bool:
        """Tell whether a pass for `today` already ran on the same data and kinds."""
        return (
            self.last_planned_on == today
            and self.planned_version == self.version
            and self.planned_kinds == kinds
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PassRecord:
    """A planning pass to remember (`PlanningStore.record_passes`)."""

    agency: str
    today: date
    version: int | None = None
    kinds: str | None = None


class PlanningStore(StoreBase):
    """The planner's queries."""

    def pass_state(self, agency: str) -> PassState:
        """Return what the agency's latest pass saw, and its data version now."""
        query = (
            select(
                PlanningPassRow.last_planned_on,
                PlanningPassRow.planned_version,
                PlanningPassRow.planned_kinds,
                DataVersionRow.version,
            )
            .select_from(PlanningPassRow)
            .outerjoin(DataVersionRow, DataVersionRow.agency == PlanningPassRow.agency)
            .where(PlanningPassRow.agency == agency)
        )
        row = self._connection.execute(query).first()
        if row is None:
            version = self._connection.scalar(
                select(DataVersionRow.version).where(DataVersionRow.agency == agency)
            )
            return PassState(last_planned_on=None, version=version or 0)
        last, planned_version, planned_kinds, version = row
        return PassState(
            last_planned_on=last,
            version=version or 0,
            planned_version=planned_version,
            planned_kinds=planned_kinds,
        )

    def pass_states(self, agencies: Sequence[str]) -> dict[str, PassState]:
        """As `pass_state` for several agencies: two statements whatever their number."""
        versions: dict[str, int] = {
            agency: version
            for agency, version in self._connection.execute(
                select(DataVersionRow.agency, DataVersionRow.version).where(
                    DataVersionRow.agency.in_(agencies)
                )
            )
        }
        passes = {
            agency: (last, planned_version, planned_kinds)
            for agency, last, planned_version, planned_kinds in self._connection.execute(
                select(
                    PlanningPassRow.agency,
                    PlanningPassRow.last_planned_on,
                    PlanningPassRow.planned_version,
                    PlanningPassRow.planned_kinds,
                ).where(PlanningPassRow.agency.in_(agencies))
            )
        }
        states: dict[str, PassState] = {}
        for agency in agencies:
            last, planned_version, planned_kinds = passes.get(agency, (None, None, None))
            states[agency] = PassState(
                last_planned_on=last,
                version=versions.get(agency) or 0,
                planned_version=planned_version,
                planned_kinds=planned_kinds,
            )
        return states

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

    def record_pass(
        self, agency: str, today: date, *, version: int | None = None, kinds: str | None = None
    ) -> None:
        """Remember that `agency` was planned for `today` (a later day is never undone).

        `version` is the agency's data version the pass read, `kinds` a digest of its
        kinds: a later pass of the same day with both unchanged has nothing to do.
        """
        self.record_passes([PassRecord(agency=agency, today=today, version=version, kinds=kinds)])

    def record_passes(self, passes: Sequence[PassRecord]) -> None:
        """As `record_pass` for several agencies, in one statement."""
        if not passes:
            return
        statement = self._insert(PlanningPassRow).values(
            agency=bindparam("b_agency"),
            last_planned_on=bindparam("b_today"),
            last_run_at=self._now(),
            planned_version=bindparam("b_version"),
            planned_kinds=bindparam("b_kinds"),
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
                "planned_version": statement.excluded.planned_version,
                "planned_kinds": statement.excluded.planned_kinds,
            },
        )
        self._connection.execute(
            statement,
            [
                {
                    "b_agency": r.agency,
                    "b_today": r.today,
                    "b_version": r.version,
                    "b_kinds": r.kinds,
                }
                for r in passes
            ],
        )

    def candidates(self, agency: str, kind: Kind, anchors: DateRange) -> list[Candidate]:
        """Return the agency's eligible bookings anchored in `anchors` with no live item.

        One indexed range query per agency and kind (`planning.anchors_to_plan`
        gives the range); bookings that already have an
        item for this kind and anchor date (other than a withdrawn one) are left out.
        The statement is built once per kind definition and run with parameters.
        """
        statement = _candidates_statement(kind.name, kind.anchor, kind.eligibility)
        params = {"b_agency": agency, "b_first": anchors.first, "b_last": anchors.last}
        return [_candidate_from(row) for row in self._connection.execute(statement, params)]

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
        ids = [added.get((i.booking_id, i.kind, i.anchor_on)) for i in items]
        bodies = [
            {"item_id": n, "body_text": i.content.text, "body_html": i.content.html}
            for n, i in zip(ids, items, strict=True)
            if n is not None
        ]
        if bodies:
            self._connection.execute(insert(BODIES), bodies)
        return ids

    def refresh_item_statistics(self) -> None:
        """Let PostgreSQL plan with the items written so far (see `refresh_statistics`).

        A first pass into an empty table of items kept plans made when it was empty:
        each booking's check for a live item became a scan of every item written.
        """
        if self._dialect == "postgresql":
            self._connection.exec_driver_sql("ANALYZE items")

    def stale_items_of(
        self, agencies: Sequence[str], kind: str
    ) -> dict[str, list[tuple[int, date, Candidate]]]:
        """As `stale_items` for several agencies, by agency, in one statement."""
        params = {"b_agencies": list(agencies), "b_kind": kind}
        found: dict[str, list[tuple[int, date, Candidate]]] = {}
        for row in self._connection.execute(_stale_many_statement(), params):
            found.setdefault(row.item_agency, []).append(
                (row.item_id, row.item_anchor_on, _candidate_from(row))
            )
        return found

    def stale_items(self, agency: str, kind: str) -> list[tuple[int, date, Candidate]]:
        """Return pending, unedited items whose booking or contact changed since rendering."""
        rows = self._connection.execute(_stale_statement(), {"b_agency": agency, "b_kind": kind})
        return [(row.item_id, row.item_anchor_on, _candidate_from(row)) for row in rows]

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
                locale=content.locale,
                rendered_at=self._now(),
                updated_at=self._now(),
            )
        )
        if rowcount(result) != 1:
            return False
        save_bodies(self._connection, item_id, content)
        return True

    def withdraw_unqualified(self, agency: str, kind: Kind) -> dict[WithdrawReason, int]:
        """Withdraw the agency's pending items of `kind` whose booking no longer qualifies."""
        statement = _withdraw_statement(kind.name, kind.anchor, kind.eligibility)
        params = {"b_agency": agency, "b_kind": kind.name, "b_now": self._now()}
        rows = self._connection.execute(statement, params)
        return dict(Counter(WithdrawReason(reason) for _, reason in rows))

    def withdraw_unqualified_of(
        self, agencies: Sequence[str], kind: Kind
    ) -> dict[str, dict[WithdrawReason, int]]:
        """As `withdraw_unqualified` for several agencies sharing the kind's definition."""
        statement = _withdraw_many_statement(kind.name, kind.anchor, kind.eligibility)
        params = {"b_agencies": list(agencies), "b_kind": kind.name, "b_now": self._now()}
        found: dict[str, dict[WithdrawReason, int]] = {}
        for _, reason, agency in self._connection.execute(statement, params):
            counts = found.setdefault(agency, {})
            counts[WithdrawReason(reason)] = counts.get(WithdrawReason(reason), 0) + 1
        return found

    def withdraw_where(
        self, kind: KindLike, where: Sequence[ColumnElement[bool]]
    ) -> list[tuple[int, WithdrawReason]]:
        """Withdraw the pending and approved items matching `where` that no longer qualify.

        One statement: the first withdrawal rule that holds names the reason.
        Return (id, reason) of each item withdrawn.
        """
        statement = _withdrawal(kind, where).values(updated_at=self._now())
        return [(i, WithdrawReason(r)) for i, r in self._connection.execute(statement)]

    def expire_passed_of(self, agencies: Sequence[str], today: date) -> dict[str, int]:
        """As `expire_passed` for several agencies sharing `today`; the count by agency."""
        rows = self._connection.execute(
            update(ItemRow)
            .where(
                ItemRow.agency.in_(agencies),
                ItemRow.status.in_(sources_of(Status.EXPIRED)),
                ItemRow.visible_until < today,
            )
            .values(status=Status.EXPIRED, reason="window_passed", updated_at=self._now())
            .returning(ItemRow.agency)
        )
        return dict(Counter(agency for (agency,) in rows))

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


def _withdrawal(kind: KindLike, where: Sequence[ColumnElement[bool]]) -> Update:
    """The withdrawal of the pending and approved items matching `where` (see `withdraw_where`)."""
    table = ITEMS
    rules = withdrawal_rules(kind)
    booking_of_item = BookingRow.id == table.c.booking_id
    reason = (
        select(case(*[(condition, str(r)) for r, condition in rules]))
        .where(booking_of_item)
        .scalar_subquery()
    )
    return (
        update(table)
        .where(
            *where,
            table.c.status.in_(sources_of(Status.WITHDRAWN)),
            exists().where(booking_of_item, or_(*(condition for _, condition in rules))),
        )
        .values(status=Status.WITHDRAWN, reason=reason)
        .returning(table.c.id, table.c.reason)
    )


@dataclass(frozen=True, slots=True)
class _KindKey:
    """What the planner's statements read of a kind (the rest is per agency)."""

    name: str
    anchor: str
    eligibility: Eligibility


@functools.lru_cache(maxsize=64)
def _withdraw_statement(name: str, anchor: str, eligibility: Eligibility) -> Update:
    where = [ITEMS.c.agency == bindparam("b_agency"), ITEMS.c.kind == bindparam("b_kind")]
    statement = _withdrawal(_KindKey(name, anchor, eligibility), where)
    return statement.values(updated_at=bindparam("b_now", type_=ITEMS.c.updated_at.type))


@functools.lru_cache(maxsize=64)
def _withdraw_many_statement(name: str, anchor: str, eligibility: Eligibility) -> Update:
    where = [
        ITEMS.c.agency.in_(bindparam("b_agencies", expanding=True)),
        ITEMS.c.kind == bindparam("b_kind"),
    ]
    statement = _withdrawal(_KindKey(name, anchor, eligibility), where)
    statement = statement.values(updated_at=bindparam("b_now", type_=ITEMS.c.updated_at.type))
    return statement.returning(ITEMS.c.agency)


_BOOKINGS = cast("Table", BookingRow.__table__)
_CONTACTS = cast("Table", ContactRow.__table__)
#: The contact's columns beside the booking's, under names of their own.
_CONTACT_COLUMNS = tuple(
    _CONTACTS.c[name].label(f"contact_{name}")
    for name in ("ref", "agency", "name", "email", "locale")
)


@functools.lru_cache(maxsize=64)
def _candidates_statement(name: str, anchor: str, eligibility: Eligibility) -> Select[Any]:
    kind = _KindKey(name, anchor, eligibility)
    anchors = (bindparam("b_first", type_=Date), bindparam("b_last", type_=Date))
    return (
        select(*_BOOKINGS.c, *_CONTACT_COLUMNS)
        .join_from(_BOOKINGS, _CONTACTS, _CONTACTS.c.id == _BOOKINGS.c.contact_id)
        .where(*to_queue(bindparam("b_agency"), kind, anchors))
        .order_by(_BOOKINGS.c[anchor], _BOOKINGS.c.ref)
    )


@functools.lru_cache(maxsize=1)
def _stale_statement() -> Select[Any]:
    return _stale_query(ITEMS.c.agency == bindparam("b_agency"))


@functools.lru_cache(maxsize=1)
def _stale_many_statement() -> Select[Any]:
    agencies = ITEMS.c.agency.in_(bindparam("b_agencies", expanding=True))
    return _stale_query(agencies).add_columns(ITEMS.c.agency.label("item_agency"))


def _stale_query(agencies: ColumnElement[bool]) -> Select[Any]:
    """The pending, unedited items of `agencies` (and a kind) whose booking or contact changed."""
    return (
        select(
            ITEMS.c.id.label("item_id"),
            ITEMS.c.anchor_on.label("item_anchor_on"),
            *_BOOKINGS.c,
            *_CONTACT_COLUMNS,
        )
        .join_from(ITEMS, _BOOKINGS, _BOOKINGS.c.id == ITEMS.c.booking_id)
        .join(_CONTACTS, _CONTACTS.c.id == _BOOKINGS.c.contact_id)
        .where(
            agencies,
            ITEMS.c.kind == bindparam("b_kind"),
            ITEMS.c.status == Status.PENDING,
            ITEMS.c.edited.is_(False),
            or_(
                _BOOKINGS.c.updated_at > ITEMS.c.rendered_at,
                _CONTACTS.c.updated_at > ITEMS.c.rendered_at,
            ),
        )
        .order_by(ITEMS.c.id)
    )


def _candidate_from(row: Any) -> Candidate:
    contact = Contact(
        ref=row.contact_ref,
        agency=row.contact_agency,
        name=row.contact_name,
        email=row.contact_email,
        locale=row.contact_locale,
    )
    return Candidate(booking_id=row.id, booking=booking_from(row, row.contact_ref), contact=contact)
