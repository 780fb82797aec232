"""When an agency's daily planning pass is due, in its own zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from factories import day
from reminders.schedule import catch_up_due, latest_plan_day, plan_is_late

PARIS = "Europe/Paris"
TORONTO = "America/Toronto"
AUCKLAND = "Pacific/Auckland"
AT_0630 = time(6, 30)
AT_0230 = time(2, 30)


def utc(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC)


# -- latest_plan_day: today once plan_at has come, else yesterday --------------------------


@pytest.mark.parametrize(
    ("now", "zone", "plan_at", "expected"),
    [
        # Europe/Paris in summer is UTC+2: 06:30 local is 04:30 UTC.
        pytest.param(utc("2026-07-15T04:29:59"), PARIS, AT_0630, "2026-07-14",
                     id="paris-a-second-before-plan-at"),
        pytest.param(utc("2026-07-15T04:30"), PARIS, AT_0630, "2026-07-15",
                     id="paris-exactly-at-plan-at"),
        pytest.param(utc("2026-07-15T04:30:01"), PARIS, AT_0630, "2026-07-15",
                     id="paris-a-second-after-plan-at"),
        pytest.param(utc("2026-07-15T21:59"), PARIS, AT_0630, "2026-07-15",
                     id="paris-late-evening"),
        pytest.param(utc("2026-07-15T22:30"), PARIS, time(0, 15), "2026-07-16",
                     id="paris-already-tomorrow-while-utc-is-today"),
        pytest.param(utc("2026-07-15T22:30"), PARIS, AT_0630, "2026-07-15",
                     id="paris-after-midnight-before-plan-at"),
        pytest.param(utc("2026-01-15T05:29"), PARIS, AT_0630, "2026-01-14",
                     id="paris-winter-utc-plus-1-before"),
        pytest.param(utc("2026-01-15T05:30"), PARIS, AT_0630, "2026-01-15",
                     id="paris-winter-utc-plus-1-at"),
        pytest.param(utc("2026-01-15T06:30"), PARIS, time(0, 0), "2026-01-15",
                     id="plan-at-midnight"),
        pytest.param(utc("2026-01-15T22:58"), PARIS, time(23, 59), "2026-01-14",
                     id="plan-at-23-59-not-yet"),
        # America/Toronto in summer is UTC-4: 06:30 local is 10:30 UTC.
        pytest.param(utc("2026-07-16T03:00"), TORONTO, AT_0630, "2026-07-15",
                     id="toronto-still-yesterday-while-utc-is-the-next-day"),
        pytest.param(utc("2026-07-16T10:29"), TORONTO, AT_0630, "2026-07-15",
                     id="toronto-before-plan-at"),
        pytest.param(utc("2026-07-16T10:30"), TORONTO, AT_0630, "2026-07-16",
                     id="toronto-at-plan-at"),
        # Pacific/Auckland in July is UTC+12: 06:30 local is 18:30 UTC the day before.
        pytest.param(utc("2026-07-15T18:29"), AUCKLAND, AT_0630, "2026-07-15",
                     id="auckland-before-plan-at-on-the-next-local-day"),
        pytest.param(utc("2026-07-15T18:30"), AUCKLAND, AT_0630, "2026-07-16",
                     id="auckland-at-plan-at-while-utc-is-the-day-before"),
        # Paris springs forward on 2026-03-29 at 01:00 UTC: 02:00 CET -> 03:00 CEST.
        pytest.param(utc("2026-03-29T00:59"), PARIS, AT_0230, "2026-03-28",
                     id="spring-forward-01-59-before-the-jump"),
        # 02:30 does not exist that day: it is read as 02:30+01:00, i.e. 03:30 CEST,
        # which is when the scheduler fires.
        pytest.param(utc("2026-03-29T01:00"), PARIS, AT_0230, "2026-03-28",
                     id="spring-forward-03-00-cest-is-before-the-shifted-02-30"),
        pytest.param(utc("2026-03-29T01:30"), PARIS, AT_0230, "2026-03-29",
                     id="spring-forward-03-30-cest-is-the-shifted-02-30"),
        pytest.param(utc("2026-03-29T04:29"), PARIS, AT_0630, "2026-03-28",
                     id="spring-forward-day-06-29-cest"),
        pytest.param(utc("2026-03-29T04:30"), PARIS, AT_0630, "2026-03-29",
                     id="spring-forward-day-06-30-cest"),
        # Paris falls back on 2026-10-25 at 01:00 UTC: 03:00 CEST -> 02:00 CET.
        pytest.param(utc("2026-10-25T00:29"), PARIS, AT_0230, "2026-10-24",
                     id="fall-back-02-29-cest"),
        pytest.param(utc("2026-10-25T00:30"), PARIS, AT_0230, "2026-10-25",
                     id="fall-back-first-02-30-cest"),
        pytest.param(utc("2026-10-25T01:15"), PARIS, AT_0230, "2026-10-25",
                     id="fall-back-02-15-cet-after-the-first-02-30-went-by"),
        pytest.param(utc("2026-10-25T01:30"), PARIS, AT_0230, "2026-10-25",
                     id="fall-back-repeated-02-30-cet"),
        pytest.param(utc("2026-10-25T05:29"), PARIS, AT_0630, "2026-10-24",
                     id="fall-back-day-06-29-cet"),
        pytest.param(utc("2026-10-25T05:30"), PARIS, AT_0630, "2026-10-25",
                     id="fall-back-day-06-30-cet"),
    ],
)  # fmt: skip
def test_latest_plan_day(now: datetime, zone: str, plan_at: time, expected: str) -> None:
    assert latest_plan_day(now, ZoneInfo(zone), plan_at) == day(expected)


def test_latest_plan_day_ignores_the_offset_the_instant_is_written_in() -> None:
    in_utc = utc("2026-07-16T03:00")
    in_tokyo = in_utc.astimezone(ZoneInfo("Asia/Tokyo"))

    assert latest_plan_day(in_tokyo, ZoneInfo(TORONTO), AT_0630) == date(2026, 7, 15)
    assert latest_plan_day(in_utc, ZoneInfo(TORONTO), AT_0630) == date(2026, 7, 15)


def test_latest_plan_day_rejects_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        latest_plan_day(datetime(2026, 7, 15, 6, 30), ZoneInfo(PARIS), AT_0630)


def test_latest_plan_day_never_goes_back_in_time_over_a_year_in_paris() -> None:
    # Every quarter of an hour of 2026, DST days included.
    zone = ZoneInfo(PARIS)
    instants = [utc("2026-01-01T00:00") + timedelta(minutes=15 * n) for n in range(365 * 96)]

    days = [latest_plan_day(now, zone, AT_0630) for now in instants]

    assert days == sorted(days)


# -- catch_up_due: is a pass owed at start-up? ---------------------------------------------

# 2026-07-15 in Paris: plan_at 06:30 is 04:30 UTC.
BEFORE = utc("2026-07-15T04:29")
AT = utc("2026-07-15T04:30")
AFTER = utc("2026-07-15T12:00")


@pytest.mark.parametrize(
    ("last_planned_on", "now", "zone", "expected"),
    [
        pytest.param(None, BEFORE, PARIS, True, id="never-planned-is-owed-a-pass"),
        pytest.param(None, AFTER, PARIS, True, id="never-planned-after-plan-at"),
        pytest.param("2026-07-14", BEFORE, PARIS, False, id="yesterday-before-plan-at"),
        pytest.param("2026-07-14", AT, PARIS, True, id="yesterday-exactly-at-plan-at"),
        pytest.param("2026-07-14", AFTER, PARIS, True, id="yesterday-after-plan-at"),
        pytest.param("2026-07-13", BEFORE, PARIS, True, id="two-days-ago-before-plan-at"),
        pytest.param("2026-07-15", BEFORE, PARIS, False, id="today-already-before-plan-at"),
        pytest.param("2026-07-15", AFTER, PARIS, False, id="today-after-plan-at"),
        pytest.param("2026-07-20", AFTER, PARIS, False, id="planned-ahead-settles-it"),
        pytest.param("2025-07-15", AFTER, PARIS, True, id="a-year-ago"),
        # 04:30 UTC is still 2026-07-15 00:30 in Toronto: its plan_at has not come.
        pytest.param("2026-07-14", AT, TORONTO, False, id="toronto-not-yet-its-plan-at"),
        pytest.param("2026-07-13", AT, TORONTO, True, id="toronto-missed-yesterday"),
        # 18:30 UTC on the 15th is 06:30 on the 16th in Auckland.
        pytest.param("2026-07-15", utc("2026-07-15T18:30"), AUCKLAND, True,
                     id="auckland-owes-the-16th-while-utc-is-the-15th"),
        pytest.param("2026-07-16", utc("2026-07-15T18:30"), AUCKLAND, False,
                     id="auckland-planned-the-16th-while-utc-is-the-15th"),
    ],
)  # fmt: skip
def test_catch_up_due(
    last_planned_on: str | None, now: datetime, zone: str, expected: bool
) -> None:
    last = day(last_planned_on) if last_planned_on else None

    assert catch_up_due(last, now, ZoneInfo(zone), AT_0630) is expected


@pytest.mark.parametrize(
    ("last_planned_on", "now", "plan_at", "expected"),
    [
        pytest.param("2026-03-28", utc("2026-03-29T00:59"), AT_0230, False,
                     id="spring-forward-before-the-jump"),
        pytest.param("2026-03-28", utc("2026-03-29T01:00"), AT_0230, False,
                     id="spring-forward-after-the-jump-before-the-shifted-02-30"),
        pytest.param("2026-03-28", utc("2026-03-29T01:30"), AT_0230, True,
                     id="spring-forward-at-the-shifted-02-30"),
        pytest.param("2026-03-29", utc("2026-03-29T01:00"), AT_0230, False,
                     id="spring-forward-already-planned"),
        pytest.param("2026-10-24", utc("2026-10-25T00:30"), AT_0230, True,
                     id="fall-back-first-02-30"),
        pytest.param("2026-10-25", utc("2026-10-25T01:30"), AT_0230, False,
                     id="fall-back-repeated-02-30-already-planned"),
        pytest.param("2026-10-24", utc("2026-10-25T01:15"), AT_0230, True,
                     id="fall-back-first-02-30-missed-seen-in-the-repeated-hour"),
    ],
)  # fmt: skip
def test_catch_up_due_on_paris_dst_days(
    last_planned_on: str, now: datetime, plan_at: time, expected: bool
) -> None:
    assert catch_up_due(day(last_planned_on), now, ZoneInfo(PARIS), plan_at) is expected


# -- plan_is_late: overdue once the grace after plan_at has gone by -----------------------

HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("last_planned_on", "now", "grace", "expected"),
    [
        pytest.param("2026-07-14", AT, HOUR, False, id="at-plan-at-within-grace"),
        pytest.param("2026-07-14", utc("2026-07-15T05:29:59"), HOUR, False,
                     id="a-second-before-grace-ends"),
        pytest.param("2026-07-14", utc("2026-07-15T05:30"), HOUR, True,
                     id="exactly-when-grace-ends"),
        pytest.param("2026-07-14", AFTER, HOUR, True, id="long-after-grace"),
        pytest.param("2026-07-14", AT, timedelta(0), True, id="no-grace-late-at-plan-at"),
        pytest.param("2026-07-14", BEFORE, timedelta(0), False, id="no-grace-before-plan-at"),
        pytest.param("2026-07-15", AFTER, HOUR, False, id="planned-today"),
        pytest.param("2026-07-16", AFTER, HOUR, False, id="planned-ahead"),
        pytest.param("2026-07-13", BEFORE, HOUR, True, id="yesterday-was-missed"),
        pytest.param("2026-07-13", AT, HOUR, True, id="yesterday-missed-grace-does-not-help"),
        pytest.param(None, BEFORE, HOUR, True, id="never-planned"),
        pytest.param("2026-07-14", utc("2026-07-15T06:29"), timedelta(hours=2), False,
                     id="two-hour-grace"),
    ],
)  # fmt: skip
def test_plan_is_late(
    last_planned_on: str | None, now: datetime, grace: timedelta, expected: bool
) -> None:
    last = day(last_planned_on) if last_planned_on else None

    assert plan_is_late(last, now, ZoneInfo(PARIS), AT_0630, grace) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 06:30 CEST on 2026-03-29 is 04:30 UTC; the grace ends at 05:30 UTC.
        pytest.param(utc("2026-03-29T05:29"), False, id="spring-forward-within-grace"),
        pytest.param(utc("2026-03-29T05:30"), True, id="spring-forward-grace-over"),
        # 06:30 CET on 2026-10-25 is 05:30 UTC; the grace ends at 06:30 UTC.
        pytest.param(utc("2026-10-25T06:29"), False, id="fall-back-within-grace"),
        pytest.param(utc("2026-10-25T06:30"), True, id="fall-back-grace-over"),
    ],
)
def test_plan_is_late_on_paris_dst_days(now: datetime, expected: bool) -> None:
    yesterday = now.astimezone(ZoneInfo(PARIS)).date() - timedelta(days=1)

    assert plan_is_late(yesterday, now, ZoneInfo(PARIS), AT_0630, HOUR) is expected
