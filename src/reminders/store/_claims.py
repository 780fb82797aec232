"""What a dispatcher takes: sweeps, one-statement claims, approvals and leases.

A claim is one statement: every condition that must still hold (status, window,
consent, the booking's eligibility and anchor date) is in its `WHERE`, and the
rows are taken under `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite has one
writer: the claim's transaction begins IMMEDIATE).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)

from ..consent import ConsentReason
from ..delivery import Scope, SendRules
from ..queue import Status
from ..schema import AddressRow, BookingRow, ContactRow, ItemBodyRow, ItemRow
from ._planning import PlanningStore
from ._queue import QueueStore
from ._rows import ITEMS, rowcount
from ._rules import consent_reason, still_qualifies


@dataclass(frozen=True, slots=True, kw_only=True)
class Claimed:
    """An item this process now holds in `sending`, with what its message needs."""

    id: int
    agency: str
    kind: str
    booking_ref: str
    contact_name: str
    to: str | None
    subject: str
    text: str
    html: str
    locale: str
    #: this attempt's number (attempts so far, this one included)
    attempt: int


#: Stands for an instant in a statement's cache key (the real one is a parameter).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _scope_conditions(scope: Scope, *, bound: bool = False) -> list[ColumnElement[bool]]:
    """The scope as conditions; `bound`: its ids and due instant as parameters."""
    conditions: list[ColumnElement[bool]] = [ItemRow.status.in_([str(s) for s in scope.statuses])]
    if scope.ids is not None:
        ids: Any = bindparam("ids", expanding=True) if bound else list(scope.ids)
        conditions.append(ItemRow.id.in_(ids))
    if scope.agency is not None:
        conditions.append(ItemRow.agency == scope.agency)
    if scope.kind is not None:
        conditions.append(ItemRow.kind == scope.kind)
    if scope.agencies is not None:
        conditions.append(ItemRow.agency.in_(list(scope.agencies)))
    if scope.excluded:
        conditions.append(ItemRow.agency.not_in(list(scope.excluded)))
    if scope.due_at is not None:
        due: Any = bindparam("due_at") if bound else scope.due_at
        conditions.append(or_(ItemRow.next_attempt_at.is_(None), ItemRow.next_attempt_at <= due))
    return conditions


def _in_window(rules: SendRules) -> ColumnElement[bool]:
    """The item's window still includes its agency's local today."""
    return or_(
        *(
            and_(ItemRow.agency.in_(list(codes)), ItemRow.visible_until >= today)
            for today, codes in rules.todays
        )
    )


def _passed(rules: SendRules) -> ColumnElement[bool]:
    return or_(
        *(
            and_(ItemRow.agency.in_(list(codes)), ItemRow.visible_until < today)
            for today, codes in rules.todays
        )
    )


def _qualifies(rules: SendRules) -> ColumnElement[bool]:
    """The item's booking still qualifies for its kind, as its agency defines the kind."""
    return or_(
        *(
            and_(
                ItemRow.kind == kind.name,
                ItemRow.agency.in_(list(kind.agencies)),
                still_qualifies(kind),
            )
            for kind in rules.kinds
        )
    )


def _sendable(scope: Scope, rules: SendRules, *, bound: bool = False) -> Any:
    """Select the ids of the scope's items that may be sent now (`SendRules`).

    `bound`: the scope's ids and due instant and the consent cutoff are parameters
    (`ids`, `due_at`, `cutoff`), so one built statement serves every batch.
    """
    cutoff: Any = bindparam("cutoff") if bound else rules.consent_cutoff
    return (
        select(ItemRow.id)
        .join(BookingRow, BookingRow.id == ItemRow.booking_id)
        .join(ContactRow, ContactRow.id == BookingRow.contact_id)
        .join(AddressRow, AddressRow.id == ContactRow.address_id)
        .where(
            *_scope_conditions(scope, bound=bound),
            _in_window(rules),
            _qualifies(rules),
            # The kind refusal is a primary-key lookup in this same statement.
            consent_reason(cutoff, required=rules.required) == str(ConsentReason.OK),
        )
    )


