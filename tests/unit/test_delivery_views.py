"""What a person reads after sending: one line per item, a summary, and what went wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reminders.delivery import Delivery, DispatchReport, Result
from reminders.views import delivery_text, dispatch_problem, dispatch_summary

#: The zone of the agency the items belong to.
PARIS = ZoneInfo("Europe/Paris")
STOPPED = "cannot reach the mail server 127.0.0.1:1025 (Connection refused)"


def delivery(result: Result, **overrides: Any) -> Delivery:
    """Return what happened to item 7, an arrival reminder for booking B-1001."""
    values: dict[str, Any] = {
        "item_id": 7,
        "result": result,
        "agency": "annecy",
        "kind": "arrival",
        "booking_ref": "B-1001",
        "to": "jean@example.com",
    }
    values.update(overrides)
    return Delivery(**values)


def report(*results: Result, stopped: str | None = None) -> DispatchReport:
    return DispatchReport(
        deliveries=[delivery(r, item_id=n) for n, r in enumerate(results, start=1)],
        stopped=stopped,
    )


# -- delivery_text: one line per item -----------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        pytest.param(delivery(Result.SENT, message_id="<r7.1.abc@agence-du-lac.example>"),
                     "item 7 sent to jean@example.com (arrival, booking B-1001) "
                     "<r7.1.abc@agence-du-lac.example>",
                     id="sent-names-address-and-message-id"),
        pytest.param(delivery(Result.RETRY, detail="451 4.3.0 try later",
                              next_attempt_at=datetime(2026, 7, 3, 6, 31, 5, 123, tzinfo=UTC)),
                     "item 7 not sent (arrival, booking B-1001): 451 4.3.0 try later: it stays "
                     "approved and is retried from 2026-07-03 08:31 CEST "
                     "(or run 'reminders send 7' again)",
                     id="retry-says-when-in-the-agencys-time"),
        pytest.param(delivery(Result.RETRY, detail="451 4.3.0 try later"),
                     "item 7 not sent (arrival, booking B-1001): 451 4.3.0 try later: it stays "
                     "approved and is retried from later (or run 'reminders send 7' again)",
                     id="retry-without-a-time"),
        pytest.param(delivery(Result.HELD, detail="no consent (opted_out): not sent, it stays "
                                                  "pending"),
                     "item 7 not sent (arrival, booking B-1001): no consent (opted_out): not "
                     "sent, it stays pending",
                     id="held-for-consent"),
        pytest.param(delivery(Result.FAILED, detail="550 5.1.1 no such user"),
                     "item 7 failed (arrival, booking B-1001): 550 5.1.1 no such user",
                     id="failed"),
        pytest.param(delivery(Result.UNKNOWN, detail="no final reply"),
                     "item 7 unknown (arrival, booking B-1001): no final reply",
                     id="unknown"),
        pytest.param(delivery(Result.WITHDRAWN, detail="the booking was cancelled"),
                     "item 7 not sent (arrival, booking B-1001): the booking was cancelled",
                     id="withdrawn"),
        pytest.param(delivery(Result.REFUSED, detail="item 7 was already sent"),
                     "item 7 not sent (arrival, booking B-1001): item 7 was already sent",
                     id="refused"),
        pytest.param(Delivery(item_id=99, result=Result.REFUSED, detail="no such item"),
                     "item 99 not sent: no such item",
                     id="unknown-item-has-no-kind-or-booking"),
    ],
)  # fmt: skip
def test_delivery_text(subject: Delivery, expected: str) -> None:
    assert delivery_text(subject, PARIS) == expected


def test_a_delivery_not_tried_says_why() -> None:
    line = delivery_text(
        delivery(Result.NOT_TRIED, detail="not tried: the batch stopped before it"), PARIS
    )

    assert line.startswith("item 7")
    assert line.endswith("not tried: the batch stopped before it")


@pytest.mark.parametrize("result", list(Result), ids=str)
def test_every_result_is_one_line_about_its_item(result: Result) -> None:
    line = delivery_text(
        delivery(result, detail="why", message_id="<m@example.com>", item_id=4321), PARIS
    )

    assert "\n" not in line
    assert line.startswith("item 4321 ")


# -- dispatch_summary: counts of each outcome ---------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        pytest.param(report(), "0 sent, 0 held for consent, 0 to retry, 0 failed, 0 unknown",
                     id="empty-batch"),
        pytest.param(report(Result.SENT, Result.SENT, Result.HELD, Result.RETRY, Result.FAILED,
                            Result.UNKNOWN),
                     "2 sent, 1 held for consent, 1 to retry, 1 failed, 1 unknown",
                     id="each-outcome-counted"),
        pytest.param(report(Result.SENT, Result.REFUSED, Result.WITHDRAWN, Result.NOT_TRIED),
                     "1 sent, 0 held for consent, 0 to retry, 0 failed, 0 unknown, "
                     "3 not sendable or not tried",
                     id="refused-withdrawn-not-tried-grouped"),
    ],
)  # fmt: skip
def test_dispatch_summary(subject: DispatchReport, expected: str) -> None:
    assert dispatch_summary(subject) == expected


# -- dispatch_problem: the one line that makes the command fail ---------------------------


@pytest.mark.parametrize(
    ("subject", "held_is_failure", "expected"),
    [
        pytest.param(report(), True, None, id="empty-batch-is-fine"),
        pytest.param(report(Result.SENT, Result.SENT), True, None, id="all-sent"),
        pytest.param(report(Result.SENT, Result.HELD), False, None,
                     id="held-is-not-a-failure-for-the-daemon"),
        pytest.param(report(Result.SENT, Result.HELD), True,
                     "1 of 2 emails not sent: see the lines above for each one and what to do",
                     id="held-is-a-failure-when-a-person-asked"),
        pytest.param(report(Result.HELD), True,
                     "1 of 1 email not sent: see the lines above for each one and what to do",
                     id="one-email-singular"),
        pytest.param(report(Result.SENT, Result.HELD, Result.RETRY), False,
                     "1 of 3 emails not sent: see the lines above for each one and what to do",
                     id="held-not-counted-retry-counted"),
        pytest.param(report(Result.SENT, Result.HELD, Result.RETRY), True,
                     "2 of 3 emails not sent: see the lines above for each one and what to do",
                     id="held-and-retry-counted"),
        pytest.param(report(Result.RETRY, Result.FAILED, Result.UNKNOWN, Result.REFUSED,
                            Result.NOT_TRIED, Result.SENT), False,
                     "5 of 6 emails not sent: see the lines above for each one and what to do",
                     id="every-kind-of-not-sent-counts"),
        pytest.param(report(Result.WITHDRAWN, Result.EXPIRED, Result.TAKEN, Result.SENT), False,
                     None, id="withdrawn-expired-or-sent-elsewhere-is-fine-for-a-tab"),
        pytest.param(report(Result.WITHDRAWN, Result.SENT), True,
                     "1 of 2 emails not sent: see the lines above for each one and what to do",
                     id="withdrawn-counts-when-a-person-named-the-email"),
        pytest.param(report(Result.TAKEN, Result.SENT), True, None,
                     id="sent-by-another-process-is-not-a-failure"),
    ],
)  # fmt: skip
def test_dispatch_problem(
    subject: DispatchReport, held_is_failure: bool, expected: str | None
) -> None:
    assert dispatch_problem(subject, held_is_failure=held_is_failure) == expected


@pytest.mark.parametrize("held_is_failure", [True, False], ids=["person", "daemon"])
@pytest.mark.parametrize(
    ("results", "waiting"),
    [
        pytest.param((Result.SENT, Result.RETRY, Result.NOT_TRIED, Result.NOT_TRIED),
                     "3 emails not sent", id="after-one-sent"),
        pytest.param((Result.RETRY,), "1 email not sent", id="first-one-singular"),
    ],
)  # fmt: skip
def test_a_stopped_batch_is_one_line_saying_nothing_is_lost(
    results: tuple[Result, ...], waiting: str, held_is_failure: bool
) -> None:
    line = dispatch_problem(report(*results, stopped=STOPPED), held_is_failure=held_is_failure)

    assert line is not None
    assert "\n" not in line
    assert line.startswith(f"{STOPPED}: {waiting}, nothing lost")


def test_a_stopped_batch_counts_the_email_whose_retries_ran_out() -> None:
    # The last transient failure of an item both fails it for good and stops the batch.
    line = dispatch_problem(report(Result.FAILED, stopped=STOPPED), held_is_failure=True)

    assert line is not None
    assert "0 emails not sent" not in line
    assert "1 email" in line
