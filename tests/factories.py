"""Test values with sensible defaults: override only what a test is about."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from reminders.bookings import Booking, BookingStatus
from reminders.kinds import BUILT_IN_KINDS, Kind, activate


def day(iso: str) -> date:
    """Return the calendar day written `YYYY-MM-DD`."""
    return date.fromisoformat(iso)


def booking(**overrides: Any) -> Booking:
    """Return a confirmed booking that owes a balance and has every anchor date set."""
    values: dict[str, Any] = {
        "ref": "B-1001",
        "agency": "annecy",
        "contact_ref": "C-1",
        "property": "Chalet des Aravis",
        "status": BookingStatus.CONFIRMED,
        "option_expires_on": day("2026-05-20"),
        "balance_due_on": day("2026-06-10"),
        "balance_outstanding": Decimal("450.00"),
        "currency": "EUR",
        "arrival_on": day("2026-07-10"),
        "departure_on": day("2026-07-17"),
    }
    values.update(overrides)
    return Booking(**values)


def kind(name: str, delay_days: int, retention_days: int | None = None) -> Kind:
    """Return the built-in kind `name` switched on with `delay_days`."""
    return activate(BUILT_IN_KINDS[name], delay_days=delay_days, retention_days=retention_days)


class MovableClock:
    """A clock the test moves forward by hand."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def now(self) -> datetime:
        return self.instant

    def advance(self, **delta: float) -> None:
        self.instant += timedelta(**delta)
