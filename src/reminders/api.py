"""The requests of other systems (the HTTP API), one service function each.

Each function authenticates the key and does what it asks in one transaction: the
key's last use is written with the change, and a request whose key is unknown or
revoked (`InvalidKey`) changes nothing. The consent rules are the registry's, so
the API is refused what staff are refused (`ConsentRefused`): it acts as staff, under
the key's name (`api:NAME`). The confirmation email is the exception to one
transaction: it is reserved, sent and recorded as `registry.send_confirmation` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import api_keys, preferences, registry
from .api_keys import ApiKey
from .config import Settings
from .consent import Action, Source, address_key, normalise_address
from .errors import UsageError
from .mailer import Mailer
from .registry import AddressStatus, ConsentRefused
from .store import Database

#: Told the key once it is authenticated (the web app logs its name with the request).
OnKey = Callable[[ApiKey], None]

#: The sources an API client may give an opt-out: staff's, or one it received.
OPT_OUT_SOURCES = (Source.AGENT, Source.CONTACT, Source.SYSTEM)
#: The method recorded when a client asks for the confirmation email.
CONFIRMATION_METHOD = "api"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportPage:
    """One page of the report of opted-out addresses."""

    items: list[dict[str, Any]]
    #: the key of the last address of this page when more may follow, else None
    last_key: str | None


def _noop(_key: ApiKey) -> None:
    pass


def authenticate(database: Database, key: str, *, on_key: OnKey = _noop) -> ApiKey:
    """Return the key presented, in use; raise `InvalidKey` if unknown or revoked."""
    with database.transaction() as store:
        found = api_keys.authenticate(store, key, database.clock.now())
    on_key(found)
    return found


def status(
    database: Database, settings: Settings, key: str, address: str, *, on_key: OnKey = _noop
) -> AddressStatus:
    """Return where `address` stands (`NotFoundError` if the registry never saw it)."""
    now = database.clock.now()
    with database.transaction() as store:
        on_key(api_keys.authenticate(store, key, now))
        return registry.status_in(store, settings, address, now)


def record(
    database: Database,
    settings: Settings,
    key: str,
    address: str,
    action: Action,
    *,
    source: Source = Source.AGENT,
    method: str,
    occurred_at: datetime | None = None,
    on_key: OnKey = _noop,
) -> AddressStatus:
    """Record an opt-out or opt-in by the rules of `consent.decide`; return the new status.

    An opt-out may have been received by the client (`source` contact or system); an
    opt-in is always staff's (`agent`), refused for a contact's or the system's opt-out.
    Refused, the key's use is still recorded, and nothing else.
    """
    if action is Action.OPT_IN and source is not Source.AGENT:
        raise UsageError("an opt-in is recorded as staff's (source agent)")
    if action is Action.OPT_OUT and source not in OPT_OUT_SOURCES:
        raise UsageError(f"an opt-out's source is one of {', '.join(OPT_OUT_SOURCES)}")
    now = database.clock.now()
    if occurred_at is not None and occurred_at > now:
        raise UsageError(f"at {occurred_at.isoformat()} is in the future: give when it happened")
    normal = normalise_address(address)
    refused: ConsentRefused | None = None
    with database.transaction() as store:
        client = api_keys.authenticate(store, key, now)
        on_key(client)
        try:
            registry.change(
                store,
                normal,
                action,
                source,
                method=method,
                actor=client.actor,
                now=now,
                occurred_at=occurred_at,
            )
        except ConsentRefused as error:
            refused = error  # raised once the key's use is committed
        else:
            return registry.status_in(store, settings, normal, now)
    raise refused


def choose_kind(
    database: Database,
    settings: Settings,
    key: str,
    address: str,
    kind: str,
    receive: bool,
    *,
    method: str,
    on_key: OnKey = _noop,
) -> AddressStatus:
    """Record the contact's choice for one kind of email (source `contact`), as received
    by the client; return the new status. A kind the agency marks required is refused
    (`ConsentRefused`), one none of the address's agencies sends is `NotFoundError`.
    """
    client = authenticate(database, key, on_key=on_key)
    normal = normalise_address(address)
    preferences.choose_kind(
        database,
        settings,
        normal,
        kind,
        receive,
        source=Source.CONTACT,
        method=method,
        actor=client.actor,
    )
    return registry.status(database, settings, normal)


def send_confirmation(
    database: Database,
    settings: Settings,
    mailer: Mailer,
    key: str,
    address: str,
    *,
    on_key: OnKey = _noop,
) -> AddressStatus:
    """Send the confirmation email of `address` as staff do (once per address)."""
    normal = normalise_address(address)
    client = authenticate(database, key, on_key=on_key)
    registry.send_confirmation(
        database,
        settings,
        mailer,
        normal,
        by=Source.AGENT,
        actor=client.actor,
        method=CONFIRMATION_METHOD,
    )
    return registry.status(database, settings, normal)


def opt_outs(
    database: Database,
    settings: Settings,
    key: str,
    *,
    source: Source | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    prefix: str | None = None,
    after: str | None = None,
    limit: int,
    on_key: OnKey = _noop,
) -> ReportPage:
    """Return one page of the opted-out addresses, by address key, after `after`."""
    with database.transaction() as store:
        on_key(api_keys.authenticate(store, key, database.clock.now()))
        # One more than asked: whether a next page exists, without counting them all.
        rows = registry.report_in(
            store,
            settings,
            source=source,
            since=since,
            until=until,
            prefix=prefix,
            after=after,
            limit=limit + 1,
        )
    more = len(rows) > limit
    items = rows[:limit]
    return ReportPage(
        items=items, last_key=address_key(items[-1]["address"]) if more and items else None
    )
