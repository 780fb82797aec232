"""Consent: one registry entry per email address, and the rules that change it (pure).

Consent belongs to the normalised address, not to the contact: every contact that
uses an address shares its state. The state is derived from a few facts kept per
address, at a given instant:

- opted out (by whom: the *source*) → `opted_out`;
- confirmed (double opt-in) within `reconfirm_after_days` → `ok`;
- a confirmation email sent after the last confirmation → `confirmation_pending`;
- confirmed, but longer ago than that → `inactive` (must confirm again);
- otherwise → `unconfirmed`.

Every change is asked for by someone (a *source*: `agent` = staff, `contact`, `system`,
`import`); `decide` says whether that source may make it, in one table:

- opt_out: anyone, at any time.
- opt_in: staff lift an opt-out made by staff or by an import; an import lifts only
  an import's opt-out; a contact's or the system's opt-out is lifted only by the
  contact's own confirmation; the contact and the system never "opt in".
- confirm: the contact, through the link (it lifts any opt-out, theirs included); an
  import's `email_confirmed` flag, once, lifting no opt-out; never staff nor the system.
- send_confirmation: staff once per address, never to an opted-out address (staff
  lift an agent's or an import's opt-out first; a contact's or the system's they cannot);
  the contact from the web page, not twice within ten minutes.

An import may lift only an opt-out an import made: a contacts file re-imported every
day must not undo what staff recorded on the phone. Its `email_confirmed` flag counts
once, when the registry knows no confirmation yet, so re-importing the same file does
not keep an address active for ever.

An opt-out keeps its source unless a stronger one opts out again, strongest first:
contact, system, agent, import. So a contact's opt-out is never turned into anyone
else's; staff opting out an address an import opted out makes it staff's (the next
import cannot lift it); an import cannot take over staff's opt-out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email

from .clock import UTC_ZONE, local_time
from .errors import InvalidAddress


class ConsentReason(StrEnum):
    OK = "ok"  #: confirmed recently enough and not opted out: may be sent
    NO_ADDRESS = "no_address"  #: the contact has no email address
    UNCONFIRMED = "unconfirmed"  #: never confirmed (double opt-in not done)
    CONFIRMATION_PENDING = "confirmation_pending"  #: confirmation email sent, not clicked yet
    OPTED_OUT = "opted_out"  #: the address asked not to be written to
    INACTIVE = "inactive"  #: no confirmed activity for too long: must confirm again
    KIND_REFUSED = "kind_refused"  #: the contact refused this kind of email (only this kind)


class Source(StrEnum):
    """Who asks for a change (and, for an opt-out, whose it is)."""

    AGENT = "agent"  #: staff recorded it (phone call, paper form, ...)
    CONTACT = "contact"  #: the contact, through a link or a page
    SYSTEM = "system"  #: a hard bounce or a complaint
    IMPORT = "import"  #: a CSV import of contacts


class Action(StrEnum):
    OPT_OUT = "opt_out"  #: do not write to this address
    OPT_IN = "opt_in"  #: lift an opt-out
    CONFIRM = "confirm"  #: the double opt-in is done (the contact clicked the link)
    SEND_CONFIRMATION = "send_confirmation"  #: a confirmation email goes out
    REFUSE_KIND = "refuse_kind"  #: no more emails of one kind (the event's `kind`)
    ACCEPT_KIND = "accept_kind"  #: emails of that kind again


#: Actions about one kind of email: `decide_kind` decides them, not `decide`.
KIND_ACTIONS = frozenset({Action.REFUSE_KIND, Action.ACCEPT_KIND})
#: Sources whose opt-out only the contact's own confirmation lifts.
STRONG_SOURCES = frozenset({Source.CONTACT, Source.SYSTEM})
#: A contact may ask for a new confirmation email at most this often.
CONTACT_RESEND_INTERVAL = timedelta(minutes=10)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressConsent:
    """The facts the registry keeps about one address."""

    address: str
    opted_out_by: Source | None = None
    opted_out_at: datetime | None = None
    #: the last confirmed activity (the contact's click, or a confirmed import)
    confirmed_at: datetime | None = None
    #: the last confirmation email sent, by anyone
    confirmation_sent_at: datetime | None = None
    #: when staff sent their one confirmation email
    staff_confirmation_sent_at: datetime | None = None


def state_of(
    record: AddressConsent | None,
    now: datetime,
    reconfirm_after: timedelta,
    *,
    kind_refused: bool = False,
) -> ConsentReason:
    """Tell whether the address may be written to at `now` (`OK`) or why not.

    `kind_refused`: the contact refused the kind of the email in question (and its
    agency does not mark the kind required): it is held whatever else holds, but an
    opt-out from everything says more, so it comes first.
    """
    if record is None:
        return ConsentReason.NO_ADDRESS
    if record.opted_out_by is not None:
        return ConsentReason.OPTED_OUT
    if kind_refused:
        return ConsentReason.KIND_REFUSED
    confirmed = record.confirmed_at
    if confirmed is not None and confirmed >= now - reconfirm_after:
        return ConsentReason.OK
    sent = record.confirmation_sent_at
    if sent is not None and (confirmed is None or sent > confirmed):
        return ConsentReason.CONFIRMATION_PENDING
    if confirmed is not None:
        return ConsentReason.INACTIVE
    return ConsentReason.UNCONFIRMED


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentEvent:
    """One line of an address's history: append-only, never changed."""

    address: str
    action: Action
    source: Source
    #: how it came: phone, email link, web form, one-click, bounce, smtp, csv import, ...
    method: str
    #: who did it: a staff member's name, "contact", "dispatcher", ...
    actor: str
    #: when it happened (staff may give a past instant) and when it was written down
    occurred_at: datetime
    recorded_at: datetime
    detail: str | None = None
    #: the kind of email a `refuse_kind` / `accept_kind` event is about
    kind: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What a request does: the new record, or why it is refused."""

    allowed: bool
    record: AddressConsent
    #: a request that is allowed but changes nothing (already opted out, ...)
    changes: bool = True
    #: why it is refused, and what to do instead (None when allowed)
    refusal: str | None = None


def decide(
    record: AddressConsent,
    action: Action,
    source: Source,
    at: datetime,
    *,
    zone: ZoneInfo = UTC_ZONE,
) -> Decision:
    """Apply the rules of the module's table to one request made by `source` at `at`.

    A refusal writes its times in `zone` (the zone of the agency staff work in).
    """
    match action:
        case Action.OPT_OUT:
            return _opt_out(record, source, at)
        case Action.OPT_IN:
            return _opt_in(record, source)
        case Action.CONFIRM:
            return _confirm(record, source, at)
        case Action.SEND_CONFIRMATION:
            return _send_confirmation(record, source, at, zone)
        case Action.REFUSE_KIND | Action.ACCEPT_KIND:
            raise ValueError(f"{action} is about one kind of email: use decide_kind")
    raise ValueError(f"unknown action {action!r}")  # pragma: no cover


#: The longest `method` (how a change reached us: phone, paper form, crm...): the
#: history's column holds 40 characters.
METHOD_MAX_CHARS = 40
#: Unicode categories a method may not hold: controls, invisible format characters,
#: line and paragraph separators (they break the report's lines and the CSV).
_REFUSED_IN_METHOD = frozenset({"Cc", "Cf", "Zl", "Zp"})


def method_problem(method: str) -> str | None:
    """Say what is wrong with a change's `method` (staff's or a client's), or None."""
    bad = next((c for c in method if unicodedata.category(c) in _REFUSED_IN_METHOD), None)
    if bad is not None:
        return (
            f"method contains the control or invisible character U+{ord(bad):04X}: "
            "write plain words"
        )
    written = method.strip()
    if not written:
        return "method is empty: say how it reached you (e.g. phone)"
    if len(written) > METHOD_MAX_CHARS:
        return f"method is {len(written)} characters long: at most {METHOD_MAX_CHARS}"
    return None