def _sendable_in_order(scope: Scope, rules: SendRules) -> Any:
    """As `_sendable(bound=True)`, the booking, contact and address checked item by item.

    For PostgreSQL's claim: as joins, the planner (misled by the many conditions into
    expecting a handful of rows) joined and sorted every item of the tab on every
    claim, so a tab's claims cost its size squared (3-14 ms each for 5,000 emails).
    As one subquery per item, it walks the status index in claim order and stops
    at the batch's size. The conditions are the same.
    """
    cutoff: Any = bindparam("cutoff")
    reason = (
        select(consent_reason(cutoff, required=rules.required))
        .select_from(BookingRow)
        .join(ContactRow, ContactRow.id == BookingRow.contact_id)
        .join(AddressRow, AddressRow.id == ContactRow.address_id)
        .where(BookingRow.id == ItemRow.booking_id, _qualifies(rules))
        .scalar_subquery()
    )
    return select(ItemRow.id).where(
        *_scope_conditions(scope, bound=True),
        _in_window(rules),
        reason == str(ConsentReason.OK),
    )


@functools.lru_cache(maxsize=64)
def _claim_statement(postgresql: bool, scope: Scope, rules: SendRules) -> Any:
    """Build the claim of `scope` (with no ids, no instants: those are parameters)."""
    if postgresql:
        sendable = _sendable_in_order(scope, rules)
    else:
        sendable = _sendable(scope, rules, bound=True)
    # A run never claims an item twice (one that failed goes back to approved).
    candidates = (
        sendable.where(
            or_(ItemRow.claimed_by.is_(None), ItemRow.claimed_by != bindparam("claimant"))
        )
        .order_by(ItemRow.agency, ItemRow.kind, ItemRow.anchor_on, ItemRow.id)
        .limit(bindparam("limit", type_=Integer()))
    )
    if postgresql:
        candidates = candidates.with_for_update(skip_locked=True, of=ItemRow)
    # A materialised CTE: PostgreSQL may run an IN (subquery ... LIMIT n) more than
    # once, and so claim more than `limit` rows.
    chosen = candidates.cte("chosen").prefix_with("MATERIALIZED", dialect="postgresql")
    return (
        update(ITEMS)
        .where(
            ITEMS.c.id.in_(select(chosen.c.id)),
            ITEMS.c.status.in_([str(s) for s in scope.statuses]),
        )
        .values(
            status=Status.SENDING,
            claimed_by=bindparam("claimant"),
            claimed_at=bindparam("now", type_=ITEMS.c.claimed_at.type),
            lease_until=bindparam("lease", type_=ITEMS.c.lease_until.type),
            attempts=ITEMS.c.attempts + 1,
            next_attempt_at=None,
            approved_by=func.coalesce(ITEMS.c.approved_by, bindparam("actor")),
            updated_at=bindparam("now", type_=ITEMS.c.updated_at.type),
        )
        .returning(
            ITEMS.c.id,
            ITEMS.c.agency,
            ITEMS.c.kind,
            ITEMS.c.subject,
            ITEMS.c.locale,
            ITEMS.c.attempts,
            ITEMS.c.anchor_on,
        )
    )


def _contact_of_item() -> Any:
    return (
        select(ContactRow)
        .join(BookingRow, BookingRow.contact_id == ContactRow.id)
        .outerjoin(AddressRow, AddressRow.id == ContactRow.address_id)
        .where(BookingRow.id == ITEMS.c.booking_id)
    )


@functools.cache
def _details_statement(*, as_json: bool = False) -> Any:
    """Who each claimed item goes to and what it says; `as_json`: as one JSON array."""
    columns = (
        ItemRow.id,
        BookingRow.ref,
        ContactRow.name,
        ContactRow.email,
        ItemBodyRow.body_text,
        ItemBodyRow.body_html,
    )
    query = (
        select(*columns)
        .join(ItemBodyRow, ItemBodyRow.item_id == ItemRow.id)
        .join(BookingRow, BookingRow.id == ItemRow.booking_id)
        .join(ContactRow, ContactRow.id == BookingRow.contact_id)
        .where(ItemRow.id.in_(bindparam("ids", expanding=True)))
    )
    if not as_json:
        return query
    return query.with_only_columns(func.json_group_array(func.json_array(*columns)))


