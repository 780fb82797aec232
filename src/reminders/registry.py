"""The consent registry's service: record changes by the rules, confirmation emails, reports.

Every change goes through `change`, which applies `consent.decide` to the entry under
a row lock and appends the event to the history when something changed. Staff (CLI),
contacts (web pages), the dispatcher and the bounce reader (system) and the CSV import
all come through here.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .bookings import Contact
from .clock import UTC_ZONE, local_time
from .config import AgencySettings, Settings
from .consent import (
    Action,
    AddressConsent,
    ConsentEvent,
    ConsentReason,
    Decision,
    Source,
    address_key,
    decide,
    import_actions,
    method_problem,
    normalise_address,
    state_of,
)
from .dkim import DkimSigner, signer_for
from .errors import InvalidAddress, NotFoundError, ReminderError, UnknownAddress, UsageError
from .mailer import Mailer
from .messages import SETTINGS_URL_PLACEHOLDER, Envelope, agency_email, mailbox, parse_mailbox
from .store import Database, ImportedContact, Store, UpsertCounts
from .templates import Renderer, language_of
from .tokens import ExpiredLink, InvalidLink, LinkSigner, Purpose

#: The template folder of the confirmation email.
CONFIRMATION_TEMPLATE = "confirmation"


class ConsentRefused(ReminderError):
    """The consent rules refuse this change: see 'reminders consent status ADDRESS'."""


class UsedLink(InvalidLink):
    """This confirmation link was already used."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressStatus:
    """Where an address stands, and why."""

    address: str
    consent: ConsentReason
    record: AddressConsent
    history: list[ConsentEvent]
    #: (name, agency) of the contacts using it
    contacts: list[tuple[str, str]]
    #: the zone its times are shown and read in: that of the agency that last wrote to it
    zone: ZoneInfo
    #: the contact's choices per kind of email: {kind: receive} (none: every kind)
    kinds: dict[str, bool] = field(default_factory=dict)


def change(
    store: Store,
    address: str,
    action: Action,
    source: Source,
    *,
    method: str,
    actor: str,
    now: datetime,
    occurred_at: datetime | None = None,
    detail: str | None = None,
) -> Decision:
    """Apply one request to the address's entry; raise `ConsentRefused` if the rules say no.

    The entry is created when unknown (staff may record an opt-out before the
    contact is imported). `occurred_at` is when it happened (default `now`).
    """
    normal = normalise_address(address)
    entry = store.lock_consent_entry(normal)
    if entry is None:
        store.address_ids([normal])
        entry = store.lock_consent_entry(normal)
        assert entry is not None
    entry_id, record = entry
    when = occurred_at or now
    decision = decide(record, action, source, when)
    if not decision.allowed:
        raise ConsentRefused(decision.refusal)
    if decision.changes:
        event = ConsentEvent(
            address=record.address,
            action=action,
            source=source,
            method=method,
            actor=actor,
            occurred_at=when,
            recorded_at=now,
            detail=detail,
        )
        store.record_consent(entry_id, decision.record, event)
    return decision


def status(database: Database, settings: Settings, address: str) -> AddressStatus:
    """Return the state, source, history and contacts of `address` (any letter case)."""
    with database.transaction() as store:
        return status_in(store, settings, address, database.clock.now())


def status_in(store: Store, settings: Settings, address: str, now: datetime) -> AddressStatus:
    """As `status`, within the caller's transaction."""
    normal = normalise_address(address)
    entry = store.consent_entry(normal)
    if entry is None:
        raise UnknownAddress(normal)
    entry_id, record = entry
    history = store.history(entry_id)
    contacts = [(name, agency) for _locale, agency, name in store.contact_hints(entry_id)]
    writers = store.writers([address_key(normal)]).get(address_key(normal), [])
    kinds = store.kind_choices(entry_id)
    reconfirm = timedelta(days=settings.consent.reconfirm_after_days)
    return AddressStatus(
        address=record.address,
        consent=state_of(record, now, reconfirm),
        record=record,
        history=history,
        contacts=contacts,
        zone=writer_zone(settings, writers),
        kinds=kinds,
    )


