"""The dispatcher's pure rules: the settle decision, retry backoff, abandoned claims."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from reminders.delivery import Attempt, Outcome, Result, RetryPolicy, retry_delay, settle
from reminders.leases import claimant_is_gone, message_id, this_process
from reminders.queue import Status, sources_of

# -- retry_delay: doubling from first_s, capped at max_s --------------------------------


@pytest.mark.parametrize(
    ("attempts", "first_s", "max_s", "expected_s"),
    [
        pytest.param(1, 60, 3600, 60, id="first-failure-waits-first-s"),
        pytest.param(2, 60, 3600, 120, id="second-failure-doubles"),
        pytest.param(3, 60, 3600, 240, id="third-failure-doubles-again"),
        pytest.param(6, 60, 3600, 1920, id="sixth-failure-still-under-the-cap"),
        pytest.param(7, 60, 3600, 3600, id="seventh-failure-3840-capped-at-3600"),
        pytest.param(8, 60, 3600, 3600, id="eighth-failure-stays-at-the-cap"),
        pytest.param(7, 60, 3840, 3840, id="cap-exactly-reached"),
        pytest.param(0, 60, 3600, 60, id="zero-attempts-waits-like-the-first"),
        pytest.param(-3, 60, 3600, 60, id="negative-attempts-waits-like-the-first"),
        pytest.param(64, 60, 3600, 3600, id="64-failures-capped"),
        pytest.param(65, 60, 3600, 3600, id="65-failures-capped"),
        pytest.param(1_000_000, 60, 3600, 3600, id="a-million-failures-capped"),
        pytest.param(10**100, 60, 3600, 3600, id="googol-failures-capped-without-overflow"),
        pytest.param(1, 7200, 3600, 3600, id="first-s-above-the-cap-is-capped"),
        pytest.param(1, 0.5, 3600, 0.5, id="fractional-first-s"),
        pytest.param(3, 0.5, 3600, 2.0, id="fractional-first-s-doubled-twice"),
        pytest.param(5, 1.5, 10, 10, id="fractional-first-s-capped"),
    ],
)  # fmt: skip
def test_retry_delay(attempts: int, first_s: float, max_s: float, expected_s: float) -> None:
    assert retry_delay(attempts, first_s, max_s) == timedelta(seconds=expected_s)


def test_retry_delays_never_shrink_as_failures_pile_up() -> None:
    delays = [retry_delay(n, 60, 3600) for n in range(1, 100)]

    assert delays == sorted(delays)
    assert delays[-1] == timedelta(hours=1)


# -- settle: what becomes of an item after its attempt -------------------------------------

NOW = datetime(2026, 7, 3, 6, 30, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=3, retry_after_s=60, retry_max_s=3600)


@pytest.mark.parametrize(
    ("attempt", "attempts", "target", "result", "logged", "retry_after_s", "opts_out", "counts"),
    [
        pytest.param(Attempt(outcome=Outcome.ACCEPTED), 1,
                     Status.SENT, Result.SENT, "sent", None, False, True, id="accepted-is-sent"),
        pytest.param(Attempt(outcome=Outcome.UNCERTAIN, detail="no reply"), 1,
                     Status.UNKNOWN, Result.UNKNOWN, "unknown", None, False, True,
                     id="lost-final-reply-is-unknown-never-retried"),
        pytest.param(Attempt(outcome=Outcome.TRANSIENT, code=421), 1,
                     Status.APPROVED, Result.RETRY, "transient", 60, False, True,
                     id="first-4xx-retried-after-retry-after-s"),
        pytest.param(Attempt(outcome=Outcome.TRANSIENT, code=451), 2,
                     Status.APPROVED, Result.RETRY, "transient", 120, False, True,
                     id="second-4xx-waits-twice-as-long"),
        pytest.param(Attempt(outcome=Outcome.TRANSIENT), 3,
                     Status.FAILED, Result.FAILED, "transient", None, False, True,
                     id="4xx-on-the-last-attempt-fails"),
        pytest.param(Attempt(outcome=Outcome.PERMANENT, code=550, enhanced="5.1.1"), 1,
                     Status.FAILED, Result.FAILED, "permanent", None, True, True,
                     id="no-such-mailbox-fails-and-opts-out"),
        pytest.param(Attempt(outcome=Outcome.PERMANENT, code=550, enhanced="5.1.10"), 1,
                     Status.FAILED, Result.FAILED, "permanent", None, True, True,
                     id="null-mx-5-1-10-opts-out"),
        pytest.param(Attempt(outcome=Outcome.PERMANENT, code=552, enhanced="5.3.4"), 1,
                     Status.FAILED, Result.FAILED, "permanent", None, False, True,
                     id="message-too-big-fails-address-kept"),
        pytest.param(Attempt(outcome=Outcome.PERMANENT, code=554), 1,
                     Status.FAILED, Result.FAILED, "permanent", None, False, True,
                     id="5xx-without-enhanced-code-fails-address-kept"),
        pytest.param(Attempt(outcome=Outcome.UNBUILDABLE, detail="CR in name"), 1,
                     Status.FAILED, Result.FAILED, "unbuildable", None, False, True,
                     id="bad-data-fails-with-the-reason"),
        pytest.param(Attempt(outcome=Outcome.NOT_TRIED), 2,
                     Status.APPROVED, Result.NOT_TRIED, "not_tried", None, False, False,
                     id="not-tried-goes-back-due-at-once-uncounted"),
    ],
)  # fmt: skip
def test_settle(
    attempt: Attempt,
    attempts: int,
    target: Status,
    result: Result,
    logged: str,
    retry_after_s: float | None,
    opts_out: bool,
    counts: bool,
) -> None:
    settlement = settle(attempt, attempts=attempts, policy=POLICY, now=NOW)

    assert (settlement.target, settlement.result, settlement.logged_as) == (target, result, logged)
    expected_retry = NOW + timedelta(seconds=retry_after_s) if retry_after_s else None
    assert settlement.next_attempt_at == expected_retry
    assert (settlement.opts_out, settlement.counts) == (opts_out, counts)
    # Every decision is a transition the table allows from `sending`.
    assert Status.SENDING in sources_of(settlement.target)


def test_settle_keeps_what_the_server_said_and_says_why_it_gave_up() -> None:
    used_up = settle(
        Attempt(outcome=Outcome.TRANSIENT, detail="421 try later"),
        attempts=3,
        policy=POLICY,
        now=NOW,
    )
    gone = settle(
        Attempt(outcome=Outcome.PERMANENT, detail="550 5.1.1 no such user", enhanced="5.1.1"),
        attempts=1,
        policy=POLICY,
        now=NOW,
    )

    assert used_up.detail == "retries used up after 3 attempts: 421 try later"
    assert gone.detail == "550 5.1.1 no such user (the address is now opted out: source system)"


# -- claimant_is_gone: only a process on this host with no such pid is surely gone -------

HOST = "agency-box"


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """Return the pid of a child process that has exited and been reaped."""
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        child.wait()
    return child.pid


@pytest.mark.parametrize(
    "claimant",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
    ],
)
def test_no_claimant_is_gone(claimant: str | None) -> None:
    assert claimant_is_gone(claimant, HOST) is True


def test_a_dead_process_on_this_host_is_gone(dead_pid: int) -> None:
    assert claimant_is_gone(f"{HOST}:{dead_pid}", HOST) is True


def test_this_very_process_is_not_gone() -> None:
    assert claimant_is_gone(f"{HOST}:{os.getpid()}", HOST) is False


def test_a_dead_pid_on_another_host_is_not_known_to_be_gone(dead_pid: int) -> None:
    assert claimant_is_gone(f"other-box:{dead_pid}", HOST) is False


def test_a_host_name_with_a_colon_is_split_at_the_last_one(dead_pid: int) -> None:
    assert claimant_is_gone(f"box:1:{dead_pid}", "box:1") is True
    assert claimant_is_gone(f"box:1:{os.getpid()}", "box:1") is False


@pytest.mark.parametrize(
    "claimant",
    [
        pytest.param("agency-box", id="no-pid"),
        pytest.param("agency-box:", id="empty-pid"),
        pytest.param("agency-box:abc", id="pid-not-a-number"),
        pytest.param("agency-box:-1", id="negative-pid"),
        pytest.param("agency-box: 42", id="pid-with-a-space"),
        pytest.param("agency-box:4.2", id="pid-with-a-dot"),
        pytest.param(":42", id="no-host"),
        pytest.param(f"agency-box:{2**31}", id="pid-beyond-the-system-pid-range"),
        pytest.param(f"agency-box:{2**64}", id="pid-too-large-for-a-c-long"),
        pytest.param("agency-box:²", id="pid-a-superscript-digit"),
    ],
)
def test_a_malformed_claimant_is_not_gone(claimant: str) -> None:
    assert claimant_is_gone(claimant, HOST) is False


def test_another_users_live_process_is_not_gone() -> None:
    # pid 1 always runs; without the right to signal it, it is still alive.
    assert claimant_is_gone(f"{HOST}:1", HOST) is False


def test_a_dead_process_named_with_its_nonce_is_gone(dead_pid: int) -> None:
    assert claimant_is_gone(f"{HOST}:{dead_pid}:0a1b2c3d", HOST) is True
    assert claimant_is_gone(f"a:b:{dead_pid}:0a1b2c3d", "a:b") is True


def test_this_process_by_its_own_name_is_not_gone() -> None:
    name = this_process()
    host = name.rsplit(":", 2)[0]

    assert claimant_is_gone(name, host) is False
    assert this_process() != name  # two dispatchers of one process have two nonces


def test_the_message_id_of_an_attempt_follows_from_its_claim() -> None:
    claimant = "agency-box:4242:0a1b2c3d"

    assert message_id(7, 2, claimant, "agence-du-lac.example") == (
        "<r7.2.0a1b2c3d@agence-du-lac.example>"
    )
    assert message_id(7, 1, "agency-box:4242", "x.example") == "<r7.1.0@x.example>"
