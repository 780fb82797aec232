"""Building the MIME message of a reminder, as wire bytes, with no I/O.

Every message is `multipart/alternative` (the text part, then the HTML part, both
UTF-8 quoted-printable), with the agency's From and optional Reply-To, a Date in
the agency's zone, a Message-ID on the sender's domain, and the RFC 8058 one-click
unsubscribe headers. International domain names are written in their ASCII (IDNA)
form, so any server takes them; only an address whose local part is not ASCII
needs SMTPUTF8.

The bytes are written here rather than by `email.message`: the standard library
takes about a millisecond a message, as long as the SMTP transaction itself
(benchmarks/dispatch.py). Every header value that comes from data (a name, a
subject) is checked first — no control character, raw or inside an RFC 2047
encoded word — and then written either as plain printable ASCII or as encoded
words of the whole text, so nothing in the data can start a header of its own.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING
from urllib.parse import quote
from zoneinfo import ZoneInfo

import markupsafe

from .config import AgencySettings
from .consent import is_plain_address, normalise_address
from .errors import ReminderError
from .headers import header_problem
from .queue import Rendered

if TYPE_CHECKING:
    from .dkim import DkimSigner

#: An atom of RFC 5322: a display name made of these words needs no quoting.
_ATOM_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$")
#: An ASCII address whose local part is a dot-atom of the usual characters and whose
#: domain has at least two labels of letters, digits and inner hyphens, ending in letters.
#: A language tag (RFC 5646), loosely: what Content-Language may hold.
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")
#: What a planned email's body holds where its unsubscribe link goes (the template
#: variable `unsubscribe_url`): the link is made when the email is sent, as the header's.
UNSUBSCRIBE_URL_PLACEHOLDER = "%UNSUBSCRIBE_URL%"
#: The same for the link to the contact's email settings page (`settings_url`).
SETTINGS_URL_PLACEHOLDER = "%SETTINGS_URL%"
#: Longest header line we write before folding, and an encoded word's payload.
_LINE = 78
_WORD_BYTES = 45
#: MIME boundaries: "=_" never occurs in quoted-printable text (it writes "=" as "=3D"),
#: so a boundary needs to differ from the other boundaries of its message only; a
#: counter after a random prefix of the process does, without a system call each.
_BOUNDARY_PREFIX = secrets.token_hex(6)
_BOUNDARIES = itertools.count(1)


class UnsafeHeader(ReminderError):
    """A value cannot go into an email header: correct it, then send the email again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Mailbox:
    """An address ready for SMTP: its domain in ASCII, and whether it needs SMTPUTF8."""

    name: str
    address: str
    domain: str
    needs_smtputf8: bool


def mailbox(address: str, name: str = "") -> Mailbox:
    """Return `address` ready for SMTP, or raise `InvalidAddress` saying why.

    It is written as the contact wrote it, so what was sent reads like what the
    queue shows; only a domain that is not ASCII is turned into its IDNA form.
    A plain ASCII address of the usual shape (what imports let in) skips the full
    validation, a tenth of a millisecond an email; anything else gets it.
    """
    if is_plain_address(address):
        domain = address.rpartition("@")[2].lower()
        return Mailbox(name=name, address=address, domain=domain, needs_smtputf8=False)
    local, _, ascii_domain = normalise_address(address).rpartition("@")
    domain = address.strip().rpartition("@")[2]
    if not domain.isascii():
        domain = ascii_domain
    return Mailbox(
        name=name,
        address=f"{local}@{domain}",
        domain=ascii_domain,
        needs_smtputf8=not local.isascii(),
    )


