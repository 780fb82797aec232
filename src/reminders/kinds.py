"""Reminder kinds as data: an anchor date, an offset, a retention and an eligibility rule."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .bookings import Booking, BookingStatus


class Direction(StrEnum):
    BEFORE = "before"  #: the reminder comes `delay` days before the anchor date
    AFTER = "after"  #: the reminder comes `delay` days after the anchor date


@dataclass(frozen=True, slots=True, kw_only=True)
class Eligibility:
    """Which bookings a kind applies to, as data the store can also turn into SQL."""

    statuses: frozenset[BookingStatus]
    #: only bookings that still owe money (balance_outstanding > 0)
    needs_outstanding_balance: bool = False

    def admits(self, booking: Booking) -> bool:
        """Tell whether `booking` qualifies for the kind."""
        return self.refusal(booking) is None

    def refusal(self, booking: Booking) -> str | None:
        """Tell why `booking` does not qualify for the kind, or None when it does."""
        if booking.status not in self.statuses:
            wanted = " or ".join(sorted(self.statuses))
            return f"the booking is {booking.status}, the kind is for {wanted} bookings"
        if self.needs_outstanding_balance and booking.balance_outstanding <= 0:
            return "nothing is owed: the balance is paid"
        return None


#: Eligibility rules by the name of the built-in kind that defines them; custom kinds
#: borrow one of these by name (`eligible_as = "balance_due"`).
ELIGIBILITY: dict[str, Eligibility] = {
    "balance_due": Eligibility(
        statuses=frozenset({BookingStatus.CONFIRMED}), needs_outstanding_balance=True
    ),
    "arrival": Eligibility(statuses=frozenset({BookingStatus.CONFIRMED})),
    "option_expiry": Eligibility(statuses=frozenset({BookingStatus.OPTION})),
    "post_departure": Eligibility(statuses=frozenset({BookingStatus.CONFIRMED})),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class KindDefinition:
    """What a kind is, before an agency gives it a delay."""

    name: str
    anchor: str
    direction: Direction
    eligibility: Eligibility
    #: days the item stays listed after its first day; None: the rule's default
    retention_days: int | None = None
    #: template folder name (defaults to the kind's name)
    template: str
    #: tab label per language
    tab: dict[str, str]


BUILT_IN_KINDS: dict[str, KindDefinition] = {
    "balance_due": KindDefinition(
        name="balance_due",
        anchor="balance_due_on",
        direction=Direction.BEFORE,
        eligibility=ELIGIBILITY["balance_due"],
        template="balance_due",
        tab={"fr": "Rappel solde", "en": "Balance reminders"},
    ),
    "arrival": KindDefinition(
        name="arrival",
        anchor="arrival_on",
        direction=Direction.BEFORE,
        eligibility=ELIGIBILITY["arrival"],
        template="arrival",
        tab={"fr": "Rappel arrivées", "en": "Arrival reminders"},
    ),
    "option_expiry": KindDefinition(
        name="option_expiry",
        anchor="option_expires_on",
        direction=Direction.BEFORE,
        eligibility=ELIGIBILITY["option_expiry"],
        template="option_expiry",
        tab={"fr": "Expiration Options", "en": "Option expiries"},
    ),
    "post_departure": KindDefinition(
        name="post_departure",
        anchor="departure_on",
        direction=Direction.AFTER,
        eligibility=ELIGIBILITY["post_departure"],
        template="post_departure",
        tab={"fr": "Après départ", "en": "After departure"},
    ),
}

#: Retention of after-kinds when none is configured: listed 14 days, then removed.
DEFAULT_AFTER_RETENTION_DAYS = 14
#: The longest delay or retention: ten years. Longer is a typo (a reminder no one
#: would see), and the bound keeps every window computed from a booking's dates
#: (see planning.EARLIEST_DAY) inside the calendar `datetime.date` can hold.
MAX_DAYS = 3650


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind:
    """A kind switched on for one agency: its definition plus the agency's delay."""

    name: str
    anchor: str
    direction: Direction
    eligibility: Eligibility
    delay_days: int
    retention_days: int
    template: str
    tab: dict[str, str]
    auto_send: bool = False

    @property
    def offset_days(self) -> int:
        """Days from the anchor date to the first visible day (negative: before)."""
        return -self.delay_days if self.direction is Direction.BEFORE else self.delay_days

    def tab_label(self, language: str) -> str:
        """Return the tab's label in `language`, falling back to English, then the name."""
        return self.tab.get(language) or self.tab.get("en") or self.name


def activate(
    definition: KindDefinition,
    *,
    delay_days: int,
    retention_days: int | None = None,
    auto_send: bool = False,
) -> Kind:
    """Switch `definition` on with an agency's delay.

    Default retention: a before-kind stays listed up to and including the anchor
    day (`retention = delay`); an after-kind stays listed 14 days.
    """
    if delay_days < 0:
        raise ValueError(f"delay must be 0 or more days, not {delay_days}")
    if delay_days > MAX_DAYS:
        raise ValueError(f"delay must be at most {MAX_DAYS} days, not {delay_days}")
    retention = retention_days if retention_days is not None else definition.retention_days
    if retention is None:
        retention = (
            delay_days if definition.direction is Direction.BEFORE else DEFAULT_AFTER_RETENTION_DAYS
        )
    if retention < 0:
        raise ValueError(f"retention must be 0 or more days, not {retention}")
    if retention > MAX_DAYS:
        raise ValueError(f"retention must be at most {MAX_DAYS} days, not {retention}")
    return Kind(
        name=definition.name,
        anchor=definition.anchor,
        direction=definition.direction,
        eligibility=definition.eligibility,
        delay_days=delay_days,
        retention_days=retention,
        template=definition.template,
        tab=definition.tab,
        auto_send=auto_send,
    )
