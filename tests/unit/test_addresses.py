"""The form an address is known by: how it is compared, signed and sent."""

from __future__ import annotations

import unicodedata

import pytest
from email_validator import EmailNotValidError, validate_email

from reminders.consent import is_plain_address, normalise_address, same_address
from reminders.errors import InvalidAddress

NFD_JOSE = unicodedata.normalize("NFD", "josé")
NFC_JOSE = unicodedata.normalize("NFC", "josé")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param("jean@example.com", "jean@example.com", id="already-normal"),
        pytest.param("jean@EXAMPLE.COM", "jean@example.com", id="domain-lower-cased"),
        pytest.param("jean@Example.Com", "jean@example.com", id="domain-mixed-case"),
        pytest.param("Jean.Dupont@example.com", "Jean.Dupont@example.com",
                     id="local-part-case-kept"),
        pytest.param("JEAN@EXAMPLE.COM", "JEAN@example.com", id="upper-case-local-part-kept"),
        pytest.param("jean+ete@example.com", "jean+ete@example.com", id="plus-tag-kept"),
        pytest.param("j.e.a.n@example.com", "j.e.a.n@example.com", id="dots-kept"),
        pytest.param("jean.dupont@gmail.com", "jean.dupont@gmail.com",
                     id="gmail-dots-are-the-owners-business"),
        pytest.param("jean@Exämple.fr", "jean@xn--exmple-cua.fr", id="idn-domain-to-ascii"),
        pytest.param("jean@EXÄMPLE.FR", "jean@xn--exmple-cua.fr", id="upper-case-idn-domain"),
        pytest.param("jean@xn--exmple-cua.fr", "jean@xn--exmple-cua.fr",
                     id="ascii-form-of-idn-kept"),
        pytest.param("jean@bücher.例え.jp", "jean@xn--bcher-kva.xn--r8jz45g.jp",
                     id="every-idn-label-converted"),
        pytest.param(f"{NFD_JOSE}@example.com", f"{NFC_JOSE}@example.com",
                     id="decomposed-local-part-composed-to-nfc"),
        pytest.param(f"{NFC_JOSE}@example.com", f"{NFC_JOSE}@example.com",
                     id="composed-local-part-kept"),
        pytest.param("JOSÉ@example.com", "JOSÉ@example.com", id="non-ascii-local-case-kept"),
        pytest.param("o'brien@example.ie", "o'brien@example.ie", id="apostrophe-kept"),
    ],
)  # fmt: skip
def test_normalise_address(address: str, expected: str) -> None:
    assert normalise_address(address) == expected


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("jean@example.com", id="ascii"),
        pytest.param("Jean.Dupont+ete@Exämple.FR", id="idn-and-case"),
        pytest.param(f"{NFD_JOSE}@example.com", id="nfd"),
    ],
)
def test_normalising_twice_changes_nothing(address: str) -> None:
    once = normalise_address(address)

    assert normalise_address(once) == once


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("", id="empty"),
        pytest.param("jean", id="no-at-sign"),
        pytest.param("jean@", id="nothing-after-the-at-sign"),
        pytest.param("@example.com", id="nothing-before-the-at-sign"),
        pytest.param("jean@@example.com", id="two-at-signs"),
        pytest.param("jean dupont@example.com", id="space-in-local-part"),
        pytest.param("jean@exa mple.com", id="space-in-domain"),
        pytest.param(" jean@example.com", id="leading-space"),
        pytest.param("jean@example.com.", id="trailing-dot"),
        pytest.param("jean..dupont@example.com", id="two-dots-in-a-row"),
        pytest.param("jean@localhost", id="domain-without-a-dot"),
        pytest.param("Jean Dupont <jean@example.com>", id="a-mailbox-not-an-address"),
    ],
)
def test_an_invalid_address_is_refused_quoting_it(address: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        normalise_address(address)

    message = str(caught.value)
    assert message.startswith(f"{address!r} is not a valid email address: ")
    assert caught.value.exit_code == 1


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param("jean@example.com", "jean@example.com", True, id="identical"),
        pytest.param("Jean@example.com", "jean@example.com", True, id="local-part-case"),
        pytest.param("JEAN@EXAMPLE.COM", "jean@example.com", True, id="whole-address-case"),
        pytest.param("JOSÉ@example.com", "josé@example.com", True, id="non-ascii-case"),
        pytest.param("jean@example.com", "jean+ete@example.com", False, id="plus-tag-differs"),
        pytest.param("jean.dupont@example.com", "jeandupont@example.com", False,
                     id="dots-differ"),
        pytest.param("jean@example.com", "jean@example.org", False, id="other-domain"),
        pytest.param("jean@example.com", "marie@example.com", False, id="other-person"),
    ],
)  # fmt: skip
def test_same_address(a: str, b: str, expected: bool) -> None:
    assert same_address(a, b) is expected
    assert same_address(b, a) is expected


def test_two_spellings_normalise_to_the_same_address() -> None:
    a = normalise_address("Jean.Dupont@Exämple.FR")
    b = normalise_address("jean.dupont@exämple.fr")

    assert a != b
    assert same_address(a, b)


@pytest.mark.parametrize(
    "address",
    [
        "jean@example.com",
        "Jean.Dupont+ete@Example.COM",
        "o'brien@EXAMPLE.ie",
        "x@sub.sub2.example.co.uk",
        "a" * 64 + "@x.com",
        "x@" + ("a" * 60 + ".") * 4 + "com",
        "a" * 65 + "@x.com",
        "x@foo.local",
        "x@foo.test",
        "x@-foo.com",
        "x..y@example.com",
        "x@example",
        "x@example.c0m",
        "zoë@example.fr",
        "x@münchen.example",
    ],
)
def test_the_quick_path_of_normalise_address_agrees_with_email_validator(address: str) -> None:
    """Plain ASCII addresses skip email_validator: the result is the same to the letter."""
    try:
        valid = validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        assert not is_plain_address(address)
        with pytest.raises(InvalidAddress):
            normalise_address(address)
    else:
        assert normalise_address(address) == f"{valid.local_part}@{valid.ascii_domain}"