def import_actions(
    *, confirmed: bool, opt_out: bool, before: tuple[bool | None, bool | None] | None
) -> tuple[Action, ...]:
    """Return what a contacts file's flags ask of the registry (source `import`).

    `before` is what the previous import said of this contact at this address
    (None: never imported at it). A flag already said is not asked again, so
    re-importing an unchanged file changes nothing: it never undoes what staff
    or the contact recorded since. `email_confirmed` counts once; a cleared
    `email_opt_out` asks to lift an opt-out, which `decide` grants only when an
    import made it.
    """
    was_confirmed, was_opted_out = before if before is not None else (None, None)
    actions: list[Action] = []
    if confirmed and was_confirmed is not True:
        actions.append(Action.CONFIRM)
    if opt_out and was_opted_out is not True:
        actions.append(Action.OPT_OUT)
    if not opt_out and was_opted_out is not False:
        actions.append(Action.OPT_IN)
    return tuple(actions)


#: Who may choose, for an address, which kinds of email it receives.
KIND_CHOOSERS = frozenset({Source.CONTACT, Source.AGENT})


@dataclass(frozen=True, slots=True, kw_only=True)
class KindDecision:
    """What a choice about one kind of email does: a change, nothing, or a refusal."""

    allowed: bool
    #: the choice differs from what is recorded (None recorded: receives)
    changes: bool = False
    #: why it is refused, and what to do instead (None when allowed)
    refusal: str | None = None


