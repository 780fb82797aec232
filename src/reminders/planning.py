"""The retro-planning rule: which reminders are visible on a given local day.

Pure functions of their inputs: no clock, no SQL, no templates.

For a booking with anchor date ``A`` and a kind with ``offset`` and ``retention``
(days), the item is visible on the agency's local day ``today`` iff::

    A + offset  <=  today  <=  A + offset + retention      (both ends inclusive)

All arithmetic is on calendar days (`datetime.date`), never on instants, so DST
changes cannot shift a window, and month ends and leap days need no special case:
2020-02-29 + 1 day is 2020-03-01, 2021-01-31 + 30 days is 2021-03-02.

The calendar's ends: a booking's dates and a planning day lie between
`EARLIEST_DAY` and `LATEST_DAY` (the imports and the command line refuse others),
and offsets and retentions are at most `kinds.MAX_DAYS`, so no window computed here
leaves the years 1 to 9999 a `date` can hold (no OverflowError).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from .bookings import Booking, BookingStatus
from .kinds import Kind

#: The first and last day a booking's date or a planning day may be: any date a booking
#: sensibly holds, far enough from the calendar's ends for every window.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2999, 12, 31)


@dataclass(frozen=True, slots=True, kw_only=True)
class DateRange:
    """A closed range of calendar days, ``first <= day <= last``."""

    first: date
    last: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    @property
    def is_empty(self) -> bool:
        return self.first > self.last


def window(kind: Kind, anchor_on: date) -> DateRange:
    """Return the days an item of `kind` anchored on `anchor_on` is listed."""
    first = anchor_on + timedelta(days=kind.offset_days)
    return DateRange(first=first, last=first + timedelta(days=kind.retention_days))


def visible_anchors(kind: Kind, today: date) -> DateRange:
    """Return the anchor dates whose window includes `today`.

    Inverting the rule: ``today - offset - retention <= A <= today - offset``.
    The store selects bookings over this range of an indexed date column.
    """
    last = today - timedelta(days=kind.offset_days)
    return DateRange(first=last - timedelta(days=kind.retention_days), last=last)


def missed_anchors(kind: Kind, today: date, last_planned_on: date | None) -> DateRange | None:
    """Return the anchor dates whose window ended while no planning pass ran.

    The agency's previous pass was on `last_planned_on`; nothing ran on the days
    after it and before `today`. A window whose last day falls in that gap was
    never listed by a pass on a day it covered. The first pass (`last_planned_on`
    is None) misses nothing: what ended before it is history.
    """
    if last_planned_on is None or last_planned_on >= today:
        return None
    gap = DateRange(first=last_planned_on + timedelta(days=1), last=today - timedelta(days=1))
    if gap.is_empty:
        return None
    shift = timedelta(days=kind.offset_days + kind.retention_days)
    return DateRange(first=gap.first - shift, last=gap.last - shift)


def anchors_to_plan(kind: Kind, today: date, last_planned_on: date | None) -> DateRange:
    """Return every anchor date a pass on `today` must look at: listed or missed.

    The missed anchors end the day before the visible ones begin (a window that
    ended yesterday belongs to the anchor just before the first visible one), so
    the two make one contiguous range: one indexed range query per kind.
    """
    visible = visible_anchors(kind, today)
    missed = missed_anchors(kind, today, last_planned_on)
    return visible if missed is None else DateRange(first=missed.first, last=visible.last)


class Outcome(StrEnum):
    LISTED = "listed"  #: the window includes today: queue it as pending
    MISSED = "missed"  #: the whole window went by while nothing planned


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned:
    """One reminder the planner decided on."""

    booking: Booking
    kind: Kind
    anchor_on: date
    visible: DateRange
    outcome: Outcome


def plan(
    kinds: Iterable[Kind],
    bookings: Iterable[Booking],
    today: date,
    last_planned_on: date | None = None,
) -> list[Planned]:
    """Decide, for every eligible booking and kind, whether it is listed today or missed.

    Bookings not eligible for a kind, without its anchor date, or whose window
    neither includes `today` nor ended unseen since `last_planned_on`, give nothing.
    """
    kinds = list(kinds)
    decisions: list[Planned] = []
    for booking in bookings:
        for kind in kinds:
            decision = decide(kind, booking, today, last_planned_on)
            if decision is not None:
                decisions.append(decision)
    return decisions


def decide(
    kind: Kind, booking: Booking, today: date, last_planned_on: date | None = None
) -> Planned | None:
    """Decide for one booking and one kind (see `plan`)."""
    anchor_on = booking.anchor(kind.anchor)
    if anchor_on is None or not kind.eligibility.admits(booking):
        return None
    visible = window(kind, anchor_on)
    if today in visible:
        outcome = Outcome.LISTED
    else:
        missed = missed_anchors(kind, today, last_planned_on)
        if missed is None or anchor_on not in missed:
            return None
        outcome = Outcome.MISSED
    return Planned(
        booking=booking, kind=kind, anchor_on=anchor_on, visible=visible, outcome=outcome
    )


class WithdrawReason(StrEnum):
    DATE_MOVED = "date_moved"  #: the booking's anchor date is no longer the item's
    CANCELLED = "cancelled"  #: the booking was cancelled
    BALANCE_PAID = "balance_paid"  #: nothing is owed any more
    NOT_ELIGIBLE = "not_eligible"  #: the booking's status no longer fits the kind
    AGENCY_CHANGED = "agency_changed"  #: the booking now belongs to another agency


def withdraw_reason(kind: Kind, booking: Booking, anchor_on: date) -> WithdrawReason | None:
    """Tell why a pending item anchored on `anchor_on` no longer qualifies, or None."""
    if booking.anchor(kind.anchor) != anchor_on:
        return WithdrawReason.DATE_MOVED
    if booking.status is BookingStatus.CANCELLED:
        return WithdrawReason.CANCELLED
    if booking.status not in kind.eligibility.statuses:
        return WithdrawReason.NOT_ELIGIBLE
    if kind.eligibility.needs_outstanding_balance and booking.balance_outstanding <= 0:
        return WithdrawReason.BALANCE_PAID
    return None
