"""Opaque, expiring address tokens for the links in emails, on a clock that tests move."""

from __future__ import annotations

import base64
import contextlib
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from itsdangerous import URLSafeTimedSerializer

from reminders.tokens import CLOCK_SKEW, ExpiredLink, InvalidLink, LinkSigner, Purpose

SECRET = "a-long-random-test-secret-0123456789"
OTHER_SECRET = "another-long-random-secret-9876543210"
ADDRESS = "jean.dupont@example.com"
SIGNED_AT = datetime(2026, 7, 3, 6, 30, tzinfo=UTC)
VALID_FOR = timedelta(days=365)


class MovableClock:
    """A clock that stays where a test puts it."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def now(self) -> datetime:
        return self.instant


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(SIGNED_AT)


@pytest.fixture
def signer(clock: MovableClock) -> LinkSigner:
    return LinkSigner(SECRET, clock)


@pytest.mark.parametrize(
    "address",
    [
        pytest.param(ADDRESS, id="ascii"),
        pytest.param("Jean.Dupont+ete@example.com", id="case-and-tag-kept"),
        pytest.param("josé@xn--exmple-cua.fr", id="non-ascii-local-part"),
    ],
)
def test_a_token_names_its_address(signer: LinkSigner, address: str) -> None:
    token = signer.sign(Purpose.UNSUBSCRIBE, address)

    assert signer.address(Purpose.UNSUBSCRIBE, token, VALID_FOR) == address


def test_a_token_is_url_safe(signer: LinkSigner) -> None:
    token = signer.sign(Purpose.UNSUBSCRIBE, "josé+été@example.com")

    assert token.isascii()
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_tokens_of_different_addresses_differ(signer: LinkSigner) -> None:
    first = signer.sign(Purpose.UNSUBSCRIBE, "jean@example.com")
    second = signer.sign(Purpose.UNSUBSCRIBE, "marie@example.com")

    assert first != second


def test_another_deployments_secret_does_not_verify_it(clock: MovableClock) -> None:
    token = LinkSigner(SECRET, clock).sign(Purpose.UNSUBSCRIBE, ADDRESS)

    with pytest.raises(InvalidLink) as caught:
        LinkSigner(OTHER_SECRET, clock).address(Purpose.UNSUBSCRIBE, token, VALID_FOR)

    assert type(caught.value) is InvalidLink
    assert str(caught.value) == "This link is not valid: ask for a new one."


def _bytes_of(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _token_of(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_another_address_cannot_be_swapped_in(signer: LinkSigner) -> None:
    genuine = _bytes_of(signer.sign(Purpose.UNSUBSCRIBE, ADDRESS))
    other = _bytes_of(signer.sign(Purpose.UNSUBSCRIBE, "marie@example.com"))
    # Marie's encrypted address under Jean's version, time, IV and MAC.
    forged = genuine[:25] + other[25:-32] + genuine[-32:]

    with pytest.raises(InvalidLink) as caught:
        signer.address(Purpose.UNSUBSCRIBE, _token_of(forged), VALID_FOR)

    assert type(caught.value) is InvalidLink


#: Byte offsets in a token: version, time, IV, encrypted text, MAC.
@pytest.mark.parametrize(
    "offset", [0, 5, 12, 30, -1], ids=["version", "time", "iv", "ciphertext", "mac"]
)
def test_a_tampered_token_is_invalid(signer: LinkSigner, offset: int) -> None:
    data = bytearray(_bytes_of(signer.sign(Purpose.UNSUBSCRIBE, ADDRESS)))
    data[offset] ^= 0x01

    with pytest.raises(InvalidLink) as caught:
        signer.address(Purpose.UNSUBSCRIBE, _token_of(bytes(data)), VALID_FOR)

    assert type(caught.value) is InvalidLink


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param("", id="empty"),
        pytest.param("abc", id="one-word"),
        pytest.param("a.b.c", id="three-dotted-words"),
        pytest.param("....", id="dots-only"),
        pytest.param("é", id="non-ascii"),
        pytest.param("%2F..%2Fetc%2Fpasswd", id="path-traversal"),
        pytest.param("x" * 5000, id="very-long"),
        pytest.param("eyJhIjoiamVhbkBleGFtcGxlLmNvbSJ9", id="payload-without-signature"),
    ],
)
def test_garbage_is_an_invalid_link(signer: LinkSigner, garbage: str) -> None:
    with pytest.raises(InvalidLink) as caught:
        signer.address(Purpose.UNSUBSCRIBE, garbage, VALID_FOR)

    assert type(caught.value) is InvalidLink


@pytest.mark.parametrize(
    "age",
    [
        pytest.param(timedelta(0), id="at-once"),
        pytest.param(timedelta(days=30), id="a-month-later"),
        pytest.param(VALID_FOR - timedelta(seconds=1), id="a-second-before-max-age"),
    ],
)
def test_a_token_works_until_max_age(
    signer: LinkSigner, clock: MovableClock, age: timedelta
) -> None:
    token = signer.sign(Purpose.UNSUBSCRIBE, ADDRESS)

    clock.instant = SIGNED_AT + age

    assert signer.address(Purpose.UNSUBSCRIBE, token, VALID_FOR) == ADDRESS


@pytest.mark.parametrize(
    "age",
    [
        pytest.param(VALID_FOR + timedelta(seconds=1), id="a-second-after-max-age"),
        pytest.param(VALID_FOR + timedelta(days=1), id="a-day-after-max-age"),
        pytest.param(timedelta(days=3650), id="ten-years-later"),
    ],
)
def test_a_token_expires_after_max_age(
    signer: LinkSigner, clock: MovableClock, age: timedelta
) -> None:
    token = signer.sign(Purpose.UNSUBSCRIBE, ADDRESS)

    clock.instant = SIGNED_AT + age

    with pytest.raises(ExpiredLink) as caught:
        signer.address(Purpose.UNSUBSCRIBE, token, VALID_FOR)

    assert str(caught.value) == "This link has expired: ask for a new one."


def test_an_expired_link_is_an_invalid_link() -> None:
    assert issubclass(ExpiredLink, InvalidLink)


def test_the_age_is_counted_from_signing_not_from_the_clock_alone(clock: MovableClock) -> None:
    signer = LinkSigner(SECRET, clock)
    clock.instant = SIGNED_AT + timedelta(days=100)
    token = signer.sign(Purpose.UNSUBSCRIBE, ADDRESS)

    clock.instant = SIGNED_AT + timedelta(days=100) + VALID_FOR - timedelta(seconds=1)

    assert signer.address(Purpose.UNSUBSCRIBE, token, VALID_FOR) == ADDRESS


def test_a_shorter_max_age_expires_the_same_token(signer: LinkSigner, clock: MovableClock) -> None:
    token = signer.sign(Purpose.UNSUBSCRIBE, ADDRESS)
    clock.instant = SIGNED_AT + timedelta(days=2)

    assert signer.address(Purpose.UNSUBSCRIBE, token, timedelta(days=3)) == ADDRESS
    with pytest.raises(ExpiredLink):
        signer.address(Purpose.UNSUBSCRIBE, token, timedelta(days=1))


# -- opaque tokens: no address readable in a URL -----------------------------------------------


def _decodings(token: str) -> list[bytes]:
    """Every reading of `token` (or of a dotted part) as base64, padded or not."""
    found = [token.encode()]
    for part in [token, *token.split(".")]:
        for alphabet in (base64.urlsafe_b64decode, base64.b64decode):
            with contextlib.suppress(ValueError):
                found.append(alphabet(part + "=" * (-len(part) % 4)))
    return found


@pytest.mark.parametrize(
    "address",
    [
        pytest.param(ADDRESS, id="ascii"),
        pytest.param("josé@xn--exmple-cua.fr", id="non-ascii-local-part"),
    ],
)
@pytest.mark.parametrize("purpose", list(Purpose))
def test_no_address_is_readable_in_a_token(
    signer: LinkSigner, address: str, purpose: Purpose
) -> None:
    token = signer.sign_payload(purpose, {"a": address, "n": "secret-part"})

    for decoded in _decodings(token):
        for needle in (address, address.split("@")[0], "example", "secret-part"):
            assert needle.encode() not in decoded
            assert needle.encode("utf-8") not in zlib_inflated(decoded)


def zlib_inflated(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error:
        return b""


def test_two_tokens_of_one_address_differ(signer: LinkSigner) -> None:
    assert signer.sign(Purpose.UNSUBSCRIBE, ADDRESS) != signer.sign(Purpose.UNSUBSCRIBE, ADDRESS)


def test_a_token_carries_the_secret_part_of_a_confirmation_link(signer: LinkSigner) -> None:
    token = signer.sign_payload(Purpose.CONFIRM, {"a": ADDRESS, "n": "s3cr3t"})

    assert signer.payload(Purpose.CONFIRM, token, VALID_FOR) == {"a": ADDRESS, "n": "s3cr3t"}


def test_a_token_of_one_purpose_is_invalid_for_another(signer: LinkSigner) -> None:
    token = signer.sign(Purpose.UNSUBSCRIBE, ADDRESS)

    with pytest.raises(InvalidLink) as caught:
        signer.address(Purpose.CONFIRM, token, VALID_FOR)

    assert type(caught.value) is InvalidLink


# -- links sent before tokens were opaque -----------------------------------------------------


def _legacy_token(purpose: Purpose, payload: dict[str, str], at: datetime) -> str:
    """A token as the former format made it (itsdangerous, the address readable)."""
    with freeze_time(at):
        token: str = URLSafeTimedSerializer(SECRET, salt=f"reminders.{purpose}").dumps(payload)
    return token


def test_a_link_of_the_former_format_works_until_it_expires(
    signer: LinkSigner, clock: MovableClock
) -> None:
    legacy = _legacy_token(Purpose.UNSUBSCRIBE, {"a": ADDRESS}, SIGNED_AT)
    confirm = _legacy_token(Purpose.CONFIRM, {"a": ADDRESS, "n": "nonce"}, SIGNED_AT)
    clock.instant = SIGNED_AT + VALID_FOR - timedelta(seconds=1)

    assert signer.address(Purpose.UNSUBSCRIBE, legacy, VALID_FOR) == ADDRESS
    assert signer.payload(Purpose.CONFIRM, confirm, VALID_FOR) == {"a": ADDRESS, "n": "nonce"}
    with pytest.raises(InvalidLink):
        signer.address(Purpose.CONFIRM, legacy, VALID_FOR)

    clock.instant = SIGNED_AT + VALID_FOR + timedelta(seconds=1)

    with pytest.raises(ExpiredLink):
        signer.address(Purpose.UNSUBSCRIBE, legacy, VALID_FOR)


# -- clocks of two hosts that disagree --------------------------------------------------------


@pytest.mark.parametrize("ahead", [timedelta(seconds=1), timedelta(minutes=1), CLOCK_SKEW])
@pytest.mark.parametrize("legacy", [False, True], ids=["opaque", "former-format"])
def test_a_token_made_a_little_ahead_of_this_clock_is_good(
    clock: MovableClock, ahead: timedelta, legacy: bool
) -> None:
    if legacy:
        token = _legacy_token(Purpose.UNSUBSCRIBE, {"a": ADDRESS}, SIGNED_AT + ahead)
    else:
        token = LinkSigner(SECRET, MovableClock(SIGNED_AT + ahead)).sign(
            Purpose.UNSUBSCRIBE, ADDRESS
        )
    signer = LinkSigner(SECRET, clock)

    assert signer.address(Purpose.UNSUBSCRIBE, token, VALID_FOR) == ADDRESS
    assert signer.address(Purpose.UNSUBSCRIBE, token, None) == ADDRESS


@pytest.mark.parametrize("legacy", [False, True], ids=["opaque", "former-format"])
def test_a_token_made_far_ahead_of_this_clock_is_invalid_not_expired(
    clock: MovableClock, legacy: bool
) -> None:
    ahead = SIGNED_AT + CLOCK_SKEW + timedelta(seconds=2)
    if legacy:
        token = _legacy_token(Purpose.UNSUBSCRIBE, {"a": ADDRESS}, ahead)
    else:
        token = LinkSigner(SECRET, MovableClock(ahead)).sign(Purpose.UNSUBSCRIBE, ADDRESS)
    signer = LinkSigner(SECRET, clock)

    for max_age in (VALID_FOR, None):
        with pytest.raises(InvalidLink) as caught:
            signer.address(Purpose.UNSUBSCRIBE, token, max_age)
        assert type(caught.value) is InvalidLink


def test_tokens_are_fernet_tokens_that_cryptography_reads_with_the_derived_key(
    signer: LinkSigner,
) -> None:
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"reminders.link.unsubscribe"
    ).derive(SECRET.encode())
    token = signer.sign(Purpose.UNSUBSCRIBE, ADDRESS)

    padded = (token + "=" * (-len(token) % 4)).encode()
    fernet = Fernet(base64.urlsafe_b64encode(key))
    assert fernet.decrypt(padded) == f"\n{ADDRESS}".encode()
    assert fernet.extract_timestamp(padded) == int(SIGNED_AT.timestamp())


def test_each_token_of_an_address_has_its_own_iv(signer: LinkSigner) -> None:
    tokens = [signer.sign(Purpose.UNSUBSCRIBE, ADDRESS) for _ in range(300)]

    ivs = {base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))[9:25] for t in tokens}
    assert len(ivs) == 300
    assert {signer.address(Purpose.UNSUBSCRIBE, t, VALID_FOR) for t in tokens} == {ADDRESS}