def decide_kind(
    address: str,
    kind: str,
    receive: bool,
    source: Source,
    *,
    current: bool | None,
    offered: frozenset[str],
    required: frozenset[str],
) -> KindDecision:
    """Decide a choice to receive (or not) the emails of one `kind` at `address`.

    `current` is the choice recorded (None: none, the address receives every kind);
    `offered` the kinds the address's agencies send; `required` those of them an
    agency marks as not refusable (`[agency.required]`). The contact chooses (staff
    may record the contact's choice); a bounce or an import never does. Refusing a
    required kind is refused; accepting it again is always allowed (it undoes a
    refusal recorded before the agency marked the kind).
    """
    if source not in KIND_CHOOSERS:
        return KindDecision(
            allowed=False,
            refusal=f"{source} does not choose kinds of email: the contact does (or staff "
            "on the contact's behalf)",
        )
    if kind not in offered and current is None:
        known = ", ".join(sorted(offered)) or "none"
        return KindDecision(
            allowed=False,
            refusal=f"unknown kind {kind!r} for {address}: the kinds its agencies send are {known}",
        )
    if not receive and kind in required:
        return KindDecision(
            allowed=False,
            refusal=f"the emails of kind {kind!r} cannot be refused: the agency sends them "
            f"to every booking ({address} may still unsubscribe from every email)",
        )
    was_receiving = current is None or current
    return KindDecision(allowed=True, changes=receive != was_receiving)


def _refused(record: AddressConsent, why: str) -> Decision:
    return Decision(allowed=False, record=record, changes=False, refusal=why)


def _opt_out(record: AddressConsent, source: Source, at: datetime) -> Decision:
    current = record.opted_out_by
    if current is not None and _strength(source) <= _strength(current):
        # Already opted out, by a source at least as strong: it stays theirs.
        return Decision(allowed=True, record=record, changes=False)
    return Decision(allowed=True, record=replace(record, opted_out_by=source, opted_out_at=at))


#: How hard an opt-out is to lift, by its source: a stronger one takes over.
_STRENGTH = {Source.IMPORT: 1, Source.AGENT: 2, Source.SYSTEM: 3, Source.CONTACT: 4}


def _strength(source: Source) -> int:
    return _STRENGTH[source]


def _opt_in(record: AddressConsent, source: Source) -> Decision:
    current = record.opted_out_by
    if source not in (Source.AGENT, Source.IMPORT):
        how = (
            "the contact opts back in by confirming through the link of a confirmation email"
            if source is Source.CONTACT
            else "a bounce or complaint never opts an address in"
        )
        return _refused(record, f"{source} cannot opt an address in: {how}")
    if current is None:
        return Decision(allowed=True, record=record, changes=False)
    if source is Source.IMPORT and current is Source.AGENT:
        return _refused(
            record,
            f"{record.address} was opted out by staff: an import does not lift it "
            "('reminders consent opt-in' does)",
        )
    if current in STRONG_SOURCES:
        who = (
            "the contact unsubscribed"
            if current is Source.CONTACT
            else ("the mail system reported it (bounce or complaint)")
        )
        return _refused(
            record,
            f"{record.address} was opted out by {current} ({who}): only the contact's own "
            "confirmation lifts it (the contact can ask for a confirmation email from the "
            "unsubscribe page)",
        )
    return Decision(allowed=True, record=replace(record, opted_out_by=None, opted_out_at=None))


