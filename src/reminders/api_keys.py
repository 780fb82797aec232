"""API keys: what another system presents to the HTTP API, and the name it acts under.

A key is `rk_` and 32 random bytes (URL-safe base64): printed once by `reminders
api-key create NAME`, then known only by its SHA-256. A salted slow hash protects
passwords people choose; a 256-bit random key cannot be guessed from its hash, so a
plain SHA-256 is enough, and lets a request's key be found by its hash in one indexed
look-up. The look-up reveals nothing usable by its timing (an attacker would have to
invert SHA-256), and the stored hash is then compared in constant time all the same.

The key's name is the actor of what it records (`api:crm-sync`); a name is never
reused, even once its key is revoked, so the history keeps saying who it was.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .errors import NotFoundError, ReminderError, UsageError

if TYPE_CHECKING:
    from .store import Database, Store

#: Every key starts with it, so a leaked one is recognised (secret scanners, logs).
KEY_PREFIX = "rk_"
#: A key's name: what `api:NAME` in the history and `api-key revoke NAME` say.
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
#: A key's last use is written at most this often (a busy client would write on every request).
LAST_USED_PRECISION = timedelta(minutes=1)


class InvalidKey(ReminderError):
    """Send a valid API key in 'Authorization: Bearer KEY' ('reminders api-key create NAME')."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """One API key, as listed (the key itself is never kept)."""

    name: str
    #: who ran `reminders api-key create`
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def actor(self) -> str:
        """The actor of what this key records in the consent history."""
        return f"api:{self.name}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


def new_key() -> str:
    """Return a new random key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """Return the hex SHA-256 of a key: what the database keeps."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    """Return `name` if it may name a key; raise `UsageError` saying what a name is."""
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"{name!r} cannot name an API key: use 1 to 63 lower-case letters, digits, '.', "
            "'_' or '-', starting with a letter or digit (e.g. crm-sync)"
        )
    return name


def bearer_key(authorization: str | None) -> str:
    """Return the key of an `Authorization: Bearer KEY` header; raise `InvalidKey` if none."""
    if authorization is None:
        raise InvalidKey(
            "no API key: send it in an 'Authorization: Bearer KEY' header (an operator "
            "creates one with 'reminders api-key create NAME')"
        )
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise InvalidKey("the Authorization header must be 'Bearer KEY'")
    return key


def authenticate(store: Store, key: str, now: datetime) -> ApiKey:
    """Return the key presented, in use; raise `InvalidKey` if unknown or revoked.

    Runs in the caller's transaction, with the request it authorises: the key's
    last use is written with what the request does.
    """
    wanted = key_hash(key)
    found = store.api_key_by_hash(wanted)
    if found is None or not hmac.compare_digest(found[0], wanted):
        raise InvalidKey("this API key is not known: check it, or ask an operator for one")
    stored = found[1]
    if stored.is_revoked:
        raise InvalidKey(f"this API key ({stored.name}) was revoked: ask an operator for a new one")
    store.stamp_api_key(stored.name, now, every=LAST_USED_PRECISION)
    return stored


def create(database: Database, name: str, *, created_by: str) -> tuple[ApiKey, str]:
    """Create a key named `name`; return it and the key itself (to print once)."""
    check_name(name)
    key = new_key()
    with database.transaction() as store:
        created = store.add_api_key(name, key_hash(key), created_by=created_by)
    if created is None:
        raise UsageError(
            f"an API key named {name!r} exists already (names are never reused, even "
            "revoked: the history names the key that acted): choose another name"
        )
    return created, key


def list_keys(database: Database) -> list[ApiKey]:
    """Return every key, revoked ones included, oldest first."""
    with database.transaction() as store:
        return store.api_keys()


def revoke(database: Database, name: str) -> tuple[ApiKey, bool]:
    """Revoke the key named `name`; return it and whether it was in use until now."""
    now = database.clock.now()
    with database.transaction() as store:
        revoked = store.revoke_api_key(name, now)
        found = store.api_key_named(name)
    if found is None:
        raise NotFoundError(f"no API key named {name!r}: list them with 'reminders api-key list'")
    return found, revoked
