"""The MIME message of a reminder, read back as a mail client would."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reminders.consent import normalise_address
from reminders.errors import InvalidAddress
from reminders.messages import (
    Draft,
    Envelope,
    Mailbox,
    build,
    mailbox,
    new_message_id,
    parse_mailbox,
)

SENDER = "Agence du Lac <reservations@agence-du-lac.example>"
NOW = datetime(2026, 7, 3, 6, 30, tzinfo=ZoneInfo("Europe/Paris"))
MESSAGE_ID = "<r7.1.0123456789abcdef@agence-du-lac.example>"
#: As long as a signed unsubscribe token gets, and longer than a folded line.
TOKEN = "eyJhIjoiamVhbkBleGFtcGxlLmNvbSJ9.akdW6A." + "x" * 110
UNSUBSCRIBE_URL = f"https://liens.agence-du-lac.example/unsubscribe/{TOKEN}"
UNSUBSCRIBE_MAILTO = "desinscription@agence-du-lac.example"
SUBJECT = "Votre séjour à Annecy approche – réglez le solde dû"


def draft(**overrides: Any) -> Draft:
    """Return a French reminder from the agency to Jean, with unsubscribe links."""
    values: dict[str, Any] = {
        "sender": parse_mailbox(SENDER),
        "recipient": mailbox("jean.dupont@example.com", "Jean Dupont"),
        "reply_to": mailbox("contact@agence-du-lac.example", "Agence du Lac"),
        "subject": SUBJECT,
        "text": "Bonjour Jean,\n\nVotre arrivée est prévue le 10 juillet.\n",
        "html": "<p>Bonjour Jean,</p>\n<p>Votre arrivée est prévue le 10 juillet.</p>\n",
        "language": "fr",
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "unsubscribe_mailto": UNSUBSCRIBE_MAILTO,
    }
    values.update(overrides)
    return Draft(**values)


def envelope(**overrides: Any) -> Envelope:
    return build(draft(**overrides), now=NOW, message_id=MESSAGE_ID)


def parsed(subject: Envelope) -> EmailMessage:
    """Read the wire bytes back with the standard library's modern policy."""
    message = email.message_from_bytes(subject.as_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def header_block(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def header_line(data: bytes, name: bytes) -> bytes:
    """Return one header of the wire bytes, unfolded to a single line."""
    found = re.search(
        rb"^" + name + rb":([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", header_block(data), re.M | re.I
    )
    assert found, f"no {name!r} header"
    return re.sub(rb"\r\n(?=[ \t])", b"", found.group(1)).strip()


def lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").split("\n")


# -- mailbox / parse_mailbox ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param("jean@example.com",
                     Mailbox(name="", address="jean@example.com", domain="example.com",
                             needs_smtputf8=False),
                     id="plain-ascii"),
        pytest.param("Jean.Dupont+ete@Example.COM",
                     Mailbox(name="", address="Jean.Dupont+ete@Example.COM", domain="example.com",
                             needs_smtputf8=False),
                     id="written-as-given-domain-lower-cased-for-the-message-id"),
        pytest.param("jean@Exämple.fr",
                     Mailbox(name="", address="jean@xn--exmple-cua.fr", domain="xn--exmple-cua.fr",
                             needs_smtputf8=False),
                     id="idn-domain-in-ascii-needs-no-smtputf8"),
        pytest.param("josé@example.com",
                     Mailbox(name="", address="josé@example.com", domain="example.com",
                             needs_smtputf8=True),
                     id="non-ascii-local-part-needs-smtputf8"),
    ],
)  # fmt: skip
def test_mailbox(address: str, expected: Mailbox) -> None:
    assert mailbox(address) == expected


