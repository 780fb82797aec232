"""Bookings (French: dossiers) and their guest contacts, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum


class BookingStatus(StrEnum):
    OPTION = "option"  #: a tentative hold, not yet confirmed
    CONFIRMED = "confirmed"  #: a firm booking
    CANCELLED = "cancelled"  #: called off; nothing more is sent for it


#: The booking date fields a kind may be anchored on.
ANCHOR_FIELDS = ("option_expires_on", "balance_due_on", "arrival_on", "departure_on")


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    ref: str
    agency: str
    name: str
    email: str | None
    locale: str | None
    #: the contacts file's consent flags: applied to the registry as `import` events
    email_confirmed: bool = False
    email_opt_out: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Booking:
    ref: str
    agency: str
    contact_ref: str
    property: str
    status: BookingStatus
    option_expires_on: date | None = None
    balance_due_on: date | None = None
    balance_outstanding: Decimal = Decimal(0)
    currency: str = "EUR"
    arrival_on: date | None = None
    departure_on: date | None = None

    def anchor(self, field: str) -> date | None:
        """Return the date this booking has in the anchor `field`."""
        if field not in ANCHOR_FIELDS:
            raise ValueError(f"unknown anchor field {field!r}")
        value: date | None = getattr(self, field)
        return value
