"""The queue's state machine (SPEC §3) as a table of allowed transitions."""

from __future__ import annotations

import itertools
import re

import pytest

from reminders.errors import TransitionError
from reminders.queue import TRANSITIONS, Status, check_transition

S = Status

#: SPEC §3, edge by edge: (from, to, why).
ALLOWED = [
    (S.PENDING, S.APPROVED, "staff-or-auto-send-approve"),
    (S.APPROVED, S.SENDING, "dispatcher-claims"),
    (S.PENDING, S.SENDING, "staff-send-approves-and-claims-in-one-step"),
    (S.SENDING, S.SENT, "mail-server-accepted"),
    (S.SENDING, S.FAILED, "permanent-failure-or-retries-used-up"),
    (S.SENDING, S.UNKNOWN, "process-died-mid-send"),
    (S.UNKNOWN, S.SENDING, "staff-resend"),
    (S.UNKNOWN, S.SENT, "staff-mark-sent"),
    (S.PENDING, S.DISCARDED, "staff-discard"),
    (S.APPROVED, S.DISCARDED, "staff-discard-before-dispatch"),
    (S.PENDING, S.EXPIRED, "window-passed"),
    (S.PENDING, S.WITHDRAWN, "booking-no-longer-qualifies"),
    (S.APPROVED, S.PENDING, "consent-withdrawn-before-dispatch"),
    (S.SENDING, S.APPROVED, "transient-failure-retry-later"),
    (S.FAILED, S.SENDING, "staff-resend-after-failure"),
    (S.UNKNOWN, S.DISCARDED, "staff-decides-not-to-resend"),
    (S.APPROVED, S.EXPIRED, "window-passed-before-it-could-go"),
    (S.APPROVED, S.WITHDRAWN, "booking-cancelled-before-dispatch"),
    (S.DISCARDED, S.PENDING, "staff-restore-while-the-window-is-open"),
]


def test_the_transition_table_is_the_spec() -> None:
    table = {(source, target) for target, sources in TRANSITIONS.items() for source in sources}
    assert table == {(source, target) for source, target, _ in ALLOWED}


@pytest.mark.parametrize(
    ("current", "target"),
    [
        pytest.param(source, target, id=f"{source}->{target}-{why}")
        for source, target, why in ALLOWED
    ],
)
def test_allowed_transitions_pass(current: Status, target: Status) -> None:
    check_transition(7, current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        pytest.param(S.SENT, S.PENDING, id="sent->pending-nothing-goes-back-to-pending"),
        pytest.param(S.WITHDRAWN, S.PENDING, id="withdrawn->pending-a-new-item-is-planned"),
        pytest.param(S.PENDING, S.SENT, id="pending->sent-must-be-approved-and-sent"),
        pytest.param(S.MISSED, S.APPROVED, id="missed->approved-missed-is-never-sent"),
        pytest.param(S.MISSED, S.SENT, id="missed->sent"),
        pytest.param(S.DISCARDED, S.APPROVED, id="discarded->approved"),
        pytest.param(S.EXPIRED, S.APPROVED, id="expired->approved"),
        pytest.param(S.WITHDRAWN, S.APPROVED, id="withdrawn->approved"),
        pytest.param(S.SENT, S.DISCARDED, id="sent->discarded"),
        pytest.param(S.SENT, S.SENDING, id="sent->sending-never-sent-twice"),
        pytest.param(S.SENDING, S.SENDING, id="sending->sending-claimed-once"),
        pytest.param(S.FAILED, S.SENT, id="failed->sent"),
        pytest.param(S.UNKNOWN, S.FAILED, id="unknown->failed-a-person-decides"),
        pytest.param(S.SENDING, S.DISCARDED, id="sending->discarded-too-late"),
        pytest.param(S.SENDING, S.EXPIRED, id="sending->expired-in-flight"),
        pytest.param(S.SENDING, S.PENDING, id="sending->pending-in-flight"),
        pytest.param(S.FAILED, S.APPROVED, id="failed->approved-only-a-person-resends"),
        pytest.param(S.UNKNOWN, S.APPROVED, id="unknown->approved-never-re-sent-automatically"),
        pytest.param(S.PENDING, S.MISSED, id="pending->missed-missed-is-only-created"),
    ],
)
def test_forbidden_transitions_raise_naming_the_item_and_both_states(
    current: Status, target: Status
) -> None:
    with pytest.raises(TransitionError) as raised:
        check_transition(42, current, target)

    message = str(raised.value)
    assert re.search(r"\b42\b", message), message
    assert str(current) in message
    assert str(target) in message


def test_every_pair_outside_the_table_raises() -> None:
    allowed = {(source, target) for source, target, _ in ALLOWED}
    for current, target in itertools.product(Status, Status):
        if (current, target) in allowed:
            continue
        with pytest.raises(TransitionError):
            check_transition(1, current, target)
