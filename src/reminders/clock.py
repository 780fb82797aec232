"""The one place that reads the clock; everything else is handed a `Clock`."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

#: The zone of times that belong to no agency.
UTC_ZONE = ZoneInfo("UTC")


class Clock(Protocol):
    """Tells the current instant."""

    def now(self) -> datetime:
        """Return the current instant, timezone-aware."""
        ...


class SystemClock:
    """The real clock (tests travel in time with freezegun, which patches it)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock stopped at one instant, for callers that pass a date explicitly."""

    def __init__(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware instant")
        self._instant = instant

    def now(self) -> datetime:
        return self._instant


def local_today(now: datetime, zone: ZoneInfo) -> date:
    """Return the calendar day it is in `zone` at the instant `now`.

    DST changes do not matter here: the conversion goes through UTC, so on the
    day clocks jump (23 h) or fall back (25 h) every instant still maps to
    exactly one local calendar day.
    """
    if now.tzinfo is None:
        raise ValueError("local_today needs a timezone-aware instant")
    return now.astimezone(zone).date()


def local_time(instant: datetime, zone: ZoneInfo) -> str:
    """Write `instant` as staff read it: the date and time in `zone`, and the zone's abbreviation.

    Around a DST change the abbreviation tells the two 02:30 of the night apart
    (CEST, then CET); JSON output keeps ISO 8601 with its offset instead.
    """
    if instant.tzinfo is None:
        raise ValueError("local_time needs a timezone-aware instant")
    return f"{instant.astimezone(zone):%Y-%m-%d %H:%M %Z}"


def monotonic_s() -> float:
    """Return seconds on a clock that only moves forward: for budgets and timeouts, not dates."""
    return time.monotonic()
