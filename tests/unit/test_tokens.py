"""Signed, expiring address tokens for the links in emails, on a clock that tests move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reminders.tokens import ExpiredLink, InvalidLink, LinkSigner, Purpose

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


def test_another_address_cannot_be_swapped_in(signer: LinkSigner) -> None:
    genuine = signer.sign(Purpose.UNSUBSCRIBE, ADDRESS)
    other = signer.sign(Purpose.UNSUBSCRIBE, "marie@example.com")
    # Marie's payload under Jean's timestamp and signature.
    forged = ".".join([other.split(".")[0], *genuine.split(".")[1:]])

    with pytest.raises(InvalidLink) as caught:
        signer.address(Purpose.UNSUBSCRIBE, forged, VALID_FOR)

    assert type(caught.value) is InvalidLink


@pytest.mark.parametrize("part", [0, 1, 2], ids=["payload", "timestamp", "signature"])
def test_a_tampered_token_is_invalid(signer: LinkSigner, part: int) -> None:
    pieces = signer.sign(Purpose.UNSUBSCRIBE, ADDRESS).split(".")
    middle = len(pieces[part]) // 2
    flipped = "A" if pieces[part][middle] != "A" else "B"
    pieces[part] = pieces[part][:middle] + flipped + pieces[part][middle + 1 :]

    with pytest.raises(InvalidLink) as caught:
        signer.address(Purpose.UNSUBSCRIBE, ".".join(pieces), VALID_FOR)

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