def writer_zone(settings: Settings, writers: Sequence[str]) -> ZoneInfo:
    """Return the zone of the first of `writers` (agency codes) still configured.

    An address shared by several agencies is shown in the zone of the agency that
    last wrote to it (`Store.writers` puts it first); an address no configured
    agency wrote to, in the first agency's zone.
    """
    for code in writers:
        if (agency := settings.find_agency(code)) is not None:
            return agency.zone
    return settings.agency[0].zone if settings.agency else UTC_ZONE


def zone_of(database: Database, settings: Settings, address: str) -> ZoneInfo:
    """Return the zone staff give times in for `address` (see `writer_zone`)."""
    try:
        key = address_key(address)
    except InvalidAddress:  # the request itself says so, once it is made
        return writer_zone(settings, [])
    with database.transaction() as store:
        writers = store.writers([key]).get(key, [])
    return writer_zone(settings, writers)


def record_by_staff(
    database: Database,
    address: str,
    action: Action,
    *,
    method: str,
    actor: str,
    occurred_at: datetime | None = None,
    zone: ZoneInfo = UTC_ZONE,
) -> Decision:
    """Record an opt-out or opt-in staff made (possibly in the past, as on a paper form).

    A time in the future is refused (written in `zone`, the one staff typed it in).
    """
    problem = method_problem(method)
    if problem is not None:
        raise UsageError(f"--method {method!r}: {problem}")
    now = database.clock.now()
    if occurred_at is not None and occurred_at > now:
        raise UsageError(
            f"--at {local_time(occurred_at, zone)} is in the future (it is "
            f"{local_time(now, zone)}): give when it happened"
        )
    with database.transaction() as store:
        return change(
            store,
            address,
            action,
            Source.AGENT,
            method=method,
            actor=actor,
            now=now,
            occurred_at=occurred_at,
        )


def record_bounce(
    database: Database,
    address: str,
    *,
    complaint: bool,
    diagnostic: str,
    arrived_at: datetime | None,
) -> Decision:
    """Opt out an address a bounce or complaint names (source `system`).

    Raises `InvalidAddress` when the report names no usable address (e.g.
    `x@localhost`): the caller lists it and reads on.
    """
    now = database.clock.now()
    with database.transaction() as store:
        return change(
            store,
            address,
            Action.OPT_OUT,
            Source.SYSTEM,
            method="complaint" if complaint else "bounce",
            actor="bounces import",
            now=now,
            occurred_at=min(arrived_at, now) if arrived_at else None,
            detail=diagnostic,
        )


def import_contacts(
    store: Store, contacts: Sequence[Contact], now: datetime
) -> tuple[UpsertCounts, int]:
    """Upsert imported contacts by ref and record their consent flags; return both counts.

    One chunk of `reminders import contacts`: the registry first, so that a new
    address's entry is written with its facts at once and the contacts point at it.
    """
    before = store.imported_contacts(c.ref for c in contacts)
    flags = record_import_flags(store, contacts, now, before)
    counts = store.upsert_contacts(contacts, known=before.keys(), entry_ids=flags.entry_ids)
    return counts, flags.changes


def apply_import_flags(
    store: Store,
    contacts: Sequence[Contact],
    now: datetime,
    before: Mapping[str, ImportedContact] | None = None,
) -> int:
    """Record the consent flags of imported contacts as `import` events; return how many.

    As `record_import_flags`, for callers that need only the count.
    """
    return record_import_flags(store, contacts, now, before).changes


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedFlags:
    """What `record_import_flags` did."""

    #: the registry entry of each contact's address, by contact ref (when known)
    entry_ids: dict[str, int]
    #: how many `import` events were recorded
    changes: int


