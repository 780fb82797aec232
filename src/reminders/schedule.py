"""When each agency's daily planning pass is due: pure date logic, no clock, no I/O.

An agency plans once a day at its local `plan_at`. The daemon uses this to decide
on a catch-up pass at start-up, and `reminders health` to tell whether the last
pass is recent enough.

DST: a day's pass is due at the instant `plan_at` first happens that local day,
which is when the scheduler (APScheduler's cron trigger) fires it. On the day
clocks jump forward past `plan_at` (02:30 in Europe/Paris on the last Sunday of
March) that wall time does not exist: it is read with the offset before the jump,
so the pass is due at 03:30 local, an hour late by the wall clock. On the day clocks
fall back through it, the first 02:30 counts (the scheduler may fire at the second
one too: a pass is idempotent, so running twice is harmless).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def latest_plan_day(now: datetime, zone: ZoneInfo, plan_at: time) -> date:
    """Return the local day of the most recent scheduled pass at or before `now`.

    That is today once the local time has reached `plan_at`, else yesterday.
    """
    if now.tzinfo is None:
        raise ValueError("latest_plan_day needs a timezone-aware instant")
    today = now.astimezone(zone).date()
    return today if now >= plan_instant(today, zone, plan_at) else today - timedelta(days=1)


def plan_instant(day: date, zone: ZoneInfo, plan_at: time) -> datetime:
    """Return the instant the pass of local `day` is due (see the module's DST rules)."""
    # fold=0: the first of two ambiguous times; a time in a gap gets the offset
    # before the jump (the standard library's rule), so it lands just after the gap.
    return datetime.combine(day, plan_at, tzinfo=zone).replace(fold=0)


def catch_up_due(
    last_planned_on: date | None, now: datetime, zone: ZoneInfo, plan_at: time
) -> bool:
    """Tell whether a pass is owed at start-up: the last scheduled one did not happen.

    An agency never planned is owed one. A pass recorded for the latest
    scheduled day (or later: `plan --date` may plan ahead) settles it.
    """
    if last_planned_on is None:
        return True
    return last_planned_on < latest_plan_day(now, zone, plan_at)


def plan_is_late(
    last_planned_on: date | None,
    now: datetime,
    zone: ZoneInfo,
    plan_at: time,
    grace: timedelta,
) -> bool:
    """Tell whether the agency's planning is overdue, allowing `grace` after `plan_at`.

    Within `grace` after today's `plan_at`, yesterday's pass still counts: the
    pass may be running, or waiting for the database.
    """
    return catch_up_due(last_planned_on, now - grace, zone, plan_at)
