"""Bounces: what delivery reports and complaints say about the addresses written to.

A report is read by the first of these that finds one in it:

1. an RFC 3464 delivery status notification (or its RFC 6533 UTF-8 form): one finding for
   each recipient that failed or was delayed;
2. an RFC 5965 feedback report (ARF): a complaint about the recipient;
3. the plain-text bounce of a server that writes neither (Exim's default, qmail, old
   Postfix), as recognised by flufl.bounce.

`read_message` is pure; `read_path` reads the messages of an .eml file, an mbox or a Maildir.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import errors as email_errors
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from enum import StrEnum
from pathlib import Path

import flufl.bounce

from .errors import ReminderError


class Outcome(StrEnum):
    FAILED = "failed"  #: permanent failure (status 5.x.x): the address takes no mail
    DELAYED = "delayed"  #: temporary failure (status 4.x.x): counted, never acted on
    COMPLAINT = "complaint"  #: the recipient reported the message as unwanted (RFC 5965)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """What one report says about one recipient."""

    #: the original recipient as the report writes it (no "rfc822;" prefix, no angle brackets)
    address: str
    outcome: Outcome
    #: RFC 3463 status code, e.g. "5.1.1" (None for complaints and text bounces that give none)
    status: str | None
    #: one line: the server's diagnostic, or "complaint (abuse) from <reporter>"; never empty
    diagnostic: str
    #: who wrote the report: Reporting-MTA, a feedback report's User-Agent, the bouncing host
    reporter: str | None
    #: Message-ID of the original message, when the report includes its headers
    message_id: str | None
    #: when the reporting server received the original message, when the report says
    arrived_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unreadable:
    """A message that was skipped, and why."""

    where: str  #: e.g. "bounce.eml", "inbox.mbox message 3", "Maildir/new/1234.host"
    reason: str  #: one line: why it could not be read, and that it was skipped


class NotAReport(ReminderError):
    """The message is neither a bounce nor a complaint: there is nothing to do with it."""


class BounceSourceError(ReminderError):
    """Bounces cannot be read from there: give an .eml file, an mbox file or a Maildir folder."""


_STATUS_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ORIGINAL_MESSAGES = frozenset({"message/rfc822", "message/global", "message/global-headers"})
_ORIGINAL_HEADERS = "text/rfc822-headers"
_NOT_FAILED = frozenset({"delivered", "relayed", "expanded"})
#: Feedback types that mean "do not write to me"; not-spam, virus, auth-failure do not.
_COMPLAINTS = frozenset({"abuse", "fraud", "other", "unspecified"})
_BROKEN_MIME = (
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.CloseBoundaryNotFoundDefect,
    email_errors.MultipartInvariantViolationDefect,
    email_errors.NoBoundaryInMultipartDefect,
)
_MAILDIR_FOLDERS = ("cur", "new")
_WHAT_TO_GIVE = "give an .eml file, an mbox file or a Maildir folder"
_CHECK = "check that it exists and is readable"
#: How many lines after an address a plain-text bounce may give its reason in.
_DETAIL_LINES = 8

_STATUS = re.compile(r"([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_TYPED = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9-]*)\s*;(.*)", re.DOTALL)
#: An SMTP reply: basic code, "-" on all lines but the last, then maybe an enhanced code.
_REPLY = re.compile(r"([45]\d\d)([ -])(?:([245]\.\d{1,3}\.\d{1,3})(?!\S))?\s*")
_REPLY_INSIDE = re.compile(r"(?<![\w.])[45]\d\d[ -]([245]\.\d{1,3}\.\d{1,3})(?!\S)")
_QMAIL_STATUS = re.compile(r"\(#([245]\.\d{1,3}\.\d{1,3})\)")
_COPY_FOLLOWS = re.compile(r"\s*-{2,} ")
_MESSAGE_ID_LINE = re.compile(r"^Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_UTF8_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_AUTO_REPLY_SUBJECT = re.compile(
    r"out of (the )?office|automatic reply|auto[- ]?reply|r[ée]ponse automatique"
    r"|abwesenheit|respuesta autom[aá]tica|risposta automatica",
    re.IGNORECASE,
)

Fields = dict[str, list[str]]


def read_message(message: EmailMessage) -> list[Finding]:
    """Return what one report says about its recipients (raise NotAReport saying why not).

    A delivery report whose recipients were all delivered or relayed, or a feedback report
    that is no complaint (not-spam, virus, auth-failure), gives [].
    """
    parts = list(_parts(message))
    kinds = [part.get_content_type() for part in parts]
    for part, kind in zip(parts, kinds, strict=True):
        if kind in _STATUS_PARTS:
            return _read_delivery_status(part, parts)
    for part, kind in zip(parts, kinds, strict=True):
        if kind == "message/feedback-report":
            return _read_feedback(message, part, parts)
    if _is_auto_reply(message):
        raise NotAReport("an automatic reply (out of office), not a bounce")
    findings = _read_text_bounce(message, parts)
    if findings:
        return findings
    raise NotAReport(_what_it_is(message, parts))


def _read_delivery_status(part: Message, parts: list[Message]) -> list[Finding]:
    blocks = _field_blocks(part)
    per_message, recipients = (blocks[0], blocks[1:]) if blocks else ({}, [])
    reporter = _untyped(_first(per_message, "reporting-mta"))
    arrived_at = _date(_first(per_message, "arrival-date"))
    message_id = _original_message_id(parts) or _first(per_message, "x-original-message-id")
    findings = []
    readable = 0
    for fields in recipients:
        address = _recipient(fields)
        action = (_first(fields, "action") or "").lower()
        status = _status(_first(fields, "status"))
        if address is None or not (action or status):
            continue
        readable += 1
        diagnostic = _reply_text(_untyped(_first(fields, "diagnostic-code")) or "")
        status = status or _status_in(diagnostic)
        outcome = _outcome(action, status)
        if outcome is None:
            continue
        if not diagnostic:
            verb = action or outcome.value
            diagnostic = f"{verb} with status {status}" if status else f"{verb}, no diagnostic"
        findings.append(
            Finding(
                address=address,
                outcome=outcome,
                status=status,
                diagnostic=diagnostic,
                reporter=reporter,
                message_id=message_id,
                arrived_at=arrived_at,
            )
        )
    if not readable:
        raise NotAReport(
            "a damaged delivery report: no recipient in it has an address and an Action or a Status"
        )
    return findings


def _outcome(action: str, status: str | None) -> Outcome | None:
    """Tell what a recipient's Action and Status mean, or None when delivery did not fail.

    A message given up on after temporary failures (Action failed, Status 4.x.x: Postfix
    writes this when the queue lifetime ends) is DELAYED: the address itself was never
    refused, which is no ground for an opt-out. Without an Action, the status class decides.
    """
    status_class = status[0] if status else None
    if action in _NOT_FAILED:
        return None
    if action == "delayed":
        return Outcome.DELAYED
    if action == "failed":
        return Outcome.DELAYED if status_class == "4" else Outcome.FAILED
    return {"5": Outcome.FAILED, "4": Outcome.DELAYED}.get(status_class or "")


def _read_feedback(message: Message, part: Message, parts: list[Message]) -> list[Finding]:
    """Return the complaint of an RFC 5965 feedback report.

    The complaining address is each Original-Rcpt-To; without one, the To of the original
    message when it names a single address (with several, who complained is unknown).
    """
    fields: Fields = {}
    for block in _field_blocks(part):
        for name, values in block.items():
            fields.setdefault(name, []).extend(values)
    kind = (_first(fields, "feedback-type") or "unspecified").lower()
    if kind not in _COMPLAINTS:
        return []
    addresses = [a for value in fields.get("original-rcpt-to", []) if (a := _address(value))]
    if not addresses:
        addresses = _original_recipient(parts)
    if not addresses:
        raise NotAReport(
            "a complaint that does not say who complained: no Original-Rcpt-To, and the"
            " original message has no single To address"
        )
    reporter = (
        _first(fields, "user-agent")
        or _untyped(_first(fields, "reporting-mta"))
        or _domain(_sender(message))
    )
    arrived_at = _date(_first(fields, "arrival-date") or _first(fields, "received-date"))
    message_id = _original_message_id(parts)
    diagnostic = f"complaint ({kind}) from {reporter}" if reporter else f"complaint ({kind})"
    return [
        Finding(
            address=address,
            outcome=Outcome.COMPLAINT,
            status=None,
            diagnostic=diagnostic,
            reporter=reporter,
            message_id=message_id,
            arrived_at=arrived_at,
        )
        for address in dict.fromkeys(addresses)
    ]


def _read_text_bounce(message: EmailMessage, parts: list[Message]) -> list[Finding]:
    """Return the failures of a plain-text bounce, as flufl.bounce detects them.

    The status and diagnostic come from the text near the address: an SMTP reply
    ("550 5.1.1 ...") or qmail's "(#5.1.1)"; a permanent failure whose reply turns out
    to be 4.x.x is DELAYED, as in a delivery report.
    """
    compat = _as_compat32(message)
    if not getaddresses([str(compat.get("From", ""))]):
        return []  # no bounce lacks a From, and flufl.bounce's Yale detector fails on one
    temporary, permanent = flufl.bounce.all_failures(compat)
    failed = {_text(address): "failed" for address in permanent}
    delayed = {_text(address): "delayed" for address in temporary if address not in permanent}
    lines = "\n".join(_texts(parts)).splitlines()
    folded = [line.casefold() for line in lines]
    sender = _sender(message)
    message_id = _original_message_id(parts)

    def first_mention(address: str) -> int:
        wanted = address.casefold()
        return next((i for i, line in enumerate(folded) if wanted in line), len(lines))

    findings = []
    for address, action in sorted(
        (failed | delayed).items(), key=lambda item: (first_mention(item[0]), item[0])
    ):
        status, diagnostic = _text_detail(lines, first_mention(address))
        outcome = _outcome(action, status) or Outcome.FAILED
        if not diagnostic:
            kind = "permanent" if outcome is Outcome.FAILED else "temporary"
            diagnostic = f"{kind} failure reported by {sender or 'a server that gives no name'}"
        findings.append(
            Finding(
                address=address,
                outcome=outcome,
                status=status,
                diagnostic=diagnostic,
                reporter=_domain(sender),
                message_id=message_id,
                arrived_at=None,
            )
        )
    return findings


def _text_detail(lines: list[str], start: int) -> tuple[str | None, str | None]:
    """Return the status and diagnostic a text bounce gives in the lines from `start`."""
    for index in range(start, min(start + _DETAIL_LINES, len(lines))):
        line = lines[index]
        if index > start and _COPY_FOLLOWS.match(line):
            break  # the returned copy of the message begins
        stripped = line.strip()
        inside = _REPLY_INSIDE.search(line)
        if inside or _REPLY.match(stripped):
            reply = [line[inside.start() :] if inside else stripped]
            # Indented lines right after it continue it (a wrapped or multi-line reply).
            for following in lines[index + 1 : index + _DETAIL_LINES]:
                if not following.strip() or not following[0].isspace():
                    break
                reply.append(following)
            text = _reply_text(" ".join(reply))
            return _status_in(text), text
        qmail = _QMAIL_STATUS.search(line)
        if qmail:
            return qmail.group(1), _one_line(stripped)
    return None, None


def _reply_text(text: str) -> str:
    """Return a diagnostic on one line, the codes of a multi-line reply given once.

    "550-5.1.1 No such 550-5.1.1 user 550 5.1.1 here" becomes "550 5.1.1 No such user here".
    """
    line = _one_line(text)
    first = _REPLY.match(line)
    if first is None or first.group(2) != "-":
        return line
    basic, _, enhanced = first.groups()
    repeated = rf"{basic}[ -]{re.escape(enhanced)}(?!\S)" if enhanced else rf"{basic}[ -]"
    rest = re.sub(rf"(?<!\S){repeated}", " ", line[first.end() :])
    code = f"{basic} {enhanced}" if enhanced else basic
    return _one_line(f"{code} {rest}")


def _status_in(text: str) -> str | None:
    reply = _REPLY.match(text)
    if reply and reply.group(3):
        return reply.group(3)
    inside = _REPLY_INSIDE.search(text)
    return inside.group(1) if inside else None


def _is_auto_reply(message: Message) -> bool:
    subject = _header(message, "Subject") or ""
    marked = any(_header(message, name) for name in ("X-Autoreply", "X-Autorespond"))
    return marked or bool(_AUTO_REPLY_SUBJECT.search(subject))


def _what_it_is(message: Message, parts: list[Message]) -> str:
    if not message.keys():
        return "not an email message: it has no headers"
    if any(isinstance(defect, _BROKEN_MIME) for part in parts for defect in part.defects):
        return (
            "a damaged message (its MIME parts are cut short or broken), no report readable in it"
        )
    if (_header(message, "Auto-Submitted") or "").lower().startswith("auto-replied"):
        return "an automatic reply that reports no failed delivery"
    return "an ordinary message: no delivery report, feedback report or bounce text in it"


# -- reading the parts ------------------------------------------------------------------------


def _parts(message: Message) -> Iterator[Message]:
    """Yield the message and its parts, without entering attached messages or report fields."""
    yield message
    if message.get_content_maintype() == "multipart":
        for part in _subparts(message):
            yield from _parts(part)


def _subparts(message: Message) -> list[Message]:
    """Return the parts of a multipart, or of a message/* part (the email package's view)."""
    payload = message.get_payload()
    return (
        [part for part in payload if isinstance(part, Message)] if isinstance(payload, list) else []
    )


def _field_blocks(part: Message) -> list[Fields]:
    """Return the field groups of a report part: per-message fields first, then the others.

    The email package splits a message/delivery-status part into one sub-message per group;
    for message/global-delivery-status it gives one, with the other groups left in its body.
    """
    blocks = []
    for sub in _subparts(part):
        blocks.append(_fields(sub))
        rest = sub.get_payload(decode=True)  # bytes: the UTF-8 of a global report kept whole
        if isinstance(rest, bytes) and rest.strip():
            for group in re.split(rb"\r?\n[ \t]*\r?\n", rest):
                if group.strip():
                    blocks.append(
                        _fields(BytesHeaderParser(policy=email.policy.default).parsebytes(group))
                    )
    return blocks


def _fields(block: Message) -> Fields:
    fields: Fields = {}
    for name, value in block.raw_items():
        fields.setdefault(name.lower(), []).append(_one_line(_unescape(str(value))))
    return fields


def _first(fields: Fields, name: str) -> str | None:
    return next((value for value in fields.get(name, []) if value), None)


def _recipient(fields: Fields) -> str | None:
    """Return the recipient as first given: Original-Recipient, else Final-Recipient."""
    for name in ("original-recipient", "final-recipient"):
        for value in fields.get(name, []):
            address = _address(value)
            if address:
                return address
    return None


def _address(value: str) -> str | None:
    """Return the address of "rfc822; <addr>" (or utf-8; or none), or None for other types."""
    typed = _TYPED.fullmatch(value)
    if typed:
        kind, value = typed.group(1).lower(), typed.group(2)
        if kind == "utf-8":
            value = _UTF8_ESCAPE.sub(_unicode_character, value)
        elif kind != "rfc822":
            return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value if "@" in value else None


def _unicode_character(escape: re.Match[str]) -> str:
    """Return the character of an RFC 6533 escape ("\\x{E9}"), or the escape if it is none."""
    code = int(escape.group(1), 16)
    return chr(code) if code <= 0x10FFFF else escape.group(0)


def _untyped(value: str | None) -> str | None:
    """Return a field's value without its type ("dns; mx.example.org" -> "mx.example.org")."""
    if value is None:
        return None
    typed = _TYPED.fullmatch(value)
    return (typed.group(2).strip() if typed else value.strip()) or None


def _status(value: str | None) -> str | None:
    match = _STATUS.match(value.strip()) if value else None
    return match.group(1) if match else None


def _date(value: str | None) -> datetime | None:
    """Return a timezone-aware date; "-0000" (zone unknown) is read as UTC."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _original_message_id(parts: list[Message]) -> str | None:
    """Return the Message-ID of the original message a report returns, if it does."""
    for headers in _originals(parts):
        message_id = _header(headers, "Message-ID")
        if message_id:
            return message_id
    # Text bounces quote the original message in their body.
    for text in _texts(parts):
        quoted = _MESSAGE_ID_LINE.search(text)
        if quoted:
            return quoted.group(1)
    return None


def _original_recipient(parts: list[Message]) -> list[str]:
    """Return the To of the original message when it names one address, else []."""
    for headers in _originals(parts):
        to = _header(headers, "To") or ""
        addresses = [address for _, address in getaddresses([to]) if "@" in address]
        return addresses if len(addresses) == 1 else []
    return []


def _originals(parts: list[Message]) -> Iterator[Message]:
    """Yield the original messages (or their headers alone) that a report returns."""
    for part in parts:
        kind = part.get_content_type()
        if kind in _ORIGINAL_MESSAGES:
            yield from _subparts(part)[:1]
        elif kind == _ORIGINAL_HEADERS:
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                yield BytesHeaderParser(policy=email.policy.default).parsebytes(data)


def _texts(parts: Iterable[Message]) -> Iterator[str]:
    for part in parts:
        if part.get_content_type() == "text/plain":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    yield data.decode(charset, "replace")
                except LookupError:  # a charset Python does not know
                    yield data.decode("utf-8", "replace")


def _header(message: Message, name: str) -> str | None:
    """Return a header on one line, or None; one the email package cannot parse is read raw."""
    try:
        value = message.get(name)
    except Exception:
        wanted = name.lower()
        value = next((raw for key, raw in message.raw_items() if key.lower() == wanted), None)
    text = _one_line(str(value)) if value is not None else ""
    return text or None


def _sender(message: Message) -> str | None:
    value = _header(message, "From") or ""
    return next((address for _, address in getaddresses([value]) if address), None)


def _domain(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.rpartition("@")[2] or None


def _as_compat32(message: EmailMessage) -> Message:
    """Return `message` as the email package's compat32 API, which flufl.bounce expects.

    With that policy a header is plain text: a malformed From cannot make the
    email package raise inside a detector.
    """
    data = message.as_bytes(policy=email.policy.compat32)
    return email.message_from_bytes(data, policy=email.policy.compat32)


def _text(address: bytes) -> str:
    return address.decode("utf-8", "replace")


def _unescape(value: str) -> str:
    """Return text the email package read from bytes with its non-ASCII bytes as UTF-8."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- reading files ----------------------------------------------------------------------------


def read_path(path: Path) -> Iterator[tuple[str, list[Finding] | Unreadable]]:
    """Yield every message of an .eml file, an mbox file or a Maildir folder, read.

    Each comes with where it was found: the file name, "NAME message N" for the Nth
    message of an mbox, "FOLDER/new/FILE" in a Maildir (cur/ then new/, each in file-name
    order, which is delivery order). A message that cannot be read, or is no report, is
    yielded as `Unreadable`, never raised. A file that starts with "From " (or is empty)
    is an mbox; any other file is one message. Raises `BounceSourceError` at once when
    `path` does not exist or is none of the three.
    """
    if path.is_dir():
        return _read_files(_maildir_files(path))
    if not path.exists():
        raise BounceSourceError(f"no such file or folder: '{path}': {_WHAT_TO_GIVE}")
    if not path.is_file():
        raise BounceSourceError(f"'{path}' is not a regular file: {_WHAT_TO_GIVE}")
    try:
        with path.open("rb") as file:
            is_mbox = file.read(5) in (b"From ", b"")  # an emptied mbox is still one
    except OSError as error:
        raise BounceSourceError(f"cannot read '{path}' ({error.strerror}): {_CHECK}") from None
    return _read_mbox(path) if is_mbox else _read_files([(path.name, path)])


def _maildir_files(folder: Path) -> list[tuple[str, Path]]:
    if not any((folder / sub).is_dir() for sub in _MAILDIR_FOLDERS):
        raise BounceSourceError(
            f"'{folder}' is a folder but not a Maildir (no cur/ or new/ in it): {_WHAT_TO_GIVE}"
        )
    name = folder.resolve().name
    try:
        return [
            (f"{name}/{sub}/{file.name}", file)
            for sub in _MAILDIR_FOLDERS
            if (folder / sub).is_dir()
            for file in sorted((folder / sub).iterdir())
            if not file.name.startswith(".") and file.is_file()
        ]
    except OSError as error:
        raise BounceSourceError(f"cannot list '{folder}' ({error.strerror}): {_CHECK}") from None


def _read_files(files: list[tuple[str, Path]]) -> Iterator[tuple[str, list[Finding] | Unreadable]]:
    for where, file in files:
        try:
            data = file.read_bytes()
        except OSError as error:
            yield where, _unreadable_file(where, error)
            continue
        yield where, _read_bytes(where, data)


def _read_mbox(path: Path) -> Iterator[tuple[str, list[Finding] | Unreadable]]:
    try:
        box = mailbox.mbox(path, create=False)
        keys = box.keys()  # reads the whole file once, to find where each message starts
    except OSError as error:
        raise BounceSourceError(f"cannot read '{path}' ({error.strerror}): {_CHECK}") from None
    try:
        for number, key in enumerate(keys, start=1):
            where = f"{path.name} message {number}"
            try:
                data = box.get_bytes(key)
            except OSError as error:
                yield where, _unreadable_file(where, error)
                continue
            yield where, _read_bytes(where, data)
    finally:
        box.close()


def _read_bytes(where: str, data: bytes) -> list[Finding] | Unreadable:
    try:
        message = email.message_from_bytes(data, policy=email.policy.default)
        return read_message(message)
    except NotAReport as error:
        return Unreadable(where=where, reason=f"{error}; skipped")
    # The email package raises assorted errors (IndexError, AttributeError, ...) on broken
    # input; one such message must not stop the others.
    except Exception as error:
        reason = f"the email package could not read it ({type(error).__name__}: {error}); skipped"
        return Unreadable(where=where, reason=_one_line(reason))


def _unreadable_file(where: str, error: OSError) -> Unreadable:
    return Unreadable(where=where, reason=f"cannot be read ({error.strerror or error}); skipped")
