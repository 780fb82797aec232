"""Signed, expiring tokens for the links in emails (itsdangerous).

A token carries the address it is about and is signed for one purpose (its salt),
so an unsubscribe token cannot be replayed as a confirmation. Its timestamp comes
from the injected clock, so tests travel in time and nothing reads the clock here.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from .clock import Clock
from .errors import ReminderError


class Purpose(StrEnum):
    UNSUBSCRIBE = "unsubscribe"  #: the List-Unsubscribe link and the page behind it
    CONFIRM = "confirm"  #: the link of a confirmation email (double opt-in)


class InvalidLink(ReminderError):
    """This link is not valid: ask for a new one."""


class ExpiredLink(InvalidLink):
    """This link has expired: ask for a new one."""


class _ClockSigner(TimestampSigner):
    """A timestamp signer that tells the time by the injected clock."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock.now().timestamp())


class LinkSigner:
    """Signs and checks the address tokens of one deployment's links."""

    def __init__(self, secret: str, clock: Clock) -> None:
        self._secret = secret
        self._clock = clock
        self._serializers: dict[Purpose, URLSafeTimedSerializer] = {}

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        # Built once per purpose: a batch signs one link per email.
        if purpose not in self._serializers:
            self._serializers[purpose] = URLSafeTimedSerializer(
                self._secret,
                salt=f"reminders.{purpose}",
                signer=_ClockSigner,
                signer_kwargs={"clock": self._clock},
            )
        return self._serializers[purpose]

    def sign(self, purpose: Purpose, address: str) -> str:
        """Return a URL-safe token naming `address`, valid for `purpose` only."""
        return self.sign_payload(purpose, {"a": address})

    def sign_payload(self, purpose: Purpose, payload: dict[str, str]) -> str:
        """Return a URL-safe token carrying `payload`, valid for `purpose` only."""
        token: str = self._serializer(purpose).dumps(payload)
        return token

    def address(self, purpose: Purpose, token: str, max_age: timedelta) -> str:
        """Return the address `token` names, or raise `InvalidLink` / `ExpiredLink`."""
        address = self.payload(purpose, token, max_age).get("a")
        if not isinstance(address, str):
            raise InvalidLink()
        return address

    def payload(self, purpose: Purpose, token: str, max_age: timedelta) -> dict[str, object]:
        """Return what `token` carries, or raise `InvalidLink` / `ExpiredLink`."""
        try:
            payload = self._serializer(purpose).loads(token, max_age=int(max_age.total_seconds()))
        except SignatureExpired:
            raise ExpiredLink() from None
        except BadSignature:
            raise InvalidLink() from None
        if not isinstance(payload, dict):
            raise InvalidLink()
        return payload