def parse_mailbox(value: str) -> Mailbox:
    """Read a configured mailbox written `Name <address>` (or a bare address)."""
    name, address = parseaddr(value)
    return mailbox(address, name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    """What one message says and to whom, before headers are added."""

    sender: Mailbox
    recipient: Mailbox
    reply_to: Mailbox | None = None
    subject: str
    text: str
    html: str
    language: str
    #: https:// URL of the one-click unsubscribe page, and the mailto: address
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A message, as it goes on the wire (CRLF line ends), and its SMTP envelope."""

    sender: str
    recipient: str
    data: bytes
    message_id: str
    #: some address in it is not ASCII: it goes only to a server offering SMTPUTF8
    needs_smtputf8: bool = False

    def as_bytes(self) -> bytes:
        """Return the message as it goes on the wire."""
        return self.data


@dataclass(frozen=True, slots=True, kw_only=True)
class AgencySender:
    """An agency's side of every email it sends: From, Reply-To, unsubscribe mailto, zone."""

    sender: Mailbox
    reply_to: Mailbox | None
    #: the List-Unsubscribe mailto (default: the sender's address)
    mailto: str
    zone: ZoneInfo


def agency_sender(agency: AgencySettings) -> AgencySender:
    """Return the agency's configured mailboxes, parsed once per agency."""
    return agency.derived("sender", _parse_sender)


def _parse_sender(agency: AgencySettings) -> AgencySender:
    return AgencySender(
        sender=parse_mailbox(agency.sender),
        reply_to=parse_mailbox(agency.reply_to) if agency.reply_to else None,
        mailto=parse_mailbox(agency.unsubscribe_mailto or agency.sender).address,
        zone=agency.zone,
    )


def agency_draft(
    sender: AgencySender,
    recipient: Mailbox,
    content: Rendered,
    unsubscribe_url: str | None = None,
    settings_url: str | None = None,
) -> Draft:
    """Return what an email of the agency says; with `unsubscribe_url`, its unsubscribe links.

    The link goes in the List-Unsubscribe headers and where the body holds
    `UNSUBSCRIBE_URL_PLACEHOLDER` (the footer of every shipped template);
    `settings_url` where it holds `SETTINGS_URL_PLACEHOLDER`.
    """
    text, html = content.text, content.html
    for placeholder, url in (
        (UNSUBSCRIBE_URL_PLACEHOLDER, unsubscribe_url),
        (SETTINGS_URL_PLACEHOLDER, settings_url),
    ):
        link = url or ""
        text = text.replace(placeholder, link)
        html = html.replace(placeholder, str(markupsafe.escape(link)))
    return Draft(
        sender=sender.sender,
        recipient=recipient,
        reply_to=sender.reply_to,
        subject=content.subject,
        text=text,
        html=html,
        language=content.locale,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=sender.mailto if unsubscribe_url else None,
    )


def agency_email(
    agency: AgencySettings,
    recipient: Mailbox,
    content: Rendered,
    *,
    now: datetime,
    tag: str,
    dkim: DkimSigner | None,
    unsubscribe_url: str | None = None,
    settings_url: str | None = None,
) -> Envelope:
    """Build an email of `agency`: its From and Reply-To, dated in its time zone.

    With `unsubscribe_url` (emails to contacts), the List-Unsubscribe headers carry it
    and the agency's unsubscribe mailto; `tag` makes the Message-ID traceable; with
    `dkim`, it is signed.
    """
    sender = agency_sender(agency)
    draft = agency_draft(sender, recipient, content, unsubscribe_url, settings_url)
    envelope = build(
        draft,
        now=now.astimezone(sender.zone),
        message_id=new_message_id(tag, sender.sender.domain),
    )
    return dkim.sign(envelope, now=now) if dkim else envelope


def new_message_id(tag: str, domain: str) -> str:
    """Return a unique Message-ID on `domain`; `tag` makes it traceable to the item."""
    return f"<{tag}.{secrets.token_hex(8)}@{domain}>"


def build(draft: Draft, *, now: datetime, message_id: str) -> Envelope:
    """Return the MIME message of `draft`, dated `now` (timezone-aware).

    Raise `UnsafeHeader` when a name or the subject holds a control character.
    """
    if now.tzinfo is None:
        raise ValueError("build needs a timezone-aware instant")
    mailboxes = [draft.sender, draft.recipient, *([draft.reply_to] if draft.reply_to else [])]
    utf8 = any(m.needs_smtputf8 for m in mailboxes)
    mailto = draft.unsubscribe_mailto
    if mailto and not mailto.isascii() and not utf8:
        mailto = None  # a non-ASCII mailto alone would make every message need SMTPUTF8
    language = draft.language if _LANGUAGE.match(draft.language) else "en"
    boundary = f"=_r{_BOUNDARY_PREFIX}{next(_BOUNDARIES):x}"
    lines = [
        "From: " + address_header(draft.sender, "sender"),
        "To: " + address_header(draft.recipient, "recipient"),
    ]
    if draft.reply_to is not None:
        lines.append("Reply-To: " + address_header(draft.reply_to, "reply-to"))
    lines += [
        "Subject: " + text_header(draft.subject, "subject", len("Subject: ")),
        "Date: " + format_datetime(now),
        "Message-ID: " + message_id,
    ]
    unsubscribe = []
    if draft.unsubscribe_url:
        unsubscribe.append(f"<{draft.unsubscribe_url}>")
    if mailto:
        unsubscribe.append(f"<mailto:{mailto}?subject={quote('unsubscribe')}>")
    if unsubscribe:
        # Folded between entries only: a URL must reach mail programs unbroken.
        lines.append("List-Unsubscribe: " + ",\r\n ".join(unsubscribe))
    if draft.unsubscribe_url:
        # RFC 8058: the URL takes a POST with this body and unsubscribes at once.
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    lines += [
        "Content-Language: " + language,
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        "",
    ]
    head = "\r\n".join(lines).encode("utf-8" if utf8 else "ascii")
    data = b"".join(
        [
            head,
            _part(boundary, "plain", draft.text),
            _part(boundary, "html", draft.html),
            f"--{boundary}--\r\n".encode("ascii"),
        ]
    )
    return Envelope(
        sender=draft.sender.address,
        recipient=draft.recipient.address,
        data=data,
        message_id=message_id,
        needs_smtputf8=utf8,
    )


def _part(boundary: str, subtype: str, body: str) -> bytes:
    # The text is normalised to LF, encoded (quoted-printable keeps lines under 76
    # characters and escapes what is not ASCII), then written with CRLF.
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    # The line end before the next boundary belongs to the boundary (RFC 2046).
    return (
        (
            f"--{boundary}\r\n"
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        + encoded
        + b"\r\n"
    )


def address_header(box: Mailbox, what: str) -> str:
    """Return `Name <address>` for a header, the name quoted or encoded as it needs."""
    if not box.name:
        return box.address
    return f"{_phrase(box.name, what)} <{box.address}>"


def _phrase(name: str, what: str) -> str:
    _check(name, f"the {what}'s name")
    if name.isascii() and "=?" not in name and name.isprintable():
        if _ATOM_PHRASE.match(name) and name.strip() == name and "  " not in name:
            return name
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return _encoded_words(name)


def text_header(value: str, what: str, start: int = 0) -> str:
    """Return an unstructured header value (a subject): plain ASCII folded, or encoded."""
    _check(value, f"the {what}")
    plain = value.isascii() and value.isprintable() and "=?" not in value
    if plain and value.strip() == value and all(len(w) < _LINE - 1 for w in value.split(" ")):
        return _fold(value, start)
    return _encoded_words(value)


def _check(value: str, what: str) -> None:
    problem = header_problem(value)
    if problem:
        raise UnsafeHeader(f"{what} {value!r} {problem}")


def _fold(value: str, start: int) -> str:
    """Fold plain text at spaces so lines stay under 78 characters when they can."""
    lines: list[str] = []
    line = ""
    width = start
    for word in value.split(" "):
        if line and width + len(line) + 1 + len(word) > _LINE:
            lines.append(line)
            line, width = word, 1
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


def _encoded_words(value: str) -> str:
    """Write `value` as base64 encoded words (RFC 2047), one a line, split between characters.

    Every word fits a line of its own (75 characters at most).
    """
    data = value.encode("utf-8")
    words: list[bytes] = []
    start = 0
    while start < len(data) or not words:
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and 0x80 <= data[end] < 0xC0:  # inside a character
            end -= 1
        words.append(data[start:end])
        start = end
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)
