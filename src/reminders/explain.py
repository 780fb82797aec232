"""Why did (or didn't) a guest get an email: one booking, every kind of its agency.

The pure part (`explain_kind`) applies the planner's own rules (`planning.window`,
`Eligibility.refusal`) to one booking; the service part reads it from the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .bookings import Booking
from .clock import local_time
from .config import Settings
from .consent import ConsentReason, state_of
from .errors import NotFoundError
from .kinds import Kind
from .planning import DateRange, window
from .queue import QueueItem, Status
from .service import agency_today, reconfirm_after
from .store import Database


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """What the planner makes of one booking for one kind, and what happens next."""

    booking_ref: str
    agency: str
    kind: str
    tab: str
    anchor_on: date | None
    visible_from: date | None
    visible_until: date | None
    #: the booking qualifies for the kind (status, balance) and has its anchor date
    eligible: bool
    #: why it does not qualify (None when it does)
    reason: str | None
    #: the item for the booking's current anchor date, else the latest of the kind
    item: int | None
    status: Status | None
    consent: ConsentReason
    #: what happens next, in words
    next: str


def explain_kind(
    kind: Kind,
    booking: Booking,
    items: Sequence[QueueItem],
    consent: ConsentReason,
    today: date,
    *,
    tab: str,
    zone: ZoneInfo,
) -> Explanation:
    """Explain one kind for one booking on the agency's local `today`.

    `items` are the booking's items of this kind (any status, oldest first).
    """
    anchor_on = booking.anchor(kind.anchor)
    refusal = (
        f"the booking has no {kind.anchor} date"
        if anchor_on is None
        else kind.eligibility.refusal(booking)
    )
    visible = window(kind, anchor_on) if anchor_on is not None else None
    live = [i for i in items if i.anchor_on == anchor_on and i.status is not Status.WITHDRAWN]
    item = live[-1] if live else (items[-1] if items else None)
    if item is not None and (item.anchor_on == anchor_on or item.status is Status.WITHDRAWN):
        upcoming = _item_next(item, consent, today, zone)
        if item.status is Status.WITHDRAWN:
            upcoming = f"{upcoming}; {_plan_next(refusal, visible, today)}"
    else:
        upcoming = _plan_next(refusal, visible, today)
    return Explanation(
        booking_ref=booking.ref,
        agency=booking.agency,
        kind=kind.name,
        tab=tab,
        anchor_on=anchor_on,
        visible_from=visible.first if visible else None,
        visible_until=visible.last if visible else None,
        eligible=refusal is None,
        reason=refusal,
        item=item.id if item else None,
        status=item.status if item else None,
        consent=consent,
        next=upcoming,
    )


def _plan_next(refusal: str | None, visible: DateRange | None, today: date) -> str:
    """What the planner will do for a booking that has no live item."""
    if refusal is not None or visible is None:
        return f"nothing is queued: {refusal}"
    first, last = visible.first, visible.last
    if today < first:
        return f"the planning pass of {first.isoformat()} queues it (listed until {last})"
    if today <= last:
        return "the next planning pass queues it (its window is open)"
    return f"nothing: its window closed on {last.isoformat()} before an email was queued"


def _item_next(item: QueueItem, consent: ConsentReason, today: date, zone: ZoneInfo) -> str:
    """What happens next to an existing item."""
    ident = f"item {item.id}"
    until = item.visible_until.isoformat()
    match item.status:
        case Status.PENDING:
            if consent is ConsentReason.OK:
                return f"{ident} waits in its tab until {until} for staff to send it"
            if consent is ConsentReason.KIND_REFUSED:
                return (
                    f"{ident} waits in its tab until {until}, but cannot be sent: the contact "
                    "refused this kind of email (kind_refused)"
                )
            return (
                f"{ident} waits in its tab until {until}, but cannot be sent while the "
                f"address is {consent}"
            )
        case Status.APPROVED:
            return f"{ident} is approved: the daemon sends it"
        case Status.SENDING:
            return f"{ident} is being sent"
        case Status.SENT:
            return f"{ident} was sent on {_when(item.sent_at, zone)}: nothing more for this kind"
        case Status.FAILED:
            return f"{ident} failed ({item.last_error or 'refused'}): 'reminders resend {item.id}'"
        case Status.UNKNOWN:
            return (
                f"{ident}: the process sending it stopped; check whether it arrived, then "
                f"'reminders resend {item.id}' or 'reminders mark-sent {item.id}'"
            )
        case Status.DISCARDED:
            if today <= item.visible_until:
                return f"{ident} was discarded: 'reminders restore {item.id}' until {until}"
            return f"{ident} was discarded and its window closed: nothing more"
        case Status.EXPIRED:
            return f"{ident} expired unsent on {until}: nothing more for this kind"
        case Status.WITHDRAWN:
            return f"{ident} was withdrawn ({item.reason})"
        case Status.MISSED:
            return f"{ident}: its window went by while nothing planned; it is never sent"
    return f"{ident} is {item.status}"


def _when(instant: datetime | None, zone: ZoneInfo) -> str:
    return local_time(instant, zone) if instant else "an unknown date"


def explain(database: Database, settings: Settings, booking_ref: str) -> list[Explanation]:
    """Explain every kind of the booking's agency for booking `booking_ref`. Read-only."""
    with database.transaction(dry_run=True) as store:
        found = store.booking_of(booking_ref)
        if found is None:
            raise NotFoundError(
                f"no booking {booking_ref!r}: check the ref, or import it with "
                "'reminders import bookings FILE.csv'"
            )
        candidate, address = found
        items = store.booking_items(candidate.booking_id)
        refused = store.refused_kinds(address.address) if address is not None else frozenset()
    booking = candidate.booking
    agency = settings.agency_by_code(booking.agency)
    today = agency_today(agency, database.clock)
    now = database.clock.now()

    def consent_to(kind: str) -> ConsentReason:
        if not candidate.contact.email or address is None:
            return ConsentReason.NO_ADDRESS
        kind_refused = kind in refused and not agency.required.get(kind, False)
        return state_of(address, now, reconfirm_after(settings), kind_refused=kind_refused)

    return [
        explain_kind(
            kind,
            booking,
            [i for i in items if i.kind == kind.name],
            consent_to(kind.name),
            today,
            tab=kind.tab_label(agency.language),
            zone=agency.zone,
        )
        for kind in agency.enabled_kinds()
    ]
