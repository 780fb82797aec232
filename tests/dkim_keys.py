"""RSA keys for the DKIM tests, generated once a test session, and the DNS they need.

A real DNS zone is the one thing the tests cannot have: `dns_answering` stands in
for it, answering the TXT look-up of the selector the way a published record would.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from reminders.dkim import DkimSigner


@cache
def rsa_pem(bits: int = 2048, *, traditional: bool = False) -> str:
    """Return the PEM of a fresh RSA key (PKCS#8, or PKCS#1 as older openssl writes)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    form = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if traditional
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()).decode(
        "ascii"
    )


@cache
def encrypted_pem() -> str:
    key = serialization.load_pem_private_key(rsa_pem().encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode("ascii")


@cache
def ec_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def signer(domain: str = "agence-du-lac.example", selector: str = "reminders") -> DkimSigner:
    key = serialization.load_pem_private_key(rsa_pem().encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return DkimSigner(domain=domain, selector=selector, key=key)


def dns_answering(*signers: DkimSigner) -> Callable[..., bytes | None]:
    """Return a `dnsfunc` for `dkim.verify`: the TXT records `signers` ask to publish."""
    zone = {f"{s.record_name}.".encode(): s.txt_value().encode() for s in signers}

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return zone.get(name)

    return lookup
