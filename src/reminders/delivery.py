"""What happens to an email when it is sent: outcomes, the settle decision, retries (pure).

After every attempt the dispatcher asks `settle` what becomes of the item; the
store applies the answer as a conditional update through the transition table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from .kinds import Eligibility
from .queue import Status


class Result(StrEnum):
    SENT = "sent"  #: the mail server accepted it
    HELD = "held"  #: no consent: not sent, stays pending with the reason
    RETRY = "retry"  #: transient failure: stays approved, retried later
    FAILED = "failed"  #: refused for good, retries used up, or the message cannot be built
    UNKNOWN = "unknown"  #: handed over but not confirmed: a person decides
    WITHDRAWN = "withdrawn"  #: its booking no longer qualifies
    EXPIRED = "expired"  #: its window ended before it could go: never sent late
    REFUSED = "refused"  #: not in a state to be sent this way
    NOT_TRIED = "not_tried"  #: the batch stopped before its turn (server unreachable)
    TAKEN = "taken"  #: another process sent it (or is sending it) meanwhile: not an error


#: Results that mean something was not sent and a person should look.
PROBLEMS = frozenset(
    {
        Result.RETRY,
        Result.FAILED,
        Result.UNKNOWN,
        Result.REFUSED,
        Result.NOT_TRIED,
        Result.EXPIRED,
        Result.WITHDRAWN,
    }
)


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
        return self.stopped is None and not self.count(*PROBLEMS)


class Outcome(StrEnum):
    """What the transport said about one message (or why none was handed over)."""

    ACCEPTED = "accepted"  #: the server took it
    TRANSIENT = "transient"  #: not delivered this time (unreachable, 4xx)
    PERMANENT = "permanent"  #: refused for good (5xx)
    UNCERTAIN = "uncertain"  #: handed over, final reply lost
    UNBUILDABLE = "unbuildable"  #: the item's data cannot make a safe message
    NOT_TRIED = "not_tried"  #: claimed, but the batch stopped before its turn


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One item's attempt, as the dispatcher saw it."""

    outcome: Outcome
    detail: str | None = None
    #: the SMTP reply code and the RFC 3463 enhanced code ("5.1.1"), when there was a reply
    code: int | None = None
    enhanced: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """`mail.max_attempts`, `mail.retry_after_s` and `mail.retry_max_s`."""

    max_attempts: int
    retry_after_s: float
    retry_max_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    """What becomes of a claimed item after its attempt."""

    target: Status
    result: Result
    #: the delivery log's outcome: sent, transient, permanent, unknown, unbuildable, not_tried
    logged_as: str
    #: the item's reason column (None clears it)
    reason: str | None
    detail: str | None = None
    next_attempt_at: datetime | None = None
    #: count this attempt (a claim that was given back without trying is not one)
    counts: bool = True
    #: the address does not exist (5.1.x): opt it out with source `system`
    opts_out: bool = False


def settle(attempt: Attempt, *, attempts: int, policy: RetryPolicy, now: datetime) -> Settlement:
    """Decide what becomes of an item after its `attempts`-th attempt (this one included).

    - accepted → sent;
    - handed over without a final reply → unknown: a person decides (never re-sent);
    - transient (4xx, unreachable) → approved again, retried after `retry_delay`, or
      failed once `max_attempts` attempts were made;
    - permanent (5xx) → failed; a 5.1.x reply (no such mailbox) also opts the address out;
    - unbuildable (bad data in a header or address) → failed with the reason;
    - not tried (the batch stopped first) → approved again, due at once, not counted.
    """
    detail = attempt.detail
    match attempt.outcome:
        case Outcome.ACCEPTED:
            return Settlement(target=Status.SENT, result=Result.SENT, logged_as="sent", reason=None)
        case Outcome.UNCERTAIN:
            return Settlement(
                target=Status.UNKNOWN,
                result=Result.UNKNOWN,
                logged_as="unknown",
                reason="unknown",
                detail=detail,
            )
        case Outcome.NOT_TRIED:
            return Settlement(
                target=Status.APPROVED,
                result=Result.NOT_TRIED,
                logged_as="not_tried",
                reason=None,
                detail=detail,
                counts=False,
            )
        case Outcome.TRANSIENT if attempts < policy.max_attempts:
            return Settlement(
                target=Status.APPROVED,
                result=Result.RETRY,
                logged_as="transient",
                reason="transient",
                detail=detail,
                next_attempt_at=now
                + retry_delay(attempts, policy.retry_after_s, policy.retry_max_s),
            )
        case Outcome.TRANSIENT:
            return Settlement(
                target=Status.FAILED,
                result=Result.FAILED,
                logged_as="transient",
                reason="transient",
                detail=f"retries used up after {attempts} attempts: {detail}",
            )
        case Outcome.PERMANENT:
            gone = (attempt.enhanced or "").startswith("5.1.")
            return Settlement(
                target=Status.FAILED,
                result=Result.FAILED,
                logged_as="permanent",
                reason="permanent",
                detail=f"{detail} (the address is now opted out: source system)"
                if gone
                else detail,
                opts_out=gone,
            )
        case Outcome.UNBUILDABLE:
            return Settlement(
                target=Status.FAILED,
                result=Result.FAILED,
                logged_as="unbuildable",
                reason="unbuildable",
                detail=f"{detail}: not sent (correct the contact or the email, then resend it)",
            )
    raise ValueError(f"unknown outcome {attempt.outcome!r}")  # pragma: no cover


def retry_delay(attempts: int, first_s: float, max_s: float) -> timedelta:
    """Return how long to wait after the `attempts`-th failed attempt (1, 2, ...).

    The first retry waits `first_s`; each further one waits twice as long as
    the previous, never more than `max_s`.
    """
    exponent = max(attempts - 1, 0)
    seconds = max_s if exponent >= 64 else min(first_s * 2**exponent, max_s)
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Which items a claim (or a sweep) looks at."""

    #: the statuses an item may be claimed from
    statuses: frozenset[Status]
    #: these items only (`send ID...`, `resend ID...`)
    ids: tuple[int, ...] | None = None
    #: one tab (`send-all`)
    agency: str | None = None
    kind: str | None = None
    #: only approved items whose retry is due at this instant (the daemon)
    due_at: datetime | None = None
    #: only these agencies (None: every agency), and never these
    agencies: tuple[str, ...] | None = None
    excluded: tuple[str, ...] = ()

    def narrowed(self, agencies: tuple[str, ...]) -> Scope:
        """Return this scope limited to `agencies`."""
        if self.agencies is not None:
            agencies = tuple(a for a in self.agencies if a in agencies)
        return replace(self, agencies=agencies)


@dataclass(frozen=True, slots=True, kw_only=True)
class KindRule:
    """A kind's anchor and eligibility, as the agencies in `agencies` define it."""

    name: str
    anchor: str
    eligibility: Eligibility
    agencies: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRules:
    """What must still hold, at the moment of the claim, for an item to be sent.

    Its window still includes the agency's local today (it is never sent late);
    its booking still qualifies for its kind, with the same anchor date; its
    address consents (confirmed since `consent_cutoff`, not opted out).
    """

    now: datetime
    consent_cutoff: datetime
    #: each local day it is somewhere, with the agencies for which it is that day
    todays: tuple[tuple[date, tuple[str, ...]], ...]
    kinds: tuple[KindRule, ...]
    #: (agency, kind) pairs a contact cannot refuse: a kind refusal does not hold them
    required: tuple[tuple[str, str], ...] = ()
