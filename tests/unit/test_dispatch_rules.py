"""The dispatcher's pure rules: retry backoff, per-agency pacing, abandoned claims."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reminders.delivery import claimant_is_gone, pause_before_next, retry_delay

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


# -- pause_before_next: attempts spaced 60 / per_minute seconds apart --------------------

NOW = datetime(2026, 7, 3, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_started", "per_minute", "expected_s"),
    [
        pytest.param(None, 60, 0.0, id="never-sent-goes-at-once"),
        pytest.param(None, 0.5, 0.0, id="never-sent-goes-at-once-even-when-slow"),
        pytest.param(NOW, 60, 1.0, id="60-a-minute-just-started-waits-1s"),
        pytest.param(NOW, 30, 2.0, id="30-a-minute-just-started-waits-2s"),
        pytest.param(NOW, 600, 0.1, id="600-a-minute-just-started-waits-a-tenth"),
        pytest.param(NOW, 0.5, 120.0, id="half-a-minute-just-started-waits-2-minutes"),
        pytest.param(NOW - timedelta(seconds=0.25), 60, 0.75, id="quarter-second-ago-waits-rest"),
        pytest.param(NOW - timedelta(seconds=5), 6, 5.0, id="6-a-minute-5s-ago-waits-5s"),
        pytest.param(NOW - timedelta(seconds=1), 60, 0.0, id="exactly-the-spacing-ago"),
        pytest.param(NOW - timedelta(seconds=30), 60, 0.0, id="long-ago-never-negative"),
        pytest.param(NOW - timedelta(days=3), 1, 0.0, id="days-ago-never-negative"),
        pytest.param(datetime(2026, 7, 3, 8, 30, tzinfo=ZoneInfo("Europe/Paris")), 30, 2.0,
                     id="same-instant-written-in-the-agency-zone"),
    ],
)  # fmt: skip
def test_pause_before_next(
    last_started: datetime | None, per_minute: float, expected_s: float
) -> None:
    assert pause_before_next(last_started, NOW, per_minute) == pytest.approx(expected_s)


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
