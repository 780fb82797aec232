"""The rules every send must still meet, as SQL conditions: one definition each.

The withdrawal rule (does a booking still qualify for its kind and anchor date?)
serves the planner's withdrawal and the dispatcher's claim; the consent reason
mirrors `consent.state_of` (a test checks both agree over a table of cases).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, case, exists, not_, or_

from ..bookings import BookingStatus
from ..consent import ConsentReason
from ..kinds import Eligibility
from ..planning import WithdrawReason
from ..schema import AddressRow, BookingRow, ContactRow, ItemRow, KindChoiceRow


class KindLike(Protocol):
    @property
    def anchor(self) -> str: ...

    @property
    def eligibility(self) -> Eligibility: ...


def withdrawal_rules(kind: KindLike, items: Any = ItemRow) -> list[tuple[WithdrawReason, Any]]:
    """Return (reason, condition) pairs, first match first: why an item no longer qualifies.

    Conditions are over `BookingRow` joined to the item (`items` is the ORM class
    or the Core table of items).
    """
    anchor = getattr(BookingRow, kind.anchor)
    rules: list[tuple[WithdrawReason, Any]] = [
        (WithdrawReason.DATE_MOVED, or_(anchor.is_(None), anchor != items.anchor_on)),
        (WithdrawReason.CANCELLED, BookingRow.status == BookingStatus.CANCELLED),
        (
            WithdrawReason.NOT_ELIGIBLE,
            BookingRow.status.not_in([str(s) for s in kind.eligibility.statuses]),
        ),
        (WithdrawReason.AGENCY_CHANGED, BookingRow.agency != items.agency),
    ]
    if kind.eligibility.needs_outstanding_balance:
        rules.append((WithdrawReason.BALANCE_PAID, BookingRow.balance_outstanding_minor <= 0))
    return rules


def still_qualifies(kind: KindLike, items: Any = ItemRow) -> ColumnElement[bool]:
    """The booking joined to the item still qualifies: no withdrawal rule holds."""
    return not_(or_(*(condition for _, condition in withdrawal_rules(kind, items))))


def kind_refused(
    items: Any = ItemRow, required: Iterable[tuple[str, str]] = ()
) -> ColumnElement[bool]:
    """The contact refused the item's kind, and the item's agency does not require it.

    A lookup by the primary key of `kind_choices` (address, kind), correlated to
    the item and its contact's address in the enclosing statement. `required` holds
    the (agency, kind) pairs marked `[agency.required]`: a refusal recorded for
    one of them (before the agency marked it) does not hold its items.
    """
    refused: ColumnElement[bool] = (
        exists()
        .where(
            KindChoiceRow.address_id == ContactRow.address_id,
            KindChoiceRow.kind == items.kind,
            KindChoiceRow.receive.is_(False),
        )
        .correlate_except(KindChoiceRow)
    )
    exempt = [and_(items.agency == agency, items.kind == kind) for agency, kind in required]
    return and_(refused, not_(or_(*exempt))) if exempt else refused


def consent_reason(
    cutoff: datetime, *, items: Any = ItemRow, required: Iterable[tuple[str, str]] = ()
) -> Any:
    """The consent reason of the contact joined to an item ('ok' when it may be sent).

    Over `ContactRow` and an outer-joined `AddressRow` and the item (`items`: the
    ORM class or the Core table); `cutoff` is now minus
    `consent.reconfirm_after_days`; `required` as for `kind_refused`. The same table
    as `consent.state_of`.
    """
    address = AddressRow
    return case(
        (or_(ContactRow.email.is_(None), address.id.is_(None)), str(ConsentReason.NO_ADDRESS)),
        (address.opted_out_by.is_not(None), str(ConsentReason.OPTED_OUT)),
        (kind_refused(items, required), str(ConsentReason.KIND_REFUSED)),
        (address.confirmed_at >= cutoff, str(ConsentReason.OK)),
        (
            and_(
                address.confirmation_sent_at.is_not(None),
                or_(
                    address.confirmed_at.is_(None),
                    address.confirmation_sent_at > address.confirmed_at,
                ),
            ),
            str(ConsentReason.CONFIRMATION_PENDING),
        ),
        (address.confirmed_at.is_not(None), str(ConsentReason.INACTIVE)),
        else_=str(ConsentReason.UNCONFIRMED),
    )
