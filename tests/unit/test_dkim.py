"""DKIM signatures: what is signed, that dkimpy verifies it, and the key's configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dkim
import pytest
from freezegun import freeze_time
from pydantic import ValidationError

from dkim_keys import dns_answering, ec_pem, encrypted_pem, rsa_pem, signer
from reminders.config import DkimSettings, Settings, load_settings
from reminders.dkim import SIGNED_FIELDS, DkimSigner, UnsignableMessage, load_signer
from reminders.errors import ConfigError
from reminders.messages import Envelope
from unit.test_messages import NOW, envelope

DOMAIN = "agence-du-lac.example"


def signed(**overrides: Any) -> Envelope:
    return signer().sign(envelope(**overrides), now=NOW)


def verifies(data: bytes, *signers: DkimSigner) -> bool:
    result: bool = dkim.verify(data, dnsfunc=dns_answering(*(signers or (signer(),))))
    return result


def tag(data: bytes, name: bytes) -> bytes:
    value = data.split(b"\r\n\r\n", 1)[0].split(b"DKIM-Signature:", 1)[1]
    fields = dict(f.strip().split(b"=", 1) for f in value.split(b";") if b"=" in f)
    return b"".join(fields[name].split())


def test_the_signature_is_the_one_dkimpy_writes_byte_for_byte() -> None:
    message = envelope().as_bytes()

    with freeze_time(NOW):
        expected = dkim.sign(
            message,
            b"reminders",
            DOMAIN.encode(),
            rsa_pem().encode(),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_FIELDS) * 2,
        )

    assert signer().signature(message, now=NOW) == expected


def test_a_signed_message_verifies_relaxed_relaxed_rsa_sha256() -> None:
    data = signed().as_bytes()

    assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert verifies(data)
    assert tag(data, b"d") == DOMAIN.encode() and tag(data, b"s") == b"reminders"
    assert tag(data, b"t") == str(int(NOW.timestamp())).encode()


def test_every_header_the_spec_names_is_signed_and_over_signed() -> None:
    names = tag(signed().as_bytes(), b"h").split(b":")

    for name in (b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe",
                 b"list-unsubscribe-post"):  # fmt: skip
        assert names.count(name) == 2, name


def test_absent_headers_are_not_listed() -> None:
    data = signed(reply_to=None, unsubscribe_url=None, unsubscribe_mailto=None).as_bytes()

    names = set(tag(data, b"h").split(b":"))

    assert names == {b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
                     b"content-type"}  # fmt: skip
    assert verifies(data)


def test_the_envelope_keeps_its_addresses_and_message_id() -> None:
    plain = envelope()
    sent = signer().sign(plain, now=NOW)

    assert (sent.sender, sent.recipient, sent.message_id, sent.needs_smtputf8) == (
        plain.sender,
        plain.recipient,
        plain.message_id,
        plain.needs_smtputf8,
    )
    assert sent.as_bytes().endswith(plain.as_bytes())


@pytest.mark.parametrize(
    ("change", "still_valid"),
    [
        pytest.param(
            lambda d: d.replace(b"Subject: ", b"Subject: [SPAM] ", 1), False, id="subject-changed"
        ),
        pytest.param(
            lambda d: b"From: Attacker <a@evil.example>\r\n" + d, False, id="second-from-on-top"
        ),
        pytest.param(
            lambda d: d.replace(
                b"\r\n\r\n", b"\r\nList-Unsubscribe: <https://evil.example/u>\r\n\r\n", 1
            ),
            False,
            id="second-list-unsubscribe",
        ),
        pytest.param(lambda d: d.replace(b"Bonjour Jean", b"Bonjour Paul"), False, id="body"),
        pytest.param(
            lambda d: b"Received: from relay.example by mx.example; Fri, 3 Jul 2026\r\n" + d,
            True,
            id="received-added-by-a-relay",
        ),
        pytest.param(
            lambda d: d.replace(b"\r\nDate: ", b"\r\nDate:     ", 1), True, id="whitespace-relaxed"
        ),
    ],
)
def test_changes_after_signing(change: Any, still_valid: bool) -> None:
    data = signed().as_bytes()

    assert verifies(change(data)) is still_valid


def test_another_key_published_under_the_selector_fails() -> None:
    other = DkimSigner(domain=DOMAIN, selector="reminders", key=_other_key())

    assert not verifies(signed().as_bytes(), other)


def _other_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_a_message_dkimpy_cannot_read_is_unsignable() -> None:
    with pytest.raises(UnsignableMessage, match="cannot be signed with DKIM"):
        signer().signature(b"not a header\r\n\r\nbody\r\n", now=NOW)


@pytest.mark.parametrize(
    ("sender", "aligned"),
    [
        ("agence-du-lac.example", True),
        ("AGENCE-DU-LAC.EXAMPLE", True),
        ("news.agence-du-lac.example", True),
        ("xagence-du-lac.example", False),
        ("agence-du-lac.example.evil", False),
        ("chalets-laurentides.example", False),
        ("example", False),
    ],
)
def test_alignment_is_the_signing_domain_or_under_it(sender: str, aligned: bool) -> None:
    assert signer().aligns(sender) is aligned


def test_the_dns_record_is_zone_file_strings_of_at_most_255_characters() -> None:
    record = signer().dns_record()

    name, strings = record.split(" IN TXT ")
    parts = strings.strip('"').split('" "')
    assert name == f"reminders._domainkey.{DOMAIN}."
    assert all(len(p) <= 255 for p in parts) and len(parts) == 2
    assert "".join(parts) == signer().txt_value()
    assert signer().txt_value().startswith("v=DKIM1; k=rsa; p=MII")


# -- configuration ----------------------------------------------------------------------


def dkim_section(**values: Any) -> DkimSettings:
    settings = Settings(dkim={"domain": DOMAIN, "selector": "reminders", **values})
    assert settings.dkim is not None
    return settings.dkim


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        pytest.param({}, "no key: set key_file", id="no-key"),
        pytest.param(
            {"key_file": "dkim.pem", "private_key": "PEM"}, "given twice", id="file-and-env"
        ),
        pytest.param({"key_file": "k", "domain": "localhost"}, "not a DNS name", id="one-label"),
        pytest.param({"key_file": "k", "domain": "a b.example"}, "not a DNS name", id="space"),
        pytest.param({"key_file": "k", "domain": "é.example"}, "xn--", id="not-ascii"),
        pytest.param({"key_file": "k", "selector": "-x"}, "not a DNS name", id="bad-selector"),
    ],
)
def test_bad_dkim_sections_are_refused(values: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        dkim_section(**values)


def test_names_are_normalised() -> None:
    section = dkim_section(key_file="k", domain="Agence-du-Lac.Example.", selector="Mail.2026")

    assert (section.domain, section.selector) == (DOMAIN, "mail.2026")


def test_the_key_is_not_read_from_the_file(tmp_path: Path) -> None:
    config = tmp_path / "reminders.toml"
    config.write_text(f'[dkim]\ndomain = "{DOMAIN}"\nselector = "s"\nprivate_key = "x"\n')

    with pytest.raises(ConfigError, match="REMINDERS_DKIM__PRIVATE_KEY"):
        load_settings(config)


def load(section: DkimSettings, folder: Path) -> DkimSigner:
    return load_signer(section, lambda value: folder / value)


@pytest.mark.parametrize(
    "pem",
    [
        pytest.param(rsa_pem(), id="pkcs8"),
        pytest.param(rsa_pem(traditional=True), id="pkcs1"),
        pytest.param(rsa_pem().replace("\n", "\r\n"), id="crlf"),
        pytest.param(rsa_pem().replace("\n", "\\n"), id="escaped-newlines"),
    ],
)
def test_a_key_from_the_environment_signs(pem: str, tmp_path: Path) -> None:
    loaded = load(dkim_section(private_key=pem), tmp_path)

    assert loaded.key_bits == 2048
    assert verifies(loaded.sign(envelope(), now=NOW).as_bytes(), loaded)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        pytest.param(None, ["not found", "openssl genrsa"], id="missing"),
        pytest.param("garbage\n", ["not a PEM private key", "no '-----BEGIN' line"], id="garbage"),
        pytest.param(
            "".join(rsa_pem().splitlines()[1:-1]), ["no '-----BEGIN' line"], id="body-only"
        ),
        pytest.param("", ["not a PEM private key"], id="empty"),
        pytest.param(encrypted_pem(), ["passphrase"], id="encrypted"),
        pytest.param(ec_pem(), ["not an RSA key"], id="ec-key"),
        pytest.param(rsa_pem()[:400] + rsa_pem()[-30:], ["not a PEM private key"], id="cut"),
    ],
)
def test_a_key_file_that_cannot_sign_is_one_line_saying_what_to_do(
    content: str | None, fragments: list[str], tmp_path: Path
) -> None:
    if content is not None:
        (tmp_path / "dkim.pem").write_text(content)

    with pytest.raises(ConfigError) as raised:
        load(dkim_section(key_file="dkim.pem"), tmp_path)

    message = str(raised.value)
    assert "\n" not in message and str(tmp_path / "dkim.pem") in message
    for fragment in fragments:
        assert fragment in message
    assert rsa_pem().splitlines()[1][:20] not in message  # no key material quoted


def test_an_unreadable_key_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "dkim.pem").mkdir()  # reading a folder fails like a permission problem does

    with pytest.raises(ConfigError, match=r"cannot read dkim\.key_file"):
        load(dkim_section(key_file="dkim.pem"), tmp_path)


def test_a_bad_key_in_the_environment_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable REMINDERS_DKIM__PRIVATE_KEY"):
        load(dkim_section(private_key="nonsense"), tmp_path)