def record_import_flags(
    store: Store,
    contacts: Sequence[Contact],
    now: datetime,
    before: Mapping[str, ImportedContact] | None = None,
) -> ImportedFlags:
    """Record the consent flags of imported contacts as `import` events.

    `before` is what the previous import said of each contact, by ref (see
    `consent.import_actions`: an unchanged flag asks nothing). What the rules refuse
    (lifting staff's or the contact's own opt-out) is left as it is. An address the
    registry does not know yet gets its entry here, written with the facts its flags
    give in the same statement. The entries are read and written in a few
    statements, whatever the number of contacts. Return the entry of each contact's
    address (those whose flags asked nothing: when the previous import stored it).
    """
    known = before or {}
    asked: dict[str, list[tuple[Contact, tuple[Action, ...]]]] = {}
    spelling: dict[str, str] = {}
    refs_of: dict[str, list[str]] = {}
    entry_ids: dict[str, int] = {}
    for contact in contacts:
        if not contact.email:
            continue
        normal = normalise_address(contact.email)
        key = normal.lower()  # address_key, without normalising twice
        spelling.setdefault(key, normal)  # an entry keeps the first spelling seen
        previous = known.get(contact.ref)
        same = (
            previous is not None
            and previous.email is not None
            and _key_or_none(previous.email) == key
        )
        actions = import_actions(
            confirmed=contact.email_confirmed,
            opt_out=contact.email_opt_out,
            before=(previous.confirmed, previous.opt_out) if same and previous else None,
        )
        if actions:
            asked.setdefault(key, []).append((contact, actions))
            refs_of.setdefault(key, []).append(contact.ref)
        elif previous is not None and previous.entry_id is not None:
            entry_ids[contact.ref] = previous.entry_id  # the same address as then
    if not asked:
        return ImportedFlags(entry_ids=entry_ids, changes=0)
    entries = store.lock_consent_entries(asked)
    events: list[tuple[int, ConsentEvent]] = []
    # A new address starts blank: what its contacts' flags make of it depends on the
    # flags alone, decided once per combination (a file has a handful) and reused.
    on_blank: dict[tuple[tuple[Action, ...], ...], tuple[AddressConsent, list[Step]]] = {}
    unknown: dict[str, tuple[AddressConsent, list[ConsentEvent]]] = {}
    for key, items in asked.items():
        if key in entries:
            continue
        flags = tuple(actions for _, actions in items)
        if flags not in on_blank:
            on_blank[flags] = _import_steps(AddressConsent(address=""), items, now)
        facts, steps = on_blank[flags]
        address = spelling[key]
        unknown[key] = (
            replace(facts, address=address),
            [_import_event(address, items[i][0], action, now) for i, action in steps],
        )
    created = store.add_consent_entries({key: record for key, (record, _) in unknown.items()})
    for key, (_, key_events) in unknown.items():
        if key in created:
            entry_ids.update(dict.fromkeys(refs_of[key], created[key]))
            events.extend((created[key], event) for event in key_events)
    raced = [key for key in unknown if key not in created]  # created by another transaction
    if raced:
        entries.update(store.lock_consent_entries(raced))
    changed: dict[int, AddressConsent] = {}
    for key, items in asked.items():
        if key not in entries:
            continue
        entry_id, record = entries[key]
        entry_ids.update(dict.fromkeys(refs_of[key], entry_id))
        record, key_events = _import_flags(record, items, now)
        if key_events:
            changed[entry_id] = record
            events.extend((entry_id, event) for event in key_events)
    store.update_consents(changed)
    store.append_consent_events(events)
    return ImportedFlags(entry_ids=entry_ids, changes=len(events))


#: One change an import makes: (position of the contact among an address's, action).
Step = tuple[int, Action]


def _import_flags(
    record: AddressConsent, asked: Sequence[tuple[Contact, tuple[Action, ...]]], now: datetime
) -> tuple[AddressConsent, list[ConsentEvent]]:
    """Apply what the contacts of one address asked, in file order; return the facts and events."""
    record, steps = _import_steps(record, asked, now)
    return record, [_import_event(record.address, asked[i][0], a, now) for i, a in steps]


def _import_steps(
    record: AddressConsent, asked: Sequence[tuple[Contact, tuple[Action, ...]]], now: datetime
) -> tuple[AddressConsent, list[Step]]:
    """Apply what the contacts of one address asked, in file order; return the facts and changes."""
    steps: list[Step] = []
    for position, (_contact, actions) in enumerate(asked):
        for action in actions:
            decision = decide(record, action, Source.IMPORT, now)
            if decision.allowed and decision.changes:
                record = decision.record
                steps.append((position, action))
    return record, steps


def _import_event(address: str, contact: Contact, action: Action, now: datetime) -> ConsentEvent:
    return ConsentEvent(
        address=address,
        action=action,
        source=Source.IMPORT,
        method="csv import",
        actor="import",
        occurred_at=now,
        recorded_at=now,
        detail=f"contact {contact.ref}",
    )


def _key_or_none(address: str) -> str | None:
    try:
        return address_key(address)
    except InvalidAddress:
        return None


