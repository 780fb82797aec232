"""Building the MIME message of a reminder (standard library `email`), with no I/O.

Every message is `multipart/alternative` (the text part, then the HTML part), in
UTF-8, with the agency's From and optional Reply-To, a Date in the agency's zone, a
Message-ID on the sender's domain, and the RFC 8058 one-click unsubscribe headers.
International domain names are written in their ASCII (IDNA) form, so any server
takes them; only an address whose local part is not ASCII needs SMTPUTF8.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, parseaddr
from urllib.parse import quote

from .config import AgencySettings
from .consent import normalise_address
from .queue import Rendered

#: Headers that hold URLs: folded only between their entries, never encoded.
_URL_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})


class _Policy(EmailPolicy):
    """SMTP's policy, except that URL headers are never RFC 2047-encoded.

    The standard folder encodes a header word longer than a line (a signed link),
    which mail clients then cannot read as a URL; these headers are ASCII, so they
    are folded at their commas instead (RFC 5322 allows up to 998 characters a line).
    """

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _URL_HEADERS:
            entries = [entry.strip() for entry in str(value).split(",")]
            return f"{name}: " + f",{self.linesep} ".join(entries) + self.linesep
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _URL_HEADERS:
            return self.fold(name, value).encode("utf-8" if self.utf8 else "ascii")
        return bytes(super().fold_binary(name, value))


_SMTP = _Policy() + SMTP
_SMTPUTF8 = _SMTP.clone(utf8=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mailbox:
    """An address ready for SMTP: its domain in ASCII, and whether it needs SMTPUTF8."""

    name: str
    address: str
    domain: str
    needs_smtputf8: bool

    def header(self) -> Address:
        local, _, domain = self.address.rpartition("@")
        return Address(display_name=self.name, username=local, domain=domain)


def mailbox(address: str, name: str = "") -> Mailbox:
    """Return `address` ready for SMTP, or raise `InvalidAddress` saying why.

    It is written as the contact wrote it, so what was sent reads like what the
    queue shows; only a domain that is not ASCII is turned into its IDNA form.
    """
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
    """A message and its SMTP envelope."""

    sender: str
    recipient: str
    message: EmailMessage
    message_id: str
    #: some address in it is not ASCII: it goes only to a server offering SMTPUTF8
    needs_smtputf8: bool = False

    def as_bytes(self) -> bytes:
        """Return the message as it goes on the wire (CRLF line ends)."""
        policy = _SMTPUTF8 if self.needs_smtputf8 else _SMTP
        return self.message.as_bytes(policy=policy)


def agency_email(
    agency: AgencySettings,
    recipient: Mailbox,
    content: Rendered,
    *,
    now: datetime,
    tag: str,
    unsubscribe_url: str | None = None,
) -> Envelope:
    """Build an email of `agency`: its From and Reply-To, dated in its time zone.

    With `unsubscribe_url` (emails to contacts), the List-Unsubscribe headers carry it
    and the agency's unsubscribe mailto; `tag` makes the Message-ID traceable.
    """
    sender = parse_mailbox(agency.sender)
    mailto = parse_mailbox(agency.unsubscribe_mailto or agency.sender).address
    draft = Draft(
        sender=sender,
        recipient=recipient,
        reply_to=parse_mailbox(agency.reply_to) if agency.reply_to else None,
        subject=content.subject,
        text=content.text,
        html=content.html,
        language=content.locale,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=mailto if unsubscribe_url else None,
    )
    return build(
        draft, now=now.astimezone(agency.zone), message_id=new_message_id(tag, sender.domain)
    )


def new_message_id(tag: str, domain: str) -> str:
    """Return a unique Message-ID on `domain`; `tag` makes it traceable to the item."""
    return f"<{tag}.{secrets.token_hex(8)}@{domain}>"


def build(draft: Draft, *, now: datetime, message_id: str) -> Envelope:
    """Return the MIME message of `draft`, dated `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("build needs a timezone-aware instant")
    mailboxes = [draft.sender, draft.recipient, *([draft.reply_to] if draft.reply_to else [])]
    utf8 = any(m.needs_smtputf8 for m in mailboxes)
    mailto = draft.unsubscribe_mailto
    if mailto and not mailto.isascii() and not utf8:
        mailto = None  # a non-ASCII mailto alone would make every message need SMTPUTF8
    message = EmailMessage(policy=_SMTPUTF8 if utf8 else _SMTP)
    message["From"] = draft.sender.header()
    message["To"] = draft.recipient.header()
    if draft.reply_to is not None:
        message["Reply-To"] = draft.reply_to.header()
    message["Subject"] = draft.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    unsubscribe = []
    if draft.unsubscribe_url:
        unsubscribe.append(f"<{draft.unsubscribe_url}>")
    if mailto:
        unsubscribe.append(f"<mailto:{mailto}?subject={quote('unsubscribe')}>")
    if unsubscribe:
        message["List-Unsubscribe"] = ", ".join(unsubscribe)
    if draft.unsubscribe_url:
        # RFC 8058: the URL takes a POST with this body and unsubscribes at once.
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(_crlf_free(draft.text), subtype="plain", cte="quoted-printable")
    message.add_alternative(_crlf_free(draft.html), subtype="html", cte="quoted-printable")
    # After the body: setting the content drops every Content-* header set before.
    message["Content-Language"] = draft.language
    return Envelope(
        sender=draft.sender.address,
        recipient=draft.recipient.address,
        message=message,
        message_id=message_id,
        needs_smtputf8=utf8,
    )


def _crlf_free(body: str) -> str:
    # The email package writes its own line ends; a stray CR would be doubled.
    return body.replace("\r\n", "\n").replace("\r", "\n")