class ClaimStore(QueueStore, PlanningStore):
    """Sweeps, claims, approvals and leases: what a batch takes, and what it cannot."""

    def sweep(self, scope: Scope, rules: SendRules) -> list[tuple[int, Status, str]]:
        """Withdraw, expire or hold the scope's pending and approved items that cannot go.

        Return (id, new status, reason) of each: withdrawn (booking no longer
        qualifies), expired (window ended) or pending again (no consent).
        """
        statuses = scope.statuses & {Status.PENDING, Status.APPROVED}
        if not statuses:
            return []
        where = _scope_conditions(replace(scope, statuses=frozenset(statuses)))
        swept: list[tuple[int, Status, str]] = []
        for kind in rules.kinds:
            mine = [*where, ItemRow.kind == kind.name, ItemRow.agency.in_(list(kind.agencies))]
            swept += [(i, Status.WITHDRAWN, str(r)) for i, r in self.withdraw_where(kind, mine)]
        expired = self._connection.execute(
            update(ITEMS)
            .where(*where, _passed(rules))
            .values(status=Status.EXPIRED, reason="window_passed", updated_at=self._now())
            .returning(ITEMS.c.id)
        )
        swept += [(i, Status.EXPIRED, "window_passed") for i in expired.scalars()]
        reason = (
            _contact_of_item()
            .with_only_columns(consent_reason(rules.consent_cutoff, required=rules.required))
            .scalar_subquery()
        )
        held = self._connection.execute(
            update(ITEMS)
            .where(*where, reason != str(ConsentReason.OK))
            .values(status=Status.PENDING, reason=reason, updated_at=self._now())
            .returning(ITEMS.c.id, ITEMS.c.reason)
        )
        swept += [(i, Status.PENDING, r) for i, r in held]
        return swept

    def claim(
        self,
        scope: Scope,
        rules: SendRules,
        *,
        claimant: str,
        lease_until: datetime,
        actor: str,
        limit: int,
    ) -> list[Claimed]:
        """Take up to `limit` sendable items of `scope` for `claimant`, in one statement.

        A pending item is approved by `actor` in the same step. Items another
        transaction holds are skipped, never waited for.
        """
        # Built once per scope and rules; what changes from batch to batch is bound.
        shape = replace(
            scope,
            ids=() if scope.ids is not None else None,
            due_at=_EPOCH if scope.due_at is not None else None,
        )
        statement = _claim_statement(
            self._dialect == "postgresql",
            shape,
            replace(rules, now=_EPOCH, consent_cutoff=_EPOCH),
        )
        values: dict[str, Any] = {
            "claimant": claimant,
            "now": rules.now,
            "lease": lease_until,
            "actor": actor,
            "limit": limit,
            "cutoff": rules.consent_cutoff,
        }
        if scope.ids is not None:
            values["ids"] = list(scope.ids)
        if scope.due_at is not None:
            values["due_at"] = scope.due_at
        rows = sorted(
            self._connection.execute(statement, values),
            key=lambda r: (r.agency, r.kind, r.anchor_on, r.id),
        )
        # The claimed rows are this transaction's now: who they go to and what they
        # say are read in it too (SQLite cannot return another table's columns from an
        # UPDATE).
        details = self._details_of([row.id for row in rows])
        return [
            Claimed(
                id=row.id,
                agency=row.agency,
                kind=row.kind,
                booking_ref=details[row.id][0],
                contact_name=details[row.id][1],
                to=details[row.id][2],
                subject=row.subject,
                text=details[row.id][3],
                html=details[row.id][4],
                locale=row.locale,
                attempt=row.attempts,
            )
            for row in rows
        ]

    def _details_of(
        self, item_ids: Sequence[int]
    ) -> dict[int, tuple[str, str, str | None, str, str]]:
        """Return (booking ref, contact name, address, text, HTML) of each item.

        On SQLite the rows come back as one JSON array: the driver lets go of the
        interpreter lock for every row it steps through, and the thread sending the
        previous batch takes it each time, so a row at a time cost more than the query.
        """
        if not item_ids:
            return {}
        if self._dialect == "sqlite":
            rows = json.loads(
                self._connection.scalar(_details_statement(as_json=True), {"ids": list(item_ids)})
            )
        else:
            rows = self._connection.execute(_details_statement(), {"ids": list(item_ids)})
        return {i: (ref, name, email, text, html) for i, ref, name, email, text, html in rows}

    def tab_overview(
        self, agency: str, kind: str, cutoff: datetime, *, required: bool = False
    ) -> tuple[int, int, int]:
        """Count a tab's pending and approved items: (ready, without consent, edited and ready).

        `required`: the agency marks the kind as one a contact cannot refuse.
        """
        exempt = [(agency, kind)] if required else []
        # Grouped over a subquery: PostgreSQL must see one expression, not two copies.
        tab = (
            select(consent_reason(cutoff, required=exempt).label("reason"), ItemRow.edited)
            .join(BookingRow, BookingRow.id == ItemRow.booking_id)
            .join(ContactRow, ContactRow.id == BookingRow.contact_id)
            .outerjoin(AddressRow, AddressRow.id == ContactRow.address_id)
            .where(
                ItemRow.agency == agency,
                ItemRow.kind == kind,
                ItemRow.status.in_([Status.PENDING, Status.APPROVED]),
            )
            .subquery()
        )
        query = select(tab.c.reason == str(ConsentReason.OK), tab.c.edited, func.count()).group_by(
            tab.c.reason, tab.c.edited
        )
        ready = blocked = edited = 0
        for ok, is_edited, count in self._connection.execute(query):
            if ok:
                ready += count
                edited += count if is_edited else 0
            else:
                blocked += count
        return ready, blocked, edited

    def has_sendable(self, scope: Scope, rules: SendRules, claimant: str) -> bool:
        """Tell whether `claimant` would find anything to claim in `scope` now."""
        query = _sendable(scope, rules).where(
            or_(ItemRow.claimed_by.is_(None), ItemRow.claimed_by != claimant)
        )
        return self._connection.execute(query.limit(1)).first() is not None

    def approve_sendable(self, scope: Scope, rules: SendRules, actor: str) -> list[int]:
        """Approve the scope's pending items that could be sent now; return their ids.

        After a batch stopped (the server is unreachable): what a person asked for
        goes out with the daemon once the server answers.
        """
        sendable = _sendable(scope, rules).where(ItemRow.status == Status.PENDING)
        return self._approve(sendable.scalar_subquery(), actor)

    def _approve(self, item_ids: Any, actor: str) -> list[int]:
        """Approve the pending items among `item_ids` (a list or a subquery); return their ids."""
        result = self._connection.execute(
            update(ITEMS)
            .where(ITEMS.c.id.in_(item_ids), ITEMS.c.status == Status.PENDING)
            .values(
                status=Status.APPROVED,
                approved_by=actor,
                reason=None,
                next_attempt_at=None,
                updated_at=self._now(),
            )
            .returning(ITEMS.c.id)
        )
        return sorted(result.scalars())

    def approve(self, item_id: int, actor: str) -> None:
        """Approve a pending item for sending."""
        if not self._approve([item_id], actor):
            self.transition(item_id, Status.APPROVED)  # raises, saying why

    def approve_new(
        self, agency: str, kind: str, listed_on: date, rules: SendRules, actor: str
    ) -> int:
        """Approve a tab's pending items listed on `listed_on` whose contact consents.

        Only items created while the kind was set to auto_send: those queued before it
        was switched on were left for staff, who may be reviewing them.
        """
        scope = Scope(statuses=frozenset({Status.PENDING}), agency=agency, kind=kind)
        listed = _sendable(scope, rules).where(
            ItemRow.visible_from <= listed_on, ItemRow.auto_send.is_(True)
        )
        return len(self._approve(listed.scalar_subquery(), actor))

    def renew(self, claimant: str, item_ids: Sequence[int], lease_until: datetime) -> int:
        """Extend the lease of items `claimant` still holds; return how many."""
        if not item_ids:
            return 0
        result = self._connection.execute(
            update(ITEMS)
            .where(
                ITEMS.c.id.in_(list(item_ids)),
                ITEMS.c.status == Status.SENDING,
                ITEMS.c.claimed_by == claimant,
            )
            .values(lease_until=lease_until)
        )
        return rowcount(result)
