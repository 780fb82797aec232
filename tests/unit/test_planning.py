"""The retro-planning window rule (SPEC §2), as tables of days."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from factories import booking, day, kind
from reminders.bookings import Booking, BookingStatus
from reminders.kinds import MAX_DAYS, Kind
from reminders.planning import (
    EARLIEST_DAY,
    LATEST_DAY,
    DateRange,
    Outcome,
    WithdrawReason,
    anchors_to_plan,
    decide,
    missed_anchors,
    plan,
    visible_anchors,
    window,
    withdraw_reason,
)

ARRIVAL_7 = kind("arrival", 7)
#: The manual's worked example: post-departure, delay 7, retention 14 (the default).
POST_DEPARTURE_7 = kind("post_departure", 7)

LISTED = Outcome.LISTED
MISSED = Outcome.MISSED

CONFIRMED = BookingStatus.CONFIRMED
OPTION = BookingStatus.OPTION
CANCELLED = BookingStatus.CANCELLED


def days(first: str, last: str) -> DateRange:
    return DateRange(first=day(first), last=day(last))


def outcome(
    kind: Kind, subject: Booking, today: str, last_planned_on: str | None = None
) -> Outcome | None:
    decision = decide(kind, subject, day(today), day(last_planned_on) if last_planned_on else None)
    return None if decision is None else decision.outcome


@pytest.mark.parametrize(
    ("kind", "anchor_on", "expected"),
    [
        pytest.param(ARRIVAL_7, "2026-07-10", days("2026-07-03", "2026-07-10"),
                     id="before-kind-listed-through-anchor-day"),
        pytest.param(kind("balance_due", 30), "2026-06-10", days("2026-05-11", "2026-06-10"),
                     id="balance-due-30-days"),
        pytest.param(kind("option_expiry", 2), "2026-05-20", days("2026-05-18", "2026-05-20"),
                     id="option-expiry-2-days"),
        pytest.param(POST_DEPARTURE_7, "2020-01-24", days("2020-01-31", "2020-02-14"),
                     id="after-kind-listed-14-days"),
        pytest.param(kind("arrival", 0), "2026-07-10", days("2026-07-10", "2026-07-10"),
                     id="before-kind-delay-0-anchor-day-only"),
        pytest.param(kind("post_departure", 0), "2026-07-17", days("2026-07-17", "2026-07-31"),
                     id="after-kind-delay-0-from-anchor-day"),
        pytest.param(kind("post_departure", 7, 0), "2026-07-17", days("2026-07-24", "2026-07-24"),
                     id="after-kind-retention-0-one-day"),
        pytest.param(kind("arrival", 7, 2), "2026-07-10", days("2026-07-03", "2026-07-05"),
                     id="before-kind-short-retention-ends-before-anchor"),
        pytest.param(ARRIVAL_7, "2024-02-29", days("2024-02-22", "2024-02-29"),
                     id="leap-day-anchor"),
        pytest.param(ARRIVAL_7, "2024-03-03", days("2024-02-25", "2024-03-03"),
                     id="leap-year-window-crosses-feb-29"),
        pytest.param(ARRIVAL_7, "2023-03-03", days("2023-02-24", "2023-03-03"),
                     id="non-leap-year-window-crosses-feb-28"),
        pytest.param(kind("post_departure", 1), "2024-02-28", days("2024-02-29", "2024-03-14"),
                     id="leap-year-feb-28-plus-1-is-feb-29"),
        pytest.param(kind("post_departure", 1), "2023-02-28", days("2023-03-01", "2023-03-15"),
                     id="non-leap-year-feb-28-plus-1-is-mar-1"),
        pytest.param(kind("post_departure", 30), "2021-01-31", days("2021-03-02", "2021-03-16"),
                     id="jan-31-plus-30-days-non-leap"),
        pytest.param(kind("post_departure", 30), "2024-01-31", days("2024-03-01", "2024-03-15"),
                     id="jan-31-plus-30-days-leap"),
        pytest.param(kind("arrival", 1), "2024-03-01", days("2024-02-29", "2024-03-01"),
                     id="mar-1-minus-1-day-leap"),
        pytest.param(kind("arrival", 1), "2023-03-01", days("2023-02-28", "2023-03-01"),
                     id="mar-1-minus-1-day-non-leap"),
        pytest.param(kind("arrival", 1), "2026-05-01", days("2026-04-30", "2026-05-01"),
                     id="may-1-minus-1-day-is-apr-30"),
        pytest.param(ARRIVAL_7, "2027-01-03", days("2026-12-27", "2027-01-03"),
                     id="before-kind-window-crosses-year-end"),
        pytest.param(POST_DEPARTURE_7, "2026-12-20", days("2026-12-27", "2027-01-10"),
                     id="after-kind-window-crosses-year-end"),
    ],
)  # fmt: skip
def test_window(kind: Kind, anchor_on: str, expected: DateRange) -> None:
    assert window(kind, day(anchor_on)) == expected


@pytest.mark.parametrize(
    ("kind", "subject", "today", "expected"),
    [
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-10")), "2026-07-02", None,
                     id="before-kind-day-before-first-day"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-10")), "2026-07-03", LISTED,
                     id="before-kind-first-day"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-10")), "2026-07-10", LISTED,
                     id="before-kind-last-day-is-anchor-day"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-10")), "2026-07-11", None,
                     id="before-kind-day-after-last-day"),
        pytest.param(POST_DEPARTURE_7, booking(departure_on=day("2026-07-17")), "2026-07-23",
                     None, id="after-kind-day-before-first-day"),
        pytest.param(POST_DEPARTURE_7, booking(departure_on=day("2026-07-17")), "2026-07-24",
                     LISTED, id="after-kind-first-day"),
        pytest.param(POST_DEPARTURE_7, booking(departure_on=day("2026-07-17")), "2026-08-07",
                     LISTED, id="after-kind-last-day"),
        pytest.param(POST_DEPARTURE_7, booking(departure_on=day("2026-07-17")), "2026-08-08",
                     None, id="after-kind-day-after-last-day"),
        pytest.param(kind("arrival", 0), booking(arrival_on=day("2026-07-10")), "2026-07-09",
                     None, id="delay-0-day-before"),
        pytest.param(kind("arrival", 0), booking(arrival_on=day("2026-07-10")), "2026-07-10",
                     LISTED, id="delay-0-anchor-day"),
        pytest.param(kind("arrival", 0), booking(arrival_on=day("2026-07-10")), "2026-07-11",
                     None, id="delay-0-day-after"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2024-03-03")), "2024-02-25", LISTED,
                     id="leap-year-first-day"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2024-03-03")), "2024-02-24", None,
                     id="leap-year-day-before-first-day"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2024-03-07")), "2024-02-29", LISTED,
                     id="leap-day-today"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2027-01-03")), "2026-12-27", LISTED,
                     id="year-end-first-day-in-old-year"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2027-01-03")), "2026-12-26", None,
                     id="year-end-day-before-first-day"),
        pytest.param(POST_DEPARTURE_7, booking(departure_on=day("2026-12-20")), "2027-01-10",
                     LISTED, id="year-end-last-day-in-new-year"),
        pytest.param(POST_DEPARTURE_7, booking(departure_on=day("2026-12-20")), "2027-01-11",
                     None, id="year-end-day-after-last-day"),
    ],
)  # fmt: skip
def test_both_ends_of_the_window_are_inclusive(
    kind: Kind, subject: Booking, today: str, expected: Outcome | None
) -> None:
    assert outcome(kind, subject, today) == expected


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        pytest.param("2020-01-31", days("2020-01-10", "2020-01-24"), id="2020-01-31"),
        pytest.param("2020-02-10", days("2020-01-20", "2020-02-03"), id="2020-02-10"),
    ],
)
def test_visible_anchors_of_the_manuals_worked_example(today: str, expected: DateRange) -> None:
    assert visible_anchors(POST_DEPARTURE_7, day(today)) == expected


@pytest.mark.parametrize(
    ("today", "departure_on", "expected"),
    [
        pytest.param("2020-01-31", "2020-01-09", None, id="2020-01-31-departed-01-09"),
        pytest.param("2020-01-31", "2020-01-10", LISTED, id="2020-01-31-departed-01-10"),
        pytest.param("2020-01-31", "2020-01-24", LISTED, id="2020-01-31-departed-01-24"),
        pytest.param("2020-01-31", "2020-01-25", None, id="2020-01-31-departed-01-25"),
        pytest.param("2020-02-10", "2020-01-19", None, id="2020-02-10-departed-01-19"),
        pytest.param("2020-02-10", "2020-01-20", LISTED, id="2020-02-10-departed-01-20"),
        pytest.param("2020-02-10", "2020-02-03", LISTED, id="2020-02-10-departed-02-03"),
        pytest.param("2020-02-10", "2020-02-04", None, id="2020-02-10-departed-02-04"),
    ],
)
def test_decide_on_the_manuals_worked_example(
    today: str, departure_on: str, expected: Outcome | None
) -> None:
    subject = booking(departure_on=day(departure_on))
    assert outcome(POST_DEPARTURE_7, subject, today) == expected


@pytest.mark.parametrize(
    ("kind", "today", "expected"),
    [
        pytest.param(ARRIVAL_7, "2026-07-03", days("2026-07-03", "2026-07-10"),
                     id="before-kind-from-today-to-a-week-ahead"),
        pytest.param(kind("arrival", 0), "2026-07-03", days("2026-07-03", "2026-07-03"),
                     id="delay-0-today-only"),
        pytest.param(ARRIVAL_7, "2024-02-26", days("2024-02-26", "2024-03-04"),
                     id="leap-year-crosses-feb-29"),
        pytest.param(ARRIVAL_7, "2023-02-26", days("2023-02-26", "2023-03-05"),
                     id="non-leap-year-crosses-feb-28"),
        pytest.param(POST_DEPARTURE_7, "2027-01-05", days("2026-12-15", "2026-12-29"),
                     id="after-kind-reaches-back-into-last-year"),
    ],
)  # fmt: skip
def test_visible_anchors(kind: Kind, today: str, expected: DateRange) -> None:
    assert visible_anchors(kind, day(today)) == expected


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(ARRIVAL_7, id="arrival-7"),
        pytest.param(kind("balance_due", 30), id="balance-due-30"),
        pytest.param(kind("option_expiry", 0), id="option-expiry-0"),
        pytest.param(POST_DEPARTURE_7, id="post-departure-7"),
        pytest.param(kind("post_departure", 3, 0), id="post-departure-3-retention-0"),
    ],
)
def test_visible_anchors_is_the_inverse_of_window(kind: Kind) -> None:
    """Over a year end and a leap day, an anchor is selected iff its window has today."""
    start = day("2023-12-01")
    for today in (start + timedelta(days=n) for n in range(120)):
        anchors = visible_anchors(kind, today)
        for anchor_on in (today + timedelta(days=n) for n in range(-60, 61)):
            assert (anchor_on in anchors) == (today in window(kind, anchor_on)), (
                today,
                anchor_on,
            )


@pytest.mark.parametrize(
    ("kind", "subject", "today", "expected"),
    [
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-10")), "2026-07-07", LISTED,
                     id="arrival-in-3-days-delay-7"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-10")), "2026-07-10", LISTED,
                     id="arrival-today"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-10")), "2026-07-11", None,
                     id="arrival-yesterday"),
        pytest.param(kind("balance_due", 30), booking(balance_due_on=day("2026-06-10")),
                     "2026-06-09", LISTED, id="balance-due-tomorrow-delay-30"),
        pytest.param(kind("option_expiry", 2),
                     booking(status=OPTION, option_expires_on=day("2026-05-20")),
                     "2026-05-20", LISTED, id="option-expires-today"),
    ],
)  # fmt: skip
def test_late_bookings_are_still_listed(
    kind: Kind, subject: Booking, today: str, expected: Outcome | None
) -> None:
    # A first pass: no previous pass, so nothing can be missed.
    assert outcome(kind, subject, today) == expected


# Catch-up: today is 2026-07-20, the previous pass ran on 2026-07-15, nothing ran
# on 2026-07-16 .. 2026-07-19.
TODAY = "2026-07-20"
LAST_PASS = "2026-07-15"


@pytest.mark.parametrize(
    ("kind", "subject", "last_planned_on", "expected"),
    [
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-22")), LAST_PASS, LISTED,
                     id="window-began-before-the-gap-still-open"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-20")), LAST_PASS, LISTED,
                     id="window-ends-today"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-25")), LAST_PASS, LISTED,
                     id="window-began-in-the-gap"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-19")), LAST_PASS, MISSED,
                     id="window-ended-on-the-gaps-last-day"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-16")), LAST_PASS, MISSED,
                     id="window-ended-on-the-gaps-first-day"),
        pytest.param(kind("arrival", 7, 1), booking(arrival_on=day("2026-07-25")), LAST_PASS,
                     MISSED, id="window-wholly-inside-the-gap"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-15")), LAST_PASS, None,
                     id="window-ended-on-the-last-pass-day"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-10")), LAST_PASS, None,
                     id="window-ended-before-the-last-pass"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-28")), LAST_PASS, None,
                     id="window-not-begun"),
        pytest.param(POST_DEPARTURE_7, booking(departure_on=day("2026-06-29")), LAST_PASS,
                     LISTED, id="after-kind-window-ends-today"),
        pytest.param(POST_DEPARTURE_7, booking(departure_on=day("2026-06-28")), LAST_PASS,
                     MISSED, id="after-kind-window-ended-in-the-gap"),
        pytest.param(POST_DEPARTURE_7, booking(departure_on=day("2026-06-25")), LAST_PASS,
                     MISSED, id="after-kind-window-ended-on-the-gaps-first-day"),
        pytest.param(POST_DEPARTURE_7, booking(departure_on=day("2026-06-24")), LAST_PASS,
                     None, id="after-kind-window-ended-on-the-last-pass-day"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-19")), None, None,
                     id="first-pass-misses-nothing"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-19")), "2026-07-19", None,
                     id="daily-passes-no-gap"),
        pytest.param(ARRIVAL_7, booking(arrival_on=day("2026-07-19")), TODAY, None,
                     id="second-pass-the-same-day"),
        pytest.param(ARRIVAL_7, booking(status=CANCELLED, arrival_on=day("2026-07-19")),
                     LAST_PASS, None, id="ineligible-booking-is-not-missed"),
        pytest.param(ARRIVAL_7, booking(arrival_on=None), LAST_PASS, None,
                     id="no-anchor-date-is-not-missed"),
    ],
)  # fmt: skip
def test_catch_up_after_downtime(
    kind: Kind, subject: Booking, last_planned_on: str | None, expected: Outcome | None
) -> None:
    assert outcome(kind, subject, TODAY, last_planned_on) == expected


@pytest.mark.parametrize(
    ("kind", "last_planned_on", "expected"),
    [
        pytest.param(ARRIVAL_7, None, None, id="first-pass"),
        pytest.param(ARRIVAL_7, "2026-07-19", None, id="previous-pass-yesterday"),
        pytest.param(ARRIVAL_7, TODAY, None, id="previous-pass-today"),
        pytest.param(ARRIVAL_7, "2026-07-18", days("2026-07-19", "2026-07-19"),
                     id="one-day-gap"),
        pytest.param(ARRIVAL_7, LAST_PASS, days("2026-07-16", "2026-07-19"),
                     id="before-kind-four-day-gap"),
        pytest.param(POST_DEPARTURE_7, LAST_PASS, days("2026-06-25", "2026-06-28"),
                     id="after-kind-four-day-gap"),
    ],
)  # fmt: skip
def test_missed_anchors(
    kind: Kind, last_planned_on: str | None, expected: DateRange | None
) -> None:
    previous = day(last_planned_on) if last_planned_on else None
    assert missed_anchors(kind, day(TODAY), previous) == expected


ZERO = Decimal(0)


@pytest.mark.parametrize(
    ("name", "subject", "eligible"),
    [
        pytest.param("balance_due", booking(status=CONFIRMED), True,
                     id="balance-due-confirmed-owing"),
        pytest.param("balance_due", booking(status=CONFIRMED, balance_outstanding=ZERO), False,
                     id="balance-due-confirmed-paid"),
        pytest.param("balance_due",
                     booking(status=CONFIRMED, balance_outstanding=Decimal("-20.00")), False,
                     id="balance-due-confirmed-in-credit"),
        pytest.param("balance_due",
                     booking(status=CONFIRMED, balance_outstanding=Decimal("0.01")), True,
                     id="balance-due-confirmed-owing-one-cent"),
        pytest.param("balance_due", booking(status=OPTION), False,
                     id="balance-due-option"),
        pytest.param("balance_due", booking(status=CANCELLED), False,
                     id="balance-due-cancelled"),
        pytest.param("arrival", booking(status=CONFIRMED), True, id="arrival-confirmed"),
        pytest.param("arrival", booking(status=CONFIRMED, balance_outstanding=ZERO), True,
                     id="arrival-confirmed-paid"),
        pytest.param("arrival", booking(status=OPTION), False, id="arrival-option"),
        pytest.param("arrival", booking(status=CANCELLED), False, id="arrival-cancelled"),
        pytest.param("option_expiry", booking(status=OPTION), True, id="option-expiry-option"),
        pytest.param("option_expiry", booking(status=CONFIRMED), False,
                     id="option-expiry-confirmed"),
        pytest.param("option_expiry", booking(status=CANCELLED), False,
                     id="option-expiry-cancelled"),
        pytest.param("post_departure", booking(status=CONFIRMED), True,
                     id="post-departure-confirmed"),
        pytest.param("post_departure", booking(status=OPTION), False,
                     id="post-departure-option"),
        pytest.param("post_departure", booking(status=CANCELLED), False,
                     id="post-departure-cancelled"),
    ],
)  # fmt: skip
def test_eligibility_of_the_built_in_kinds(name: str, subject: Booking, eligible: bool) -> None:
    subject_kind = kind(name, 7)
    anchor_on = subject.anchor(subject_kind.anchor)
    assert anchor_on is not None
    first_day = window(subject_kind, anchor_on).first

    assert subject_kind.eligibility.admits(subject) is eligible
    decision = decide(subject_kind, subject, first_day)
    assert (decision is not None) is eligible


@pytest.mark.parametrize(
    ("name", "field"),
    [
        pytest.param("balance_due", "balance_due_on", id="balance-due"),
        pytest.param("arrival", "arrival_on", id="arrival"),
        pytest.param("option_expiry", "option_expires_on", id="option-expiry"),
        pytest.param("post_departure", "departure_on", id="post-departure"),
    ],
)
def test_a_booking_without_the_anchor_date_gets_nothing(name: str, field: str) -> None:
    status = OPTION if name == "option_expiry" else CONFIRMED
    subject = booking(status=status, **{field: None})
    assert decide(kind(name, 7), subject, day("2026-07-01")) is None


def test_decide_records_the_anchor_date_and_the_window() -> None:
    subject = booking(arrival_on=day("2026-07-10"))

    decision = decide(ARRIVAL_7, subject, day("2026-07-05"))

    assert decision is not None
    assert decision.booking == subject
    assert decision.kind == ARRIVAL_7
    assert decision.anchor_on == day("2026-07-10")
    assert decision.visible == days("2026-07-03", "2026-07-10")
    assert decision.outcome is LISTED


def test_plan_decides_every_booking_for_every_kind() -> None:
    kinds = [kind("balance_due", 30), ARRIVAL_7, kind("option_expiry", 2), POST_DEPARTURE_7]
    bookings = [
        # balance due in 5 days, arrival in 3: two reminders
        booking(ref="owing", balance_due_on=day("2026-07-06"), arrival_on=day("2026-07-04"),
                departure_on=day("2026-07-11")),
        # same dates, balance paid: the arrival reminder only
        booking(ref="paid", balance_due_on=day("2026-07-06"), balance_outstanding=ZERO,
                arrival_on=day("2026-07-04"), departure_on=day("2026-07-11")),
        # an option expiring tomorrow
        booking(ref="option", status=OPTION, option_expires_on=day("2026-07-02"),
                arrival_on=day("2026-08-01"), departure_on=day("2026-08-08")),
        # a stay that ended a week ago, and one whose follow-up went by unseen
        booking(ref="departed", departure_on=day("2026-06-24")),
        booking(ref="departed-unseen", departure_on=day("2026-06-08")),
        # cancelled: nothing at all
        booking(ref="cancelled", status=CANCELLED, balance_due_on=day("2026-07-06"),
                arrival_on=day("2026-07-04"), departure_on=day("2026-06-24")),
    ]  # fmt: skip

    decisions = plan(kinds, bookings, day("2026-07-01"), last_planned_on=day("2026-06-27"))

    assert {(d.booking.ref, d.kind.name, d.outcome) for d in decisions} == {
        ("owing", "balance_due", LISTED),
        ("owing", "arrival", LISTED),
        ("paid", "arrival", LISTED),
        ("option", "option_expiry", LISTED),
        ("departed", "post_departure", LISTED),
        ("departed-unseen", "post_departure", MISSED),
    }


def test_plan_with_no_kinds_or_no_bookings_decides_nothing() -> None:
    assert plan([], [booking()], day("2026-07-05")) == []
    assert plan([ARRIVAL_7], [], day("2026-07-05")) == []


ITEM_ON = "2026-07-10"


@pytest.mark.parametrize(
    ("name", "subject", "expected"),
    [
        pytest.param("arrival", booking(arrival_on=day(ITEM_ON)), None,
                     id="arrival-still-qualifies"),
        pytest.param("balance_due", booking(balance_due_on=day(ITEM_ON)), None,
                     id="balance-due-still-owing"),
        pytest.param("option_expiry", booking(status=OPTION, option_expires_on=day(ITEM_ON)),
                     None, id="option-still-an-option"),
        pytest.param("post_departure", booking(departure_on=day(ITEM_ON)), None,
                     id="post-departure-still-qualifies"),
        pytest.param("arrival", booking(arrival_on=day("2026-07-12")),
                     WithdrawReason.DATE_MOVED, id="arrival-moved-later"),
        pytest.param("arrival", booking(arrival_on=day("2026-07-08")),
                     WithdrawReason.DATE_MOVED, id="arrival-moved-earlier"),
        pytest.param("option_expiry", booking(status=OPTION, option_expires_on=None),
                     WithdrawReason.DATE_MOVED, id="option-date-removed"),
        pytest.param("balance_due", booking(balance_due_on=None),
                     WithdrawReason.DATE_MOVED, id="balance-due-date-removed"),
        pytest.param("arrival", booking(status=CANCELLED, arrival_on=day(ITEM_ON)),
                     WithdrawReason.CANCELLED, id="arrival-booking-cancelled"),
        pytest.param("option_expiry",
                     booking(status=CANCELLED, option_expires_on=day(ITEM_ON)),
                     WithdrawReason.CANCELLED, id="option-cancelled"),
        pytest.param("balance_due",
                     booking(balance_due_on=day(ITEM_ON), balance_outstanding=ZERO),
                     WithdrawReason.BALANCE_PAID, id="balance-paid"),
        pytest.param("arrival",
                     booking(arrival_on=day(ITEM_ON), balance_outstanding=ZERO),
                     None, id="arrival-unaffected-by-payment"),
        pytest.param("option_expiry",
                     booking(status=CONFIRMED, option_expires_on=day(ITEM_ON)),
                     WithdrawReason.NOT_ELIGIBLE, id="option-confirmed-meanwhile"),
        pytest.param("arrival", booking(status=OPTION, arrival_on=day(ITEM_ON)),
                     WithdrawReason.NOT_ELIGIBLE, id="arrival-back-to-option"),
    ],
)  # fmt: skip
def test_withdraw_reason(name: str, subject: Booking, expected: WithdrawReason | None) -> None:
    assert withdraw_reason(kind(name, 7), subject, day(ITEM_ON)) == expected


def test_date_range_holds_only_days_within_it() -> None:
    week = days("2026-07-03", "2026-07-10")
    assert day("2026-07-03") in week
    assert day("2026-07-10") in week
    assert day("2026-07-11") not in week
    assert "2026-07-05" not in week
    assert not week.is_empty
    assert days("2026-07-10", "2026-07-09").is_empty


@pytest.mark.parametrize(
    ("kind", "today", "last"),
    [
        pytest.param(ARRIVAL_7, "2026-12-10", "2026-12-01", id="before-kind-9-days-down"),
        pytest.param(POST_DEPARTURE_7, "2026-12-10", "2026-11-02", id="after-kind-long-downtime"),
        pytest.param(kind("option_expiry", 0), "2027-01-02", "2026-12-30", id="delay-0"),
    ],
)  # fmt: skip
def test_anchors_to_plan_is_the_missed_range_then_the_visible_one(
    kind: Kind, today: str, last: str
) -> None:
    missed = missed_anchors(kind, day(today), day(last))
    visible = visible_anchors(kind, day(today))
    assert missed is not None
    assert missed.last + timedelta(days=1) == visible.first  # they touch
    assert anchors_to_plan(kind, day(today), day(last)) == DateRange(
        first=missed.first, last=visible.last
    )


def test_anchors_to_plan_without_a_gap_is_the_visible_range() -> None:
    assert anchors_to_plan(ARRIVAL_7, day("2026-12-10"), day("2026-12-09")) == visible_anchors(
        ARRIVAL_7, day("2026-12-10")
    )
    assert anchors_to_plan(ARRIVAL_7, day("2026-12-10"), None) == visible_anchors(
        ARRIVAL_7, day("2026-12-10")
    )


#: The longest delay and retention the configuration accepts, before and after the anchor.
LONGEST = [
    pytest.param(kind("arrival", MAX_DAYS, MAX_DAYS), id="before-kind-longest"),
    pytest.param(kind("post_departure", MAX_DAYS, MAX_DAYS), id="after-kind-longest"),
]
EXTREME_DAYS = [
    pytest.param(EARLIEST_DAY, id="earliest-day"),
    pytest.param(LATEST_DAY, id="latest-day"),
]


@pytest.mark.parametrize("longest", LONGEST)
@pytest.mark.parametrize("anchor_on", EXTREME_DAYS)
@pytest.mark.parametrize("today", EXTREME_DAYS)
def test_the_arithmetic_stays_in_the_calendar_at_the_ends_of_the_accepted_range(
    longest: Kind, anchor_on: date, today: date
) -> None:
    subject = booking(arrival_on=anchor_on, departure_on=anchor_on)

    decide(longest, subject, today, last_planned_on=EARLIEST_DAY)
    anchors_to_plan(longest, today, last_planned_on=EARLIEST_DAY)

    assert window(longest, anchor_on).first.year > 1
    assert visible_anchors(longest, today).last.year < 9999


def test_a_previous_pass_on_the_last_day_of_the_calendar_misses_nothing() -> None:
    # A database may hold such a pass from before the planning day was bounded.
    assert missed_anchors(POST_DEPARTURE_7, day("2026-12-01"), date.max) is None
