"""The queue of reminder emails: states, allowed transitions and the item value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from .consent import AddressConsent
from .errors import TransitionError


class Status(StrEnum):
    PENDING = "pending"  #: waiting for staff in its tab
    APPROVED = "approved"  #: staff (or auto_send) said send; the dispatcher will
    SENDING = "sending"  #: claimed by a dispatcher, SMTP transaction under way
    SENT = "sent"  #: accepted by the mail server
    FAILED = "failed"  #: refused for good, or retries used up
    UNKNOWN = "unknown"  #: found in `sending` after a crash; a person decides
    DISCARDED = "discarded"  #: staff decided not to send it
    EXPIRED = "expired"  #: its window passed while it was pending
    WITHDRAWN = "withdrawn"  #: the booking no longer qualifies (date moved, cancelled, paid)
    MISSED = "missed"  #: its whole window went by while nothing planned; never sent


#: Allowed transitions: target status -> the statuses it may come from.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    # Consent withdrawn while an item waited for the dispatcher: back to its tab.
    # Staff restore a discarded item while its window is open (the store checks the window).
    Status.PENDING: frozenset({Status.APPROVED, Status.DISCARDED}),
    # A transient failure (server unreachable, 4xx) leaves the item sendable.
    Status.APPROVED: frozenset({Status.PENDING, Status.SENDING}),
    # A person's `send` approves and claims a pending item in one step; from unknown
    # or failed only by a person's `resend`.
    Status.SENDING: frozenset({Status.PENDING, Status.APPROVED, Status.UNKNOWN, Status.FAILED}),
    Status.SENT: frozenset({Status.SENDING, Status.UNKNOWN}),
    Status.FAILED: frozenset({Status.SENDING}),
    Status.UNKNOWN: frozenset({Status.SENDING}),
    # Approved items wait for the dispatcher (or a retry): staff may still stop them,
    # and may decide an unknown item is not worth sending again.
    Status.DISCARDED: frozenset({Status.PENDING, Status.APPROVED, Status.UNKNOWN}),
    # An approved item that could not go out before its window ended is not sent late.
    Status.EXPIRED: frozenset({Status.PENDING, Status.APPROVED}),
    # A booking cancelled (or moved, or paid) before its approved email went out.
    Status.WITHDRAWN: frozenset({Status.PENDING, Status.APPROVED}),
}

#: Statuses whose content staff may still edit.
EDITABLE = frozenset({Status.PENDING})


def sources_of(target: Status) -> frozenset[Status]:
    """Return the statuses an item may leave for `target`."""
    return TRANSITIONS.get(target, frozenset())


def check_transition(item_id: int, current: Status, target: Status) -> None:
    """Raise `TransitionError` unless an item may go from `current` to `target`."""
    if current not in sources_of(target):
        allowed = ", ".join(sorted(sources_of(target)))
        rule = f"only {allowed} items can" if allowed else "no item can"
        raise TransitionError(
            f"item {item_id} is {current}, so it cannot become {target} "
            f"({rule}): see 'reminders show {item_id}'"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Rendered:
    """One email's content as rendered from templates (or edited by staff)."""

    subject: str
    text: str
    html: str
    locale: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueItem:
    """One reminder email in the queue, with what is needed to list and send it."""

    id: int
    agency: str
    kind: str
    status: Status
    booking_ref: str
    contact_ref: str
    contact_name: str
    to: str | None
    anchor_on: date
    visible_from: date
    visible_until: date
    subject: str
    text: str
    html: str
    locale: str
    edited: bool
    reason: str | None
    created_at: datetime
    updated_at: datetime
    #: delivery: who approved it, attempts so far, when a retry is due, the last
    #: Message-ID built for it, when the server accepted it, the server's last refusal
    approved_by: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    message_id: str | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    #: the registry's entry for the contact's address (None: no address)
    consent: AddressConsent | None = None
    #: who saved the last edit
    edited_by: str | None = None
    #: the contact refused this kind of email (`kind_choices`); whether that holds the
    #: item depends on its agency (`[agency.required]`): see `service.consent_of`
    kind_refused: bool = False
