"""The agency's local day, across DST changes and around midnight far from UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from reminders.clock import FixedClock, SystemClock, local_today


def utc(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # Europe/Paris springs forward on 2026-03-29 at 01:00 UTC (02:00 CET -> 03:00 CEST).
        pytest.param(utc("2026-03-28T22:59:59"), "Europe/Paris", "2026-03-28",
                     id="paris-spring-last-second-of-the-day-before"),
        pytest.param(utc("2026-03-28T23:00"), "Europe/Paris", "2026-03-29",
                     id="paris-spring-midnight-cet"),
        pytest.param(utc("2026-03-29T01:30"), "Europe/Paris", "2026-03-29",
                     id="paris-spring-just-after-the-jump"),
        pytest.param(utc("2026-03-29T21:59"), "Europe/Paris", "2026-03-29",
                     id="paris-spring-last-minute-cest"),
        pytest.param(utc("2026-03-29T22:00"), "Europe/Paris", "2026-03-30",
                     id="paris-spring-next-midnight-cest"),
        # Europe/Paris falls back on 2026-10-25 at 01:00 UTC (03:00 CEST -> 02:00 CET).
        pytest.param(utc("2026-10-24T21:59"), "Europe/Paris", "2026-10-24",
                     id="paris-autumn-last-minute-of-the-day-before"),
        pytest.param(utc("2026-10-24T22:00"), "Europe/Paris", "2026-10-25",
                     id="paris-autumn-midnight-cest"),
        pytest.param(utc("2026-10-25T00:30"), "Europe/Paris", "2026-10-25",
                     id="paris-autumn-first-02-30"),
        pytest.param(utc("2026-10-25T01:30"), "Europe/Paris", "2026-10-25",
                     id="paris-autumn-repeated-02-30"),
        pytest.param(utc("2026-10-25T22:59"), "Europe/Paris", "2026-10-25",
                     id="paris-autumn-last-minute-of-the-25-hour-day"),
        pytest.param(utc("2026-10-25T23:00"), "Europe/Paris", "2026-10-26",
                     id="paris-autumn-next-midnight-cet"),
        # America/Toronto springs forward on 2026-03-08 at 07:00 UTC (02:00 EST -> 03:00 EDT).
        pytest.param(utc("2026-03-08T04:59"), "America/Toronto", "2026-03-07",
                     id="toronto-spring-last-minute-of-the-day-before"),
        pytest.param(utc("2026-03-08T05:00"), "America/Toronto", "2026-03-08",
                     id="toronto-spring-midnight-est"),
        pytest.param(utc("2026-03-09T03:59"), "America/Toronto", "2026-03-08",
                     id="toronto-spring-last-minute-edt"),
        pytest.param(utc("2026-03-09T04:00"), "America/Toronto", "2026-03-09",
                     id="toronto-spring-next-midnight-edt"),
        # America/Toronto falls back on 2026-11-01 at 06:00 UTC (02:00 EDT -> 01:00 EST).
        pytest.param(utc("2026-11-01T03:59"), "America/Toronto", "2026-10-31",
                     id="toronto-autumn-last-minute-of-the-day-before"),
        pytest.param(utc("2026-11-01T04:00"), "America/Toronto", "2026-11-01",
                     id="toronto-autumn-midnight-edt"),
        pytest.param(utc("2026-11-02T04:59"), "America/Toronto", "2026-11-01",
                     id="toronto-autumn-last-minute-of-the-25-hour-day"),
        pytest.param(utc("2026-11-02T05:00"), "America/Toronto", "2026-11-02",
                     id="toronto-autumn-next-midnight-est"),
        # Far east of UTC the local day starts while it is still the day before in UTC.
        pytest.param(utc("2026-01-15T10:59"), "Pacific/Auckland", "2026-01-15",
                     id="auckland-summer-before-midnight"),
        pytest.param(utc("2026-01-15T11:00"), "Pacific/Auckland", "2026-01-16",
                     id="auckland-summer-midnight-is-11-utc"),
        pytest.param(utc("2026-07-15T11:59"), "Pacific/Auckland", "2026-07-15",
                     id="auckland-winter-before-midnight"),
        pytest.param(utc("2026-07-15T12:00"), "Pacific/Auckland", "2026-07-16",
                     id="auckland-winter-midnight-is-12-utc"),
        pytest.param(utc("2026-12-31T09:59"), "Pacific/Kiritimati", "2026-12-31",
                     id="kiritimati-before-midnight"),
        pytest.param(utc("2026-12-31T10:00"), "Pacific/Kiritimati", "2027-01-01",
                     id="kiritimati-new-year-while-utc-is-still-in-the-old"),
        # Far west of UTC the local day is still the day before.
        pytest.param(utc("2026-01-01T07:59"), "America/Los_Angeles", "2025-12-31",
                     id="los-angeles-winter-still-last-year"),
        pytest.param(utc("2026-01-01T08:00"), "America/Los_Angeles", "2026-01-01",
                     id="los-angeles-winter-midnight-is-08-utc"),
        pytest.param(utc("2026-07-01T06:59"), "America/Los_Angeles", "2026-06-30",
                     id="los-angeles-summer-before-midnight"),
        pytest.param(utc("2026-07-01T07:00"), "America/Los_Angeles", "2026-07-01",
                     id="los-angeles-summer-midnight-is-07-utc"),
        # The instant's own offset does not matter, only the zone asked about.
        pytest.param(datetime(2026, 11, 24, 5, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
                     "America/Toronto", "2026-11-23", id="instant-given-in-another-offset"),
    ],
)  # fmt: skip
def test_local_today(instant: datetime, zone: str, expected: str) -> None:
    assert local_today(instant, ZoneInfo(zone)) == date.fromisoformat(expected)


def test_local_today_rejects_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        local_today(datetime(2026, 11, 23, 12, 0), ZoneInfo("Europe/Paris"))


def test_system_clock_follows_frozen_time_and_the_day_depends_on_the_zone() -> None:
    with freeze_time("2026-11-23T23:30:00Z"):
        now = SystemClock().now()

    assert now == utc("2026-11-23T23:30")
    assert now.utcoffset() == timedelta(0)
    assert local_today(now, ZoneInfo("Europe/Paris")) == date(2026, 11, 24)
    assert local_today(now, ZoneInfo("America/Toronto")) == date(2026, 11, 23)


def test_fixed_clock_tells_its_instant() -> None:
    instant = utc("2026-11-23T06:30")
    assert FixedClock(instant).now() == instant


def test_fixed_clock_rejects_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2026, 11, 23, 6, 30))