@pytest.mark.parametrize(
    ("value", "name", "address"),
    [
        pytest.param(SENDER, "Agence du Lac", "reservations@agence-du-lac.example",
                     id="name-and-address"),
        pytest.param("reservations@agence-du-lac.example", "",
                     "reservations@agence-du-lac.example", id="bare-address"),
        pytest.param('"Dupont, Jean" <jean@example.com>', "Dupont, Jean", "jean@example.com",
                     id="quoted-name-with-a-comma"),
        pytest.param("Agence Élan <contact@Élan.example>", "Agence Élan",
                     "contact@xn--lan-9la.example", id="accented-name-idn-domain"),
    ],
)  # fmt: skip
def test_parse_mailbox(value: str, name: str, address: str) -> None:
    parsed_mailbox = parse_mailbox(value)

    assert (parsed_mailbox.name, parsed_mailbox.address) == (name, address)
    assert parsed_mailbox.domain == address.rpartition("@")[2]


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("jean", id="no-at-sign"),
        pytest.param("jean@", id="no-domain"),
        pytest.param("@example.com", id="no-local-part"),
        pytest.param("jean dupont@example.com", id="space-in-local-part"),
        pytest.param("jean@localhost", id="domain-without-a-dot"),
    ],
)
def test_an_invalid_address_is_refused_quoting_it(address: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        mailbox(address)

    assert repr(address) in str(caught.value)


def test_a_configured_mailbox_without_an_address_is_refused() -> None:
    with pytest.raises(InvalidAddress, match="is not a valid email address"):
        parse_mailbox("Agence du Lac")


# -- new_message_id -------------------------------------------------------------------------


def test_a_message_id_is_on_the_domain_and_carries_the_tag() -> None:
    message_id = new_message_id("r7.1", "agence-du-lac.example")

    assert re.fullmatch(r"<r7\.1\.[0-9a-f]+@agence-du-lac\.example>", message_id)


def test_message_ids_are_unique() -> None:
    ids = {new_message_id("r7.1", "agence-du-lac.example") for _ in range(1000)}

    assert len(ids) == 1000


# -- build: structure --------------------------------------------------------------------------


def test_the_message_is_text_then_html_alternatives_in_utf8() -> None:
    message = parsed(envelope())

    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert lines(parts[0].get_content())[:3] == [
        "Bonjour Jean,",
        "",
        "Votre arrivée est prévue le 10 juillet.",
    ]
    assert "<p>Votre arrivée est prévue le 10 juillet.</p>" in parts[1].get_content()


def test_the_addresses_are_in_from_to_and_reply_to() -> None:
    message = parsed(envelope())

    assert str(message["From"]) == SENDER
    assert str(message["To"]) == "Jean Dupont <jean.dupont@example.com>"
    assert str(message["Reply-To"]) == "Agence du Lac <contact@agence-du-lac.example>"


def test_no_reply_to_when_none_is_given() -> None:
    assert "Reply-To" not in parsed(envelope(reply_to=None))


def test_the_envelope_names_the_bare_addresses_and_the_message_id() -> None:
    subject = envelope()

    assert (subject.sender, subject.recipient) == (
        "reservations@agence-du-lac.example",
        "jean.dupont@example.com",
    )
    assert subject.message_id == MESSAGE_ID
    assert parsed(subject)["Message-ID"] == MESSAGE_ID


def test_an_accented_subject_round_trips_encoded_on_the_wire() -> None:
    subject = envelope()
    data = subject.as_bytes()

    assert str(parsed(subject)["Subject"]) == SUBJECT
    assert b"=?utf-8?" in header_line(data, b"Subject")
    assert header_block(data).isascii()


def test_an_accented_display_name_is_encoded_too() -> None:
    data = envelope(recipient=mailbox("jean@example.com", "Jérôme Dupré")).as_bytes()

    assert header_block(data).isascii()
    assert str(email.message_from_bytes(data, policy=email.policy.default)["To"]) == (
        "Jérôme Dupré <jean@example.com>"
    )


@pytest.mark.parametrize(
    "now",
    [
        pytest.param(NOW, id="paris-summer"),
        pytest.param(datetime(2026, 1, 15, 6, 30, tzinfo=ZoneInfo("America/Toronto")),
                     id="toronto-winter"),
        pytest.param(datetime(2026, 7, 3, 4, 30, tzinfo=UTC), id="utc"),
    ],
)  # fmt: skip
def test_the_date_is_the_instant_with_its_offset(now: datetime) -> None:
    message = parsed(build(draft(), now=now, message_id=MESSAGE_ID))

    dated = message["Date"].datetime
    assert dated == now
    assert dated.utcoffset() == now.utcoffset()


def test_the_date_is_written_with_the_agency_offset() -> None:
    data = envelope().as_bytes()

    assert header_line(data, b"Date") == b"Fri, 03 Jul 2026 06:30:00 +0200"


def test_the_content_language_is_the_drafts() -> None:
    message = parsed(envelope(language="fr"))

    assert message["Content-Language"] == "fr"


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build(draft(), now=datetime(2026, 7, 3, 6, 30), message_id=MESSAGE_ID)


# -- build: one-click unsubscribe (RFC 2369 / RFC 8058) -----------------------------------


def test_list_unsubscribe_has_the_url_and_the_mailto_in_angle_brackets() -> None:
    message = parsed(envelope())

    entries = [e.strip() for e in str(message["List-Unsubscribe"]).split(",")]
    assert entries == [
        f"<{UNSUBSCRIBE_URL}>",
        f"<mailto:{UNSUBSCRIBE_MAILTO}?subject=unsubscribe>",
    ]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_long_unsubscribe_url_is_written_verbatim_never_encoded() -> None:
    assert len(TOKEN) == 150
    data = envelope().as_bytes()

    line = header_line(data, b"List-Unsubscribe")
    assert f"<{UNSUBSCRIBE_URL}>".encode() in data
    assert b"=?" not in line
    assert line.startswith(f"<{UNSUBSCRIBE_URL}>".encode())


def test_the_one_click_post_header_needs_a_url() -> None:
    message = parsed(envelope(unsubscribe_url=None))

    assert message["List-Unsubscribe"] == (f"<mailto:{UNSUBSCRIBE_MAILTO}?subject=unsubscribe>")
    assert "List-Unsubscribe-Post" not in message


def test_no_unsubscribe_headers_without_links() -> None:
    message = parsed(envelope(unsubscribe_url=None, unsubscribe_mailto=None))

    assert "List-Unsubscribe" not in message
    assert "List-Unsubscribe-Post" not in message


# -- build: international addresses --------------------------------------------------------


def test_an_idn_domain_is_written_in_its_ascii_form() -> None:
    subject = envelope(recipient=mailbox("jean@Exämple.fr", "Jean"))
    data = subject.as_bytes()

    assert subject.recipient == "jean@xn--exmple-cua.fr"
    assert b"jean@xn--exmple-cua.fr" in header_line(data, b"To")
    assert header_block(data).isascii()
    assert subject.needs_smtputf8 is False


def test_a_non_ascii_recipient_local_part_needs_smtputf8() -> None:
    subject = envelope(recipient=mailbox("josé@example.com", "José"))
    data = subject.as_bytes()

    assert subject.needs_smtputf8 is True
    assert "josé@example.com".encode() in header_line(data, b"To")


def test_a_non_ascii_sender_local_part_needs_smtputf8() -> None:
    # The agency's sender is also the default mailto of List-Unsubscribe.
    sender = parse_mailbox("Réservations <réservations@agence-du-lac.example>")
    subject = envelope(sender=sender, unsubscribe_mailto=sender.address)

    data = subject.as_bytes()

    assert subject.needs_smtputf8 is True
    assert "réservations@agence-du-lac.example".encode() in header_line(data, b"From")
    assert "mailto:réservations@agence-du-lac.example".encode() in header_line(
        data, b"List-Unsubscribe"
    )


# -- as_bytes: the wire form ----------------------------------------------------------------


def test_every_line_ends_with_crlf() -> None:
    data = envelope().as_bytes()

    assert data.endswith(b"\r\n")
    assert re.search(rb"(?<!\r)\n", data) is None
    assert b"\r\r" not in data


def test_crlf_in_the_body_is_not_doubled() -> None:
    subject = envelope(text="one\r\ntwo\rthree\n")

    body = parsed(subject).get_body(("plain",))

    assert b"\r\r" not in subject.as_bytes()
    assert body is not None
    assert lines(body.get_content())[:3] == ["one", "two", "three"]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(".\n", id="a-lone-dot"),
        pytest.param("Bonjour\n.\nfin\n", id="a-lone-dot-between-lines"),
        pytest.param(".hidden line\n", id="a-line-starting-with-a-dot"),
        pytest.param("From here on\n", id="a-line-starting-with-from"),
    ],
)
def test_a_body_line_that_smtp_could_mangle_survives(text: str) -> None:
    body = parsed(envelope(text=text)).get_body(("plain",))

    assert body is not None
    assert lines(body.get_content()) == lines(text)


