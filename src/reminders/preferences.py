"""A contact's choices per kind of email, and what their email settings page shows.

A contact may refuse one kind of email (the post-departure emails) and keep the
others (the arrival information). The choice belongs to the address, as consent
does; `consent.decide_kind` says whether a choice is allowed, `choose_kind` records
it with its event in the history, and the dispatcher's claim holds the items of a
refused kind (`kind_refused`) in the same statement that takes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .config import AgencySettings, Settings
from .consent import (
    Action,
    ConsentEvent,
    ConsentReason,
    KindDecision,
    Source,
    decide_kind,
    normalise_address,
    state_of,
)
from .errors import NotFoundError, UnknownAddress, UsageError
from .registry import ConsentRefused, change
from .store import Database, Store

#: How a contact reads the built-in kinds on their settings page (staff see tab labels).
CONTACT_LABELS: dict[str, dict[str, str]] = {
    "balance_due": {
        "fr": "Rappels du solde à régler",
        "en": "Reminders of the balance to pay",
    },
    "arrival": {
        "fr": "Informations avant votre arrivée",
        "en": "Information before your arrival",
    },
    "option_expiry": {
        "fr": "Rappels avant l’expiration d’une option",
        "en": "Reminders before an option expires",
    },
    "post_departure": {
        "fr": "E-mails après votre séjour",
        "en": "Emails after your stay",
    },
}


class UnknownKind(NotFoundError):
    """No agency of this address sends this kind of email: see its settings page."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KindSwitch:
    """One kind of email on the settings page: its words, and whether it is received."""

    kind: str
    label: str
    receive: bool
    #: the agency marks it as one the contact cannot refuse: shown, without a switch
    required: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressSettings:
    """What the settings page of an address shows."""

    address: str
    consent: ConsentReason
    #: who opted it out (None: not opted out)
    opted_out_by: Source | None
    switches: list[KindSwitch]


def _agencies_of(settings: Settings, codes: list[str]) -> list[AgencySettings]:
    """The agencies writing to an address: its contacts', else every agency."""
    mine = [a for a in settings.agency if a.code in codes]
    return mine or list(settings.agency)


def _offer(agencies: list[AgencySettings]) -> tuple[dict[str, AgencySettings], frozenset[str]]:
    """Return the kinds these agencies send (with the first that sends each) and the
    required ones (required by any of them: a choice is the address's, not an agency's)."""
    offered: dict[str, AgencySettings] = {}
    required: set[str] = set()
    for agency in agencies:
        for kind in agency.enabled_kinds():
            offered.setdefault(kind.name, agency)
        required |= agency.required_kinds()
    return offered, frozenset(required)


def label_of(agency: AgencySettings, kind: str, language: str) -> str:
    """Return how a contact reads `kind` in `language`."""
    words = CONTACT_LABELS.get(kind)
    if words:
        return words.get(language) or words["en"]
    definition = agency.definitions().get(kind)
    if definition is None:
        return kind
    return definition.tab.get(language) or definition.tab.get("en") or kind


def choose_kind(
    database: Database,
    settings: Settings,
    address: str,
    kind: str,
    receive: bool,
    *,
    source: Source = Source.CONTACT,
    method: str,
    actor: str,
    occurred_at: datetime | None = None,
) -> KindDecision:
    """Record whether `address` receives the emails of `kind`, in one transaction.

    The change and its `refuse_kind` / `accept_kind` event (the kind in the event's
    `kind`) are written under the entry's row lock. Raise `NotFoundError` for an
    address never seen, `UnknownKind` for a kind none of its agencies sends, and
    `ConsentRefused` when the rules refuse it (a kind the agency marks required,
    a source that does not choose kinds). A choice equal to the current one
    changes nothing and writes nothing (`changes` False).
    """
    now = database.clock.now()
    if occurred_at is not None and occurred_at > now:
        raise UsageError(f"{occurred_at.isoformat()} is in the future: give when it happened")
    normal = normalise_address(address)
    with database.transaction() as store:
        entry = store.lock_consent_entry(normal)
        if entry is None:
            raise UnknownAddress(normal)
        entry_id, record = entry
        offered, required = _offer(_agencies_of(settings, _codes(store, entry_id)))
        current = store.kind_choices(entry_id).get(kind)
        decision = decide_kind(
            record.address,
            kind,
            receive,
            source,
            current=current,
            offered=frozenset(offered),
            required=required,
        )
        if not decision.allowed:
            if kind not in offered and current is None:
                raise UnknownKind(decision.refusal)
            raise ConsentRefused(decision.refusal)
        if decision.changes:
            when = occurred_at or now
            store.choose_kind(
                entry_id, kind, receive, source=source, method=method, actor=actor, chosen_at=when
            )
            store.append_consent_event(
                entry_id,
                ConsentEvent(
                    address=record.address,
                    action=Action.ACCEPT_KIND if receive else Action.REFUSE_KIND,
                    source=source,
                    method=method,
                    actor=actor,
                    occurred_at=when,
                    recorded_at=now,
                    kind=kind,
                ),
            )
    return decision


def _codes(store: Store, entry_id: int) -> list[str]:
    return [agency for _locale, agency, _name in store.contact_hints(entry_id)]


def settings_of(
    database: Database, settings: Settings, address: str, language: str
) -> AddressSettings:
    """Return what the settings page of `address` shows, its words in `language`.

    One switch per kind its agencies send, in their order; a required kind is
    listed without a switch. Read-only.
    """
    normal = normalise_address(address)
    with database.transaction(dry_run=True) as store:
        entry = store.consent_entry(normal)
        if entry is None:
            raise NotFoundError(f"{normal} is not in the registry")
        entry_id, record = entry
        choices = store.kind_choices(entry_id)
        offered, required = _offer(_agencies_of(settings, _codes(store, entry_id)))
    reconfirm = timedelta(days=settings.consent.reconfirm_after_days)
    return AddressSettings(
        address=record.address,
        consent=state_of(record, database.clock.now(), reconfirm),
        opted_out_by=record.opted_out_by,
        switches=[
            KindSwitch(
                kind=kind,
                label=label_of(agency, kind, language),
                receive=kind in required or choices.get(kind, True),
                required=kind in required,
            )
            for kind, agency in offered.items()
        ],
    )


def unsubscribe_everything(database: Database, address: str, *, method: str) -> None:
    """Opt `address` out of every email, as the contact asked (source `contact`)."""
    now = database.clock.now()
    with database.transaction() as store:
        change(
            store, address, Action.OPT_OUT, Source.CONTACT, method=method, actor="contact", now=now
        )
