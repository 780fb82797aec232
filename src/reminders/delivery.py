"""What happens to an email when it is sent: outcomes, retry and pacing rules (pure).

No I/O here except telling whether a process is still alive (`claimant_is_gone`).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Result(StrEnum):
    SENT = "sent"  #: the mail server accepted it
    HELD = "held"  #: no consent: not sent, stays pending with the reason
    RETRY = "retry"  #: transient failure: stays approved, retried later
    FAILED = "failed"  #: refused for good, or retries used up
    UNKNOWN = "unknown"  #: handed over but not confirmed: a person decides
    WITHDRAWN = "withdrawn"  #: its booking no longer qualifies
    EXPIRED = "expired"  #: its window ended before it could go: never sent late
    REFUSED = "refused"  #: not in a state to be sent this way, or no valid address
    NOT_TRIED = "not_tried"  #: the batch stopped before its turn (server unreachable)


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """What happened to one item."""

    item_id: int
    result: Result
    agency: str = ""
    kind: str = ""
    booking_ref: str = ""
    to: str | None = None
    detail: str | None = None
    message_id: str | None = None
    next_attempt_at: datetime | None = None


@dataclass(slots=True)
class DispatchReport:
    deliveries: list[Delivery] = field(default_factory=list)
    #: why the batch stopped early (the server is unreachable, the login is refused)
    stopped: str | None = None
    #: items found abandoned in `sending` and turned into `unknown`
    recovered: list[int] = field(default_factory=list)

    def count(self, *results: Result) -> int:
        return sum(1 for d in self.deliveries if d.result in results)

    def of(self, result: Result) -> list[Delivery]:
        return [d for d in self.deliveries if d.result is result]

    @property
    def ok(self) -> bool:
        """True when nothing failed to go out for a reason other than consent."""
        return self.stopped is None and not self.count(
            Result.RETRY,
            Result.FAILED,
            Result.UNKNOWN,
            Result.REFUSED,
            Result.NOT_TRIED,
            Result.EXPIRED,
        )


def retry_delay(attempts: int, first_s: float, max_s: float) -> timedelta:
    """Return how long to wait after the `attempts`-th failed attempt (1, 2, ...).

    The first retry waits `first_s`; each further one waits twice as long as
    the previous, never more than `max_s`.
    """
    exponent = max(attempts - 1, 0)
    seconds = max_s if exponent >= 64 else min(first_s * 2**exponent, max_s)
    return timedelta(seconds=seconds)


def pause_before_next(last_started: datetime | None, now: datetime, per_minute: float) -> float:
    """Return the seconds to wait so an agency's emails leave at most `per_minute` a minute.

    Attempts are spaced evenly, `60 / per_minute` seconds apart, counted from the
    start of the agency's previous attempt (by any process sharing the database).
    """
    if last_started is None:
        return 0.0
    due = last_started + timedelta(seconds=60.0 / per_minute)
    return max((due - now).total_seconds(), 0.0)


def this_process() -> str:
    """Name the current process as a claimant: 'host:pid'."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claimant_is_gone(claimant: str | None, host: str) -> bool:
    """Tell whether the process named `claimant` surely stopped (only knowable on `host`)."""
    if not claimant:
        return True
    claimant_host, _, pid = claimant.rpartition(":")
    if claimant_host != host or not (pid.isascii() and pid.isdigit()):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # alive and someone else's, or no pid at all: cannot tell
    return False
