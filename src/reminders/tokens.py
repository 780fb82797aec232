"""Opaque, expiring tokens for the links in emails: the address is encrypted, never readable.

A link's URL lands in reverse proxies' access logs and in mail scanners' reports, so
its token must not show the guest's address. A token is a Fernet token (AES-128-CBC
and HMAC-SHA256, from `cryptography`): the address (and, for a confirmation link, the
secret part checked against the database) is encrypted and authenticated, with the
time it was made. Nothing is stored when a link is made: a batch of emails costs no
database write, only a few microseconds of AES per email.

- Each purpose has its own key, derived from the deployment's secret (HKDF), so an
  unsubscribe token cannot be replayed as a confirmation.
- Time comes from the injected clock. A token made up to `CLOCK_SKEW` ahead of this
  host's clock (another host's clock runs fast) counts as made now; one further ahead
  is not ours to trust: `InvalidLink`.
- Tokens of the former format (itsdangerous: the address readable in base64, with two
  dots) are still read until they expire (`web.unsubscribe_valid_days`), so links in
  emails already sent keep working; none is made any more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.ciphers.modes import CBC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .clock import Clock
from .errors import ReminderError

#: How far ahead of this host's clock a token may have been made (hosts' clocks drift).
CLOCK_SKEW = timedelta(minutes=5)
#: Between a confirmation link's secret part and the address, in the encrypted text.
_SEPARATOR = "\n"


class Purpose(StrEnum):
    UNSUBSCRIBE = "unsubscribe"  #: the List-Unsubscribe link and the page behind it
    CONFIRM = "confirm"  #: the link of a confirmation email (double opt-in)
    SETTINGS = "settings"  #: the contact's email settings page, linked from every footer


class InvalidLink(ReminderError):
    """This link is not valid: ask for a new one."""


class ExpiredLink(InvalidLink):
    """This link has expired: ask for a new one."""


class LinkSigner:
    """Makes and reads the link tokens of one deployment."""

    def __init__(self, secret: str, clock: Clock) -> None:
        self._secret = secret
        self._clock = clock
        # Built once per purpose: a batch makes one link per email.
        self._keys: dict[Purpose, bytes] = {}
        self._readers: dict[Purpose, Fernet] = {}
        self._writers: dict[Purpose, FernetWriter] = {}
        self._legacy: dict[Purpose, URLSafeTimedSerializer] = {}
        self._ivs = _RandomBytes()

    def _key(self, purpose: Purpose) -> bytes:
        if purpose not in self._keys:
            self._keys[purpose] = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=f"reminders.link.{purpose}".encode("ascii"),
            ).derive(self._secret.encode("utf-8"))
        return self._keys[purpose]

    def _fernet(self, purpose: Purpose) -> Fernet:
        if purpose not in self._readers:
            self._readers[purpose] = Fernet(base64.urlsafe_b64encode(self._key(purpose)))
        return self._readers[purpose]

    def sign(self, purpose: Purpose, address: str) -> str:
        """Return an opaque URL-safe token for `address`, valid for `purpose` only."""
        return self.sign_payload(purpose, {"a": address})

    def sign_payload(self, purpose: Purpose, payload: Mapping[str, str]) -> str:
        """Return an opaque URL-safe token carrying `payload` ("a": address, "n": secret part)."""
        nonce = payload.get("n", "")
        if set(payload) - {"a", "n"} or _SEPARATOR in nonce:
            raise ValueError(f"a link carries an address and a secret part, not {payload!r}")
        plain = f"{nonce}{_SEPARATOR}{payload['a']}".encode()
        made_at = int(self._clock.now().timestamp())
        if purpose not in self._writers:
            self._writers[purpose] = FernetWriter(self._key(purpose))
        token = self._writers[purpose].token(plain, made_at, self._ivs.take(16))
        # Base64 padding ('=') is implied by the length: drop it from URLs.
        return token.decode("ascii").rstrip("=")

    def address(self, purpose: Purpose, token: str, max_age: timedelta | None) -> str:
        """Return the address `token` names, or raise `InvalidLink` / `ExpiredLink`."""
        address = self.payload(purpose, token, max_age).get("a")
        if not isinstance(address, str):
            raise InvalidLink()
        return address

    def payload(self, purpose: Purpose, token: str, max_age: timedelta | None) -> dict[str, object]:
        """Return what `token` carries, or raise `InvalidLink` / `ExpiredLink`.

        `max_age` None reads an authentic token whatever its age.
        """
        if "." in token:
            payload, made_at = self._read_legacy(purpose, token)
        else:
            payload, made_at = self._read(purpose, token)
        self._check_age(made_at, max_age)
        return payload

    def _read(self, purpose: Purpose, token: str) -> tuple[dict[str, object], datetime]:
        fernet = self._fernet(purpose)
        try:
            padded = (token + "=" * (-len(token) % 4)).encode("ascii")
            made_at = fernet.extract_timestamp(padded)
            plain = fernet.decrypt(padded).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise InvalidLink() from None
        nonce, separator, address = plain.partition(_SEPARATOR)
        if not separator or not address:
            raise InvalidLink()
        payload: dict[str, object] = {"a": address}
        if nonce:
            payload["n"] = nonce
        return payload, datetime.fromtimestamp(made_at, UTC)

    def _read_legacy(self, purpose: Purpose, token: str) -> tuple[dict[str, object], datetime]:
        """Read a token of the former, readable format (until they have all expired)."""
        if purpose not in self._legacy:
            self._legacy[purpose] = URLSafeTimedSerializer(
                self._secret, salt=f"reminders.{purpose}"
            )
        try:
            # Without max_age, itsdangerous checks the signature only: the age is ours.
            payload, made_at = self._legacy[purpose].loads(token, return_timestamp=True)
        except (BadSignature, UnicodeError, ValueError):
            raise InvalidLink() from None
        if not isinstance(payload, dict) or not isinstance(payload.get("a"), str):
            raise InvalidLink()
        return payload, made_at

    def _check_age(self, made_at: datetime, max_age: timedelta | None) -> None:
        """Raise unless a token made at `made_at` is still good at the clock's now.

        Made in the future by at most `CLOCK_SKEW`: another host's clock runs ahead,
        the token counts as made now. Further ahead: invalid (not an expired link,
        whose page offers a new one from an old link).
        """
        now = self._clock.now()
        if made_at > now + CLOCK_SKEW:
            raise InvalidLink()
        if max_age is not None and now - made_at > max_age:
            raise ExpiredLink()


class FernetWriter:
    """Writes the Fernet tokens of one 32-byte key, with the IV given.

    The layout of the Fernet specification, as `Fernet.encrypt_at_time` writes it and
    `Fernet.decrypt` reads it: version 0x80, the time, the IV, the AES-128-CBC text
    (PKCS7 padding), and the HMAC-SHA256 of all that, in URL-safe base64. Written out
    here to take the IV from `_RandomBytes` instead of a system call a token, and to
    prepare the key's cipher and MAC once.
    """

    def __init__(self, key: bytes) -> None:
        self._cipher = AES(key[16:])
        # hmac.new().copy(): hmac.digest() would release the interpreter lock a token.
        self._mac = hmac.new(key[:16], digestmod=hashlib.sha256)

    def token(self, plain: bytes, made_at: int, iv: bytes) -> bytes:
        padding = 16 - len(plain) % 16
        encryptor = Cipher(self._cipher, CBC(iv)).encryptor()
        text = encryptor.update(plain + bytes([padding]) * padding) + encryptor.finalize()
        signed = b"\x80" + made_at.to_bytes(8, "big") + iv + text
        mac = self._mac.copy()
        mac.update(signed)
        return base64.urlsafe_b64encode(signed + mac.digest())


class _RandomBytes:
    """Random bytes from the system, read 4 KiB at a time (a batch makes two tokens an email).

    Read again in a forked process, so that parent and child never share an IV.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0
        self._pid = 0

    def take(self, size: int) -> bytes:
        with self._lock:
            if self._at + size > len(self._pool) or self._pid != os.getpid():
                self._pool, self._at, self._pid = os.urandom(4096), 0, os.getpid()
            taken = self._pool[self._at : self._at + size]
            self._at += size
            return taken