def report(
    database: Database,
    settings: Settings,
    *,
    source: Source | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    prefix: str | None = None,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """Return the opted-out addresses (SPEC §5 fields), filtered, by address.

    `timezone` names the zone each address's times are shown in (`writer_zone`).
    With `kind`: the addresses that refused that kind of email instead (the same
    fields, `occurred_at` when they refused it), whose other emails still go.
    """
    with database.transaction() as store:
        if kind is not None:
            refusals = store.kind_refusals(
                kind=kind, source=source, since=since, until=until, prefix=prefix
            )
            writers = store.writers(address_key(r.address) for r in refusals)
            return [
                {
                    "address": refusal.address,
                    "source": refusal.source,
                    "method": refusal.method,
                    "occurred_at": refusal.chosen_at,
                    "actor": refusal.actor,
                    "detail": None,
                    "timezone": writer_zone(
                        settings, writers.get(address_key(refusal.address), [])
                    ).key,
                    "kind": refusal.kind,
                }
                for refusal in refusals
            ]
        return report_in(store, settings, source=source, since=since, until=until, prefix=prefix)


def report_in(
    store: Store,
    settings: Settings,
    *,
    source: Source | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    prefix: str | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """As `report`, within the caller's transaction; a page of it with `after` and `limit`.

    `after` is the key (`consent.address_key`) of the last address of the previous
    page: the page starts after it (keyset pagination, stable while entries change).
    `timezone` names the zone each address's times are shown in (`writer_zone`).
    """
    rows = store.opted_out(
        source=source, since=since, until=until, prefix=prefix, after=after, limit=limit
    )
    writers = store.writers(address_key(record.address) for record, _ in rows)
    return [
        {
            "address": record.address,
            "source": record.opted_out_by,
            "method": event.method if event else None,
            "occurred_at": record.opted_out_at,
            "actor": event.actor if event else None,
            "detail": event.detail if event else None,
            "timezone": writer_zone(settings, writers.get(address_key(record.address), [])).key,
            # An opt-out is from every kind of email.
            "kind": None,
        }
        for record, event in rows
    ]


# -- links ------------------------------------------------------------------------------


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


def confirmation_valid(settings: Settings) -> timedelta:
    return timedelta(days=settings.consent.confirmation_valid_days)


def unsubscribe_valid(settings: Settings) -> timedelta:
    return timedelta(days=settings.web.unsubscribe_valid_days)


def address_of_link(
    settings: Settings,
    signer: LinkSigner,
    purpose: Purpose,
    token: str,
    *,
    expired_ok: bool = False,
) -> str:
    """Return the address a link names, or raise `InvalidLink` / `ExpiredLink`.

    With `expired_ok`, an authentic but expired link still names its address: a
    contact may ask for a new confirmation email from an old link.
    """
    max_age: timedelta | None = (
        confirmation_valid(settings) if purpose is Purpose.CONFIRM else unsubscribe_valid(settings)
    )
    payload = signer.payload(purpose, token, None if expired_ok else max_age)
    address = payload.get("a")
    if not isinstance(address, str):
        raise InvalidLink()
    return address


def unsubscribe_url(settings: Settings, signer: LinkSigner, address: str) -> str:
    """Return the unsubscribe link of `address` (an opaque token), for its emails."""
    return f"{settings.web.base_url}/unsubscribe/{signer.sign(Purpose.UNSUBSCRIBE, address)}"


def settings_url(settings: Settings, signer: LinkSigner, address: str) -> str:
    """Return the link to the email settings page of `address` (an opaque token)."""
    return f"{settings.web.base_url}/settings/{signer.sign(Purpose.SETTINGS, address)}"


def confirm(
    database: Database, settings: Settings, signer: LinkSigner, token: str
) -> AddressStatus:
    """Confirm the address of a confirmation link (the contact clicked its button).

    The link is authentic and in date; its secret part is checked against the stored
    hash and used once: one conditional UPDATE takes the use (of links posted at once,
    one confirms, the others hear `UsedLink`); only when it took nothing is the
    link read again to say why.
    """
    payload = signer.payload(Purpose.CONFIRM, token, confirmation_valid(settings))
    address, nonce = payload.get("a"), payload.get("n")
    if not isinstance(address, str) or not isinstance(nonce, str):
        raise InvalidLink()
    now = database.clock.now()
    with database.transaction() as store:
        entry = store.consent_entry(address)
        if entry is None:
            raise InvalidLink()
        if not store.use_confirmation(_nonce_hash(nonce), entry[0], now):
            known = store.confirmation(_nonce_hash(nonce))
            if known is None or known["entry_id"] != entry[0]:
                raise InvalidLink()
            if known["used_at"] is not None:
                raise UsedLink()
            raise ExpiredLink()
        change(
            store,
            address,
            Action.CONFIRM,
            Source.CONTACT,
            method="email link",
            actor="contact",
            now=now,
        )
    return status(database, settings, address)


def unsubscribe(
    database: Database, settings: Settings, signer: LinkSigner, token: str, *, method: str
) -> str:
    """Opt out the address of an unsubscribe link; return it."""
    address = address_of_link(settings, signer, Purpose.UNSUBSCRIBE, token)
    now = database.clock.now()
    with database.transaction() as store:
        change(
            store,
            address,
            Action.OPT_OUT,
            Source.CONTACT,
            method=method,
            actor="contact",
            now=now,
        )
    return address


# -- the confirmation email ---------------------------------------------------------------


def send_confirmation(
    database: Database,
    settings: Settings,
    mailer: Mailer,
    address: str,
    *,
    by: Source,
    actor: str,
    method: str,
) -> str:
    """Send the confirmation email of `address` (if the rules allow); return the address.

    Reserve, act, undo: one conditional UPDATE records that a confirmation email goes
    out, if the facts the rules decided on still hold, and the link's hash is kept in
    the same transaction, so of two requests at once one sends and the other is
    refused (`ConsentRefused`) without sending. Then the email is sent, and the event
    appended to the history. If it cannot be built or sent, the reservation is undone
    (while nothing else changed the entry) and the link forgotten: nothing recorded.
    """
    signer = LinkSigner(settings.link_secret(), database.clock)
    dkim = signer_for(settings)
    normal = normalise_address(address)
    now = database.clock.now()
    nonce = secrets.token_urlsafe(24)
    valid = confirmation_valid(settings)
    entry_id, before, reserved, hints = _reserve_confirmation(
        database,
        normal,
        by,
        now,
        nonce_hash=_nonce_hash(nonce),
        expires_at=now + valid,
        zone=zone_of(database, settings, normal),
    )
    try:
        envelope = _confirmation_email(
            settings, signer, reserved.address, hints, nonce=nonce, now=now, valid=valid, dkim=dkim
        )
        try:
            mailer.send(envelope)
        finally:
            mailer.close()
    except BaseException:
        with database.transaction() as store:
            store.swap_consent(entry_id, reserved, before)
            store.drop_confirmation(_nonce_hash(nonce))
        raise
    with database.transaction() as store:
        store.append_consent_event(
            entry_id,
            ConsentEvent(
                address=reserved.address,
                action=Action.SEND_CONFIRMATION,
                source=by,
                method=method,
                actor=actor,
                occurred_at=now,
                recorded_at=now,
                detail=envelope.message_id,
            ),
        )
    return reserved.address


#: How often a reservation is tried again when the entry changed under it.
_RESERVE_ATTEMPTS = 3


def _reserve_confirmation(
    database: Database,
    address: str,
    by: Source,
    now: datetime,
    *,
    nonce_hash: str,
    expires_at: datetime,
    zone: ZoneInfo,
) -> tuple[int, AddressConsent, AddressConsent, list[tuple[str | None, str, str]]]:
    """Record that a confirmation email goes out, if the rules allow it now.

    Return (entry id, facts before, facts reserved, contact hints); raise
    `ConsentRefused` when the rules say no, also after another request won the race.
    """
    for _attempt in range(_RESERVE_ATTEMPTS):
        with database.transaction() as store:
            entry = store.consent_entry(address)
            if entry is None:
                raise NotFoundError(
                    f"{address} is not in the registry: import the contact who uses it first"
                )
            entry_id, record = entry
            decision = decide(record, Action.SEND_CONFIRMATION, by, now, zone=zone)
            if not decision.allowed:
                raise ConsentRefused(decision.refusal)
            if store.swap_consent(entry_id, record, decision.record):
                store.add_confirmation(entry_id, nonce_hash, requested_by=by, expires_at=expires_at)
                return entry_id, record, decision.record, store.contact_hints(entry_id)
    raise ConsentRefused(
        f"the registry entry of {address} keeps changing while a confirmation email is "
        "being sent: try again in a minute"
    )


def _confirmation_email(
    settings: Settings,
    signer: LinkSigner,
    address: str,
    hints: list[tuple[str | None, str, str]],
    *,
    nonce: str,
    now: datetime,
    valid: timedelta,
    dkim: DkimSigner | None,
) -> Envelope:
    """Return the confirmation email of `address`, its link carrying `nonce`."""
    agency, name, locale = _sender_of(settings, hints)
    token = signer.sign_payload(Purpose.CONFIRM, {"a": address, "n": nonce})
    unsubscribe = unsubscribe_url(settings, signer, address)
    settings_link = settings_url(settings, signer, address)
    renderer = Renderer(settings.agency_templates_path(agency), settings.templates_path)
    language = renderer.language_for(CONFIRMATION_TEMPLATE, locale, agency.locale)
    content = renderer.render(
        CONFIRMATION_TEMPLATE,
        language,
        confirmation_context(
            agency,
            name=name,
            address=address,
            url=f"{settings.web.base_url}/confirm/{token}",
            unsubscribe_url=unsubscribe,
            settings_url=settings_link,
            valid=valid,
            expires_on=(now + valid).astimezone(agency.zone).date(),
        ),
    )
    return agency_email(
        agency,
        mailbox(address, name),
        content,
        now=now,
        tag="confirm",
        dkim=dkim,
        unsubscribe_url=unsubscribe,
        settings_url=settings_link,
    )


def confirmation_context(
    agency: AgencySettings,
    *,
    name: str,
    address: str,
    url: str,
    unsubscribe_url: str,
    valid: timedelta,
    expires_on: date,
    settings_url: str = SETTINGS_URL_PLACEHOLDER,
) -> dict[str, Any]:
    """Return the variables the confirmation email's templates see."""
    return {
        "agency": {
            "code": agency.code,
            "name": agency.name,
            "email": parse_mailbox(agency.sender).address,
        },
        "contact": {"name": name, "email": address},
        "confirm_url": url,
        "unsubscribe_url": unsubscribe_url,
        "settings_url": settings_url,
        "valid_days": valid.days,
        "expires_on": expires_on,
    }


def _sender_of(
    settings: Settings, hints: list[tuple[str | None, str, str]]
) -> tuple[AgencySettings, str, str | None]:
    """Pick the agency, name and locale a confirmation email is written for."""
    for locale, code, name in hints:
        if (agency := settings.find_agency(code)) is not None:
            return agency, name, locale
    if not settings.agency:
        raise UsageError("no agency configured: add an [[agency]] table (see config.example.toml)")
    name = hints[0][2] if hints else ""
    return settings.agency[0], name, hints[0][0] if hints else None


@dataclass(frozen=True, slots=True, kw_only=True)
class PageFacts:
    """What a contact's page about an address shows besides the address: read at once."""

    #: the language of its contact (fr or en)
    language: str
    #: the name of the agency of its first contact we know, if any
    agency: str | None
    #: where it stands (None: not in the registry)
    consent: ConsentReason | None


def page_facts(database: Database, settings: Settings, address: str) -> PageFacts:
    """Return the language, agency and consent of the pages about `address`, in one read."""
    with database.transaction() as store:
        entry = store.consent_entry(address)
        hints = store.contact_hints(entry[0]) if entry else []
    agencies = [settings.find_agency(code) for _locale, code, _name in hints]
    consent = (
        state_of(
            entry[1],
            database.clock.now(),
            timedelta(days=settings.consent.reconfirm_after_days),
        )
        if entry
        else None
    )
    return PageFacts(
        language=_language_of_hints(agencies, hints),
        agency=next((agency.name for agency in agencies if agency is not None), None),
        consent=consent,
    )


def page_language(database: Database, settings: Settings, address: str) -> str:
    """Return the language the pages about `address` are shown in (its contact's)."""
    return page_facts(database, settings, address).language


def _language_of_hints(
    agencies: list[AgencySettings | None], hints: list[tuple[str | None, str, str]]
) -> str:
    """The first of the hints' languages the pages speak: a contact's, else its agency's."""
    for (locale, _code, _name), agency in zip(hints, agencies, strict=True):
        for candidate in (locale, agency.locale if agency is not None else None):
            language = language_of(candidate)
            if language in ("fr", "en"):
                return language
    return "en"
