"""How many emails each tab will hold on the days ahead, from the bookings known today.

The pure part counts from two tallies the store makes in one statement per agency
and kind; the service part asks the store. The forecast assumes a planning pass
every day and no staff action: an email listed on a day counts on every day of its
window, whether or not staff would have sent it by then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from .config import Settings
from .kinds import Kind
from .planning import DateRange, visible_anchors
from .service import agency_today
from .store import Database

#: The longest forecast: a year ahead.
MAX_FORECAST_DAYS = 366


@dataclass(frozen=True, slots=True, kw_only=True)
class TabDay:
    """What one agency's tab will hold on one local day."""

    agency: str
    kind: str
    tab: str
    day: date
    count: int


def anchors_to_count(kind: Kind, days: DateRange) -> DateRange:
    """Return the anchor dates whose window includes at least one of `days`."""
    return DateRange(
        first=visible_anchors(kind, days.first).first, last=visible_anchors(kind, days.last).last
    )


def count_on(
    kind: Kind, day: date, new_by_anchor: Mapping[date, int], queued_by_last_day: Mapping[date, int]
) -> int:
    """Count what the tab holds on `day`: queued items still listed, plus those to come.

    `new_by_anchor`: bookings a pass would queue, by anchor date (each is listed on
    the days of its window, `planning.window`); `queued_by_last_day`: pending items
    that still qualify, by their last listed day (each leaves the day after it).
    """
    anchors = visible_anchors(kind, day)
    to_come = sum(n for anchor, n in new_by_anchor.items() if anchor in anchors)
    staying = sum(n for last, n in queued_by_last_day.items() if last >= day)
    return to_come + staying


def forecast(
    database: Database, settings: Settings, *, days: int = 14, agency: str | None = None
) -> list[TabDay]:
    """Count, for each of the `days` local days after today, what each tab will hold.

    Day 1 is tomorrow in each agency's own zone. Read-only.
    """
    result: list[TabDay] = []
    with database.transaction(dry_run=True) as store:
        for each in settings.agencies(agency):
            today = agency_today(each, database.clock)
            ahead = DateRange(first=today + timedelta(days=1), last=today + timedelta(days=days))
            for kind in each.enabled_kinds():
                new, queued = store.forecast_counts(
                    each.code, kind, anchors_to_count(kind, ahead), ahead.first
                )
                tab = kind.tab_label(each.language)
                result += [
                    TabDay(
                        agency=each.code,
                        kind=kind.name,
                        tab=tab,
                        day=ahead.first + timedelta(days=n),
                        count=count_on(kind, ahead.first + timedelta(days=n), new, queued),
                    )
                    for n in range(days)
                ]
    return result