def _confirm(record: AddressConsent, source: Source, at: datetime) -> Decision:
    if source is Source.CONTACT:
        # The contact's own confirmation: it also lifts any opt-out, theirs included.
        return Decision(
            allowed=True,
            record=replace(record, confirmed_at=at, opted_out_by=None, opted_out_at=None),
        )
    if source is Source.IMPORT:
        if record.confirmed_at is not None:
            return Decision(allowed=True, record=record, changes=False)
        return Decision(allowed=True, record=replace(record, confirmed_at=at))
    return _refused(
        record,
        f"{source} cannot confirm an address: the contact confirms through the link of a "
        "confirmation email ('reminders consent send-confirmation')",
    )


def _send_confirmation(
    record: AddressConsent, source: Source, at: datetime, zone: ZoneInfo
) -> Decision:
    if source is Source.AGENT:
        if record.staff_confirmation_sent_at is not None:
            return _refused(
                record,
                f"staff already sent the confirmation email to {record.address} on "
                f"{local_time(record.staff_confirmation_sent_at, zone)}: it is sent once per "
                "address; the contact can ask for a new one from the page of its link",
            )
        if record.opted_out_by is Source.CONTACT:
            return _refused(
                record,
                f"{record.address} unsubscribed: no email is sent to it, a confirmation "
                "included; the contact can ask for one from the unsubscribe page",
            )
        if record.opted_out_by is Source.SYSTEM:
            return _refused(
                record,
                f"{record.address} was opted out by system (bounce or complaint): no email "
                "is sent to it, a confirmation included; check the address with the contact",
            )
        if record.opted_out_by is not None:
            return _refused(
                record,
                f"{record.address} is opted out by {record.opted_out_by}: lift the opt-out "
                f"first ('reminders consent opt-in {record.address} --method M'), then send "
                "the confirmation",
            )
        return Decision(
            allowed=True,
            record=replace(record, confirmation_sent_at=at, staff_confirmation_sent_at=at),
        )
    if source is Source.CONTACT:
        last = record.confirmation_sent_at
        if last is not None and at - last < CONTACT_RESEND_INTERVAL:
            return _refused(
                record,
                f"a confirmation email was sent to {record.address} a few minutes ago: look "
                "for it (and in the junk folder) before asking again",
            )
        return Decision(allowed=True, record=replace(record, confirmation_sent_at=at))
    return _refused(record, f"{source} does not send confirmation emails")


#: A plain ASCII address of the usual shape: valid without asking email_validator.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64})*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
#: Top-level domains email_validator refuses (special use, RFC 6761 and others).
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def is_plain_address(address: str) -> bool:
    """Tell whether `address` is surely valid without the full validation.

    Most addresses are plain ASCII of the usual shape: they skip email_validator,
    a tenth of a millisecond each (an import of a million contacts, a batch of
    emails); anything else gets the full validation.
    """
    if len(address) > 254 or not _PLAIN_ADDRESS.fullmatch(address):
        return False
    local, _, domain = address.rpartition("@")
    return len(local) <= 64 and domain.rpartition(".")[2].lower() not in _SPECIAL_USE


def normalise_address(address: str) -> str:
    """Return the form an address is known by: how it is compared, signed and stored.

    The local part is kept as written (Unicode NFC: `+tags` and dots are the
    owner's business); the domain is lower-cased and in its ASCII (IDNA) form.
    Two spellings that differ only in letter case are one entry (`address_key`).
    """
    if is_plain_address(address):
        local, _, domain = address.rpartition("@")
        return f"{local}@{domain.lower()}"
    try:
        valid = validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise InvalidAddress(f"{address!r} is not a valid email address: {error}") from None
    return f"{valid.local_part}@{valid.ascii_domain}"


def address_key(address: str) -> str:
    """Return the key an address is looked up by: normalised, then lower-cased.

    Lower case, not Unicode case folding: `straße@` and `strasse@` are two mailboxes.
    """
    return normalise_address(address).lower()


def same_address(a: str, b: str) -> bool:
    """Tell whether two addresses are the same registry entry (case-insensitive)."""
    return a.lower() == b.lower()
