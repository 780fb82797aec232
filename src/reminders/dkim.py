"""DKIM signatures (RFC 6376) on every email, when `[dkim]` is configured.

The key is read, parsed and tried once per configuration (`signer_for`), not per
email: a missing, unreadable or invalid key is a `ConfigError` before anything is
claimed or sent. Each email is then signed rsa-sha256, relaxed/relaxed.

What is signed and how it is laid out is dkimpy's: its RFC 5322 reader, its
canonicalisation, its header hash and its DKIM-Signature layout, so the header
is byte for byte what `dkim.sign` writes (a unit test holds them to it). Only
the RSA operation itself goes to OpenSSL (`cryptography`): dkimpy does it in
pure Python, about 5 ms an email with a 2048-bit key, ten times the rest of the
send; OpenSSL takes 0.2 ms.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from .config import AgencySettings, DkimSettings, Settings
from .errors import ConfigError, ReminderError
from .messages import Envelope, parse_mailbox

#: The header fields signed when present, each listed twice ("over-signed"): a copy
#: added on the way (a second From, another unsubscribe link) breaks the signature.
SIGNED_FIELDS = (
    b"from",
    b"to",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)
#: Receivers ignore shorter RSA keys (RFC 8301); 2048 bits is what to generate.
MIN_KEY_BITS = 1024
#: Longest character-string of a DNS TXT record.
_TXT_CHUNK = 255
_KEY_VARIABLE = "REMINDERS_DKIM__PRIVATE_KEY"


@functools.cache
def _dkimpy() -> tuple[ModuleType, Any]:
    """Return dkimpy and its relaxed/relaxed policy, loaded where an email is first signed.

    dkimpy brings DNS modules along: a command that signs nothing does not load them.
    """
    import dkim
    from dkim.canonicalization import CanonicalizationPolicy

    return dkim, CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")


class UnsignableMessage(ReminderError):
    """The email cannot be signed: it is not sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DkimSigner:
    """Signs messages as `domain` with the key published at `selector`._domainkey.`domain`."""

    domain: str
    selector: str
    key: rsa.RSAPrivateKey

    @property
    def key_bits(self) -> int:
        return self.key.key_size

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def txt_value(self) -> str:
        """Return the text of the DNS TXT record receivers look the public key up in."""
        public = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode('ascii')}"

    def dns_record(self) -> str:
        """Return the zone-file line to publish (strings of at most 255 characters)."""
        value = self.txt_value()
        strings = " ".join(
            f'"{value[i : i + _TXT_CHUNK]}"' for i in range(0, len(value), _TXT_CHUNK)
        )
        return f"{self.record_name}. IN TXT {strings}"

    def aligns(self, sender_domain: str) -> bool:
        """Tell whether mail from `sender_domain` passes DMARC on this signature.

        Relaxed alignment (RFC 7489) asks for the same organisational domain. Without
        the public suffix list this is the safe half of it: the sender's domain is
        the signing domain or under it (`news.agence.example` under `agence.example`).
        """
        sender, signing = sender_domain.lower().rstrip("."), self.domain
        return sender == signing or sender.endswith("." + signing)

    def signature(self, data: bytes, *, now: datetime) -> bytes:
        """Return the DKIM-Signature header line (CRLF-terminated) of the message `data`.

        The same bytes as `dkim.sign(data, selector, domain, key, canonicalize=(b"relaxed",
        b"relaxed"), include_headers=...)` at the instant `now`. Raise `UnsignableMessage`
        when dkimpy cannot read the message.
        """
        dkim, _ = _dkimpy()
        try:
            return self._signature(data, now)
        except (dkim.DKIMException, ValueError) as error:
            raise UnsignableMessage(
                f"the message cannot be signed with DKIM ({error}): it is not sent"
            ) from None

    def _signature(self, data: bytes, now: datetime) -> bytes:
        dkim, canonicalization = _dkimpy()
        headers, body = dkim.rfc822_parse(data)
        present = {name.lower() for name, _ in headers}
        signed = [f for f in SIGNED_FIELDS if f in present]
        include = tuple(signed + signed)
        domain, selector = self.domain.encode("ascii"), self.selector.encode("ascii")
        body_hash = base64.b64encode(
            hashlib.sha256(canonicalization.canonicalize_body(body)).digest()
        )
        fields = [
            (b"v", b"1"),
            (b"a", b"rsa-sha256"),
            (b"c", b"relaxed/relaxed"),
            (b"d", domain),
            (b"i", b"@" + domain),
            (b"q", b"dns/txt"),
            (b"s", selector),
            (b"t", str(int(now.timestamp())).encode("ascii")),
            (b"h", b" : ".join(include)),
            (b"bh", body_hash),
            # A b= placeholder long enough to be folded onto its own line, as dkimpy does,
            # so the folding of the other tags stays the same once b= is filled in.
            (b"b", b"0" * 60),
        ]
        name = b"DKIM-Signature"
        value = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(name))
        value = dkim.RE_BTAG.sub(b"\\1", value)
        hasher = hashlib.sha256()
        dkim.hash_headers(
            hasher,
            canonicalization,
            canonicalization.canonicalize_headers(headers),
            include,
            (name, b" " + value),
            dict(fields),
        )
        rsa_signature = self.key.sign(
            hasher.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256())
        )
        fields[-1] = (b"b", base64.b64encode(rsa_signature))
        value = b"; ".join(b"=".join(f) for f in fields) + b"\r\n"
        folded: bytes = dkim.fold(value, namelen=len(name))
        return name + b": " + folded

    def sign(self, envelope: Envelope, *, now: datetime) -> Envelope:
        """Return `envelope` with its DKIM-Signature header first."""
        data = envelope.as_bytes()
        return Envelope(
            sender=envelope.sender,
            recipient=envelope.recipient,
            data=self.signature(data, now=now) + data,
            message_id=envelope.message_id,
            needs_smtputf8=envelope.needs_smtputf8,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Alignment:
    """Whether an agency's sender domain aligns with the DKIM signing domain."""

    agency: str
    sender_domain: str
    aligned: bool


def alignments(signer: DkimSigner, agencies: Sequence[AgencySettings]) -> list[Alignment]:
    """Return, per agency, whether its sender's domain aligns with the signing domain."""
    result = []
    for agency in agencies:
        domain = parse_mailbox(agency.sender).domain
        result.append(
            Alignment(agency=agency.code, sender_domain=domain, aligned=signer.aligns(domain))
        )
    return result


def signer_for(settings: Settings) -> DkimSigner | None:
    """Return the signer of `settings` (None without `[dkim]`), its key loaded once.

    Raise `ConfigError` (one line, what to do) when the key cannot be used.
    """
    if settings.dkim is None:
        return None
    loaded = settings._dkim_signer
    if loaded is None:
        loaded = load_signer(settings.dkim, settings.path)
        settings._dkim_signer = loaded
    assert isinstance(loaded, DkimSigner)
    return loaded


def load_signer(section: DkimSettings, resolve: Callable[[str], Path]) -> DkimSigner:
    """Read and parse the key of `section` (OpenSSL checks that its parts fit together)."""
    if section.private_key is not None:
        where = f"the environment variable {_KEY_VARIABLE}"
        # An env file cannot always hold line breaks: accept them written as \n.
        pem = section.private_key.get_secret_value().replace("\\n", "\n").encode("utf-8")
    else:
        assert section.key_file is not None  # DkimSettings holds exactly one of the two
        path = resolve(section.key_file)
        where = f"dkim.key_file '{path}'"
        pem = _read_key_file(path, where)
    key = _parse_key(pem, where)
    return DkimSigner(domain=section.domain, selector=section.selector, key=key)


def _read_key_file(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{where} not found: fix the path (relative paths are relative to the config file) "
            "or create the key (openssl genrsa -out dkim.pem 2048)"
        ) from None
    except OSError as error:
        raise ConfigError(
            f"cannot read {where} ({error.strerror or error}): let the user running reminders "
            "read it, or set the key in REMINDERS_DKIM__PRIVATE_KEY"
        ) from None


def _parse_key(pem: bytes, where: str) -> rsa.RSAPrivateKey:
    pem = pem.replace(b"\r\n", b"\n").strip() + b"\n"
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise ConfigError(
            f"{where}: the key is protected by a passphrase: write it out without one "
            "(openssl pkey -in KEY -out dkim.pem) and keep that file readable by reminders only"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        # The first line is quoted only when it is a PEM header: anything else may be key.
        first = pem.split(b"\n", 1)[0].decode("ascii", "replace")
        found = (
            f"it starts with {first[:40]!r}"
            if first.startswith("-----")
            else ("it has no '-----BEGIN' line")
        )
        raise ConfigError(
            f"{where}: not a PEM private key ({found}): give the file "
            "'openssl genrsa -out dkim.pem 2048' wrote, from its '-----BEGIN' line to its "
            "'-----END' line"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(
            f"{where}: not an RSA key: emails are signed rsa-sha256, which every receiver "
            "checks: generate an RSA key (openssl genrsa -out dkim.pem 2048)"
        )
    if key.key_size < MIN_KEY_BITS:
        raise ConfigError(
            f"{where}: a {key.key_size}-bit key is too short: receivers ignore keys under "
            f"{MIN_KEY_BITS} bits: generate a 2048-bit key (openssl genrsa -out dkim.pem 2048)"
        )
    return key