def test_a_long_body_line_survives() -> None:
    text = "Votre séjour " + "très " * 60 + "agréable.\n"

    body = parsed(envelope(text=text)).get_body(("plain",))

    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == text
    assert max(len(line) for line in envelope(text=text).as_bytes().split(b"\r\n")) <= 998


def test_the_html_part_keeps_its_markup() -> None:
    html = (
        "<p>Solde&nbsp;: <strong>450,00&nbsp;€</strong> "
        '<a href="https://x.example/?a=1&amp;b=2">payer</a></p>\n'
    )

    body = parsed(envelope(html=html)).get_body(("html",))

    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == html


def test_building_twice_gives_the_same_bytes_but_for_the_boundary() -> None:
    first = envelope().as_bytes()
    second = envelope().as_bytes()

    boundary = re.compile(rb"=_r[0-9a-f]+")
    assert boundary.sub(b"B", first) == boundary.sub(b"B", second)


@pytest.mark.parametrize(
    "address",
    [
        "jean@example.com",
        "Jean.Dupont+ete@Example.COM",
        "o'brien@example.ie",
        "x@agence-du-lac.example",
        "x@123.com",
        "x@sub.sub2.example.co.uk",
        "a" * 64 + "@x.com",
        "a" * 65 + "@x.com",
        "x@foo.local",
        "x@foo.localhost",
        "x@foo.invalid",
        "x@foo.test",
        "x@foo.onion",
        "x@foo.arpa",
        "x@" + "a" * 64 + ".com",
        "x@" + ("a" * 60 + ".") * 4 + "com",
        "x@-foo.com",
        "x@foo-.com",
        "x..y@example.com",
        ".x@example.com",
        "x.@example.com",
        "x@example",
        "x@example.c",
        "x@example.c0m",
    ],
)
def test_the_quick_path_for_plain_addresses_agrees_with_the_full_validation(address: str) -> None:
    """`mailbox` skips email_validator for plain ASCII addresses: never for a bad one."""
    try:
        expected = normalise_address(address)
    except InvalidAddress:
        with pytest.raises(InvalidAddress):
            mailbox(address)
    else:
        found = mailbox(address)
        assert found.address.lower() == expected.lower()
        assert found.domain == expected.rpartition("@")[2]
