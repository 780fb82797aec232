"""Mail transports behind one `Mailer` protocol: SMTP (smtplib) and a Maildir folder.

A transport either accepts a message or raises a `DeliveryError` that says what
kind of failure it was, because that decides what happens to the item:

- `TransientFailure`: not delivered, try again later (server unreachable, a 4xx
  reply). `stops_batch` is set when the next message would fail the same way
  (connection refused, login refused), so a batch does not hammer a dead server.
- `PermanentFailure`: refused for good (a 5xx reply about this message or
  recipient); `enhanced` carries the RFC 3463 code, e.g. "5.1.1".
- `UncertainDelivery`: the whole message was handed over but the server's final
  reply never came. It may have been delivered: a person must decide.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import mailbox
import re
import smtplib
import ssl
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

from .config import Settings
from .errors import ReminderError
from .messages import Envelope

T = TypeVar("T")

#: One message's outcome in a batch: its tag, and None when the server accepted it.
Outcome = tuple[T, "DeliveryError | None"]
#: A message to hand over, with its tag.
Tagged = tuple[T, "Envelope"]
#: What a broken connection leaves for a new one: the next message and those pulled after it.
Resume = tuple[Tagged[T], list[Tagged[T]]] | None

#: RFC 3463 enhanced status code, after the reply's own 3-digit code if it is there
_ENHANCED = re.compile(rb"^\s*(?:[245]\d\d[ -])?\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


class DeliveryError(ReminderError):
    """The message was not delivered."""

    def __init__(self, message: str, *, code: int | None = None, reply: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reply = reply
        self.enhanced = enhanced_code(reply)


class TransientFailure(DeliveryError):
    """Not delivered this time: it is retried later."""

    def __init__(
        self, message: str, *, code: int | None = None, reply: str = "", stops_batch: bool = False
    ) -> None:
        super().__init__(message, code=code, reply=reply)
        self.stops_batch = stops_batch


class PermanentFailure(DeliveryError):
    """Refused for good: it is not retried."""


class UncertainDelivery(DeliveryError):
    """Handed over, but the server did not confirm: it may have been delivered."""


def enhanced_code(reply: str | bytes) -> str | None:
    """Return the RFC 3463 enhanced status code a reply starts with ('5.1.1'), or None."""
    data = reply.encode("utf-8", "replace") if isinstance(reply, str) else reply
    match = _ENHANCED.match(data)
    return ".".join(part.decode() for part in match.groups()) if match else None


class Mailer(Protocol):
    """Hands messages to a mail transport; one instance serves one batch."""

    def send(self, envelope: Envelope) -> None:
        """Deliver `envelope`, or raise a `DeliveryError` saying what went wrong."""
        ...

    def send_batch(self, messages: Iterable[tuple[T, Envelope]]) -> Iterator[Outcome[T]]:
        """Deliver `messages` in order; yield each tag with None or its `DeliveryError`.

        `messages` is pulled lazily, so a caller may build each message only when the
        transport wants it. A transport that stops early (the server went away) yields
        the error of every message it pulled, then stops pulling.
        """
        ...

    def close(self) -> None:
        """End the batch: close any connection (never raises)."""
        ...


def one_by_one(
    send: Callable[[Envelope], None], messages: Iterable[tuple[T, Envelope]]
) -> Iterator[Outcome[T]]:
    """`Mailer.send_batch` for a transport that hands over one message at a time."""
    for tag, envelope in messages:
        try:
            send(envelope)
        except DeliveryError as error:
            yield tag, error
            if isinstance(error, TransientFailure) and error.stops_batch:
                return
        else:
            yield tag, None


class MaildirMailer:
    """Writes each message as a file in a Maildir folder instead of sending it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, envelope: Envelope) -> None:
        try:
            box = mailbox.Maildir(self.folder, create=True)
            box.add(envelope.as_bytes())
        except OSError as error:
            advice = (
                "free space on its disk"
                if error.errno in (errno.ENOSPC, errno.EDQUOT)
                else "check mail.maildir and that the folder is writable"
            )
            raise TransientFailure(
                f"cannot write to the maildir '{self.folder}': {error.strerror or error}: {advice}",
                stops_batch=True,
            ) from None

    def send_batch(self, messages: Iterable[tuple[T, Envelope]]) -> Iterator[Outcome[T]]:
        return one_by_one(self.send, messages)

    def close(self) -> None:
        pass


class _Connection(smtplib.SMTP):
    """smtplib's client, with DATA split so a lost final reply is told apart."""

    def data_uncertain_after_sending(self, payload: bytes) -> tuple[int, bytes]:
        """Send DATA; raise `UncertainDelivery` if the reply to the final dot is lost."""
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        return self.end_data_uncertain(payload)

    def end_data_uncertain(self, payload: bytes) -> tuple[int, bytes]:
        """Send the message after a 354; raise `UncertainDelivery` if the last reply is lost."""
        self.send(_dot_stuffed(payload) + b".\r\n")
        try:
            return self.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            raise _uncertain(error) from None


def _uncertain(error: BaseException) -> UncertainDelivery:
    return UncertainDelivery(
        f"the mail server did not confirm the message ({error}): it may have been delivered"
    )


def _options(envelope: Envelope) -> list[str]:
    return ["SMTPUTF8", "BODY=8BITMIME"] if envelope.needs_smtputf8 else []


def _commands(envelope: Envelope) -> bytes:
    """MAIL, RCPT and DATA in one piece, as RFC 2920 lets a client write them."""
    extra = "".join(f" {option}" for option in _options(envelope))
    commands = f"MAIL FROM:<{envelope.sender}>{extra}\r\nRCPT TO:<{envelope.recipient}>\r\nDATA\r\n"
    return commands.encode("utf-8" if extra else "ascii")


class _TlsConnection(_Connection, smtplib.SMTP_SSL):
    """Implicit TLS from the first byte (port 465)."""


def _dot_stuffed(payload: bytes) -> bytes:
    """Return the message as DATA carries it: CRLF line ends, leading dots doubled."""
    data = payload
    bare = data.replace(b"\r\n", b"")
    if b"\r" in bare or b"\n" in bare:  # not CRLF throughout (`messages.build` always is)
        data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    data = data.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class SmtpMailer:
    """Sends over SMTP, reusing one connection for every message of a batch."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "none",
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
        ca_file: Path | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout_s = timeout_s
        self.ca_file = ca_file
        self.local_hostname = local_hostname
        self._connection: _Connection | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, envelope: Envelope) -> None:
        for _, error in self.send_batch([(None, envelope)]):
            if error is not None:
                raise error

    def send_batch(self, messages: Iterable[tuple[T, Envelope]]) -> Iterator[Outcome[T]]:
        """Deliver `messages` on one connection, reused from the previous batch if alive.

        With a server that offers PIPELINING (RFC 2920), a message's body and final
        dot go in one write with the next message's MAIL, RCPT and DATA, and the four
        replies are read together: one round trip a message, and the message after
        is pulled (built) while the server answers. A message whose body went out
        and whose final reply never came is `UncertainDelivery`, as one at a time.
        """
        source = iter(messages)
        first = next(source, None)
        if first is None:
            return
        reused = self._connection is not None
        try:
            connection = self._connect()
            if not connection.has_extn("pipelining"):
                if reused:
                    connection = self._live_connection()
                yield from one_by_one(self._one, itertools.chain([first], source))
                return
        except TransientFailure as error:
            yield first[0], error
            return
        while True:
            resume = yield from self._pipeline(connection, first, source, reused=reused)
            if resume is None:
                return
            # The connection broke before `first` was handed over: a new one takes it.
            first, pulled = resume
            source = itertools.chain(pulled, source)
            reused = False
            try:
                connection = self._connect()
            except TransientFailure as error:
                yield first[0], error
                return

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._connection.quit()
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.close()
        self._connection = None

    def _connect(self) -> _Connection:
        if self._connection is not None:
            return self._connection
        try:
            connection: _Connection
            if self.security == "tls":
                connection = _TlsConnection(
                    self.host,
                    self.port,
                    local_hostname=self.local_hostname,
                    timeout=self.timeout_s,
                    context=self._tls_context(),
                )
            else:
                connection = _Connection(
                    self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout_s
                )
            try:
                connection.ehlo()
                if self.security == "starttls":
                    connection.starttls(context=self._tls_context())
                    connection.ehlo()
                if self.username:
                    connection.login(self.username, self.password or "")
            except BaseException:
                with contextlib.suppress(OSError):
                    connection.close()
                raise
        except smtplib.SMTPAuthenticationError as error:
            raise TransientFailure(
                f"the mail server {self.where} refused the login of {self.username!r} "
                f"({_reply(error.smtp_error)}): check smtp.username and REMINDERS_SMTP__PASSWORD",
                code=error.smtp_code,
                reply=_reply(error.smtp_error),
                stops_batch=True,
            ) from None
        except smtplib.SMTPNotSupportedError as error:
            raise TransientFailure(
                f"the mail server {self.where} does not support what smtp.security = "
                f"{self.security!r} or a login needs ({error}): check the [smtp] settings",
                stops_batch=True,
            ) from None
        except (ssl.SSLError, ssl.CertificateError) as error:
            raise TransientFailure(
                f"TLS with the mail server {self.where} failed ({error}): check smtp.security "
                "and smtp.port (465 is usually 'tls', 587 'starttls')",
                stops_batch=True,
            ) from None
        except smtplib.SMTPResponseException as error:
            raise TransientFailure(
                f"the mail server {self.where} turned the connection away "
                f"({error.smtp_code} {_reply(error.smtp_error)}): emails stay approved and "
                "are retried",
                code=error.smtp_code,
                reply=_reply(error.smtp_error),
                stops_batch=True,
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            if _describe_os_error(error) == "no answer in time":
                raise TransientFailure(
                    f"the mail server {self.where} did not answer within smtp.timeout_s "
                    f"({self.timeout_s:g} s): check [smtp] host and port, and whether the "
                    "server is overloaded",
                    stops_batch=True,
                ) from None
            raise TransientFailure(
                f"cannot reach the mail server {self.where} ({_describe_os_error(error)}): "
                "check [smtp] host and port and that the server is running",
                stops_batch=True,
            ) from None
        self._connection = connection
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as error:
            raise TransientFailure(
                f"cannot read smtp.ca_file '{self.ca_file}' ({error}): give the path of a PEM "
                "certificate file, or remove the key to trust the system's authorities",
                stops_batch=True,
            ) from None

    def _live_connection(self) -> _Connection:
        """Return the open connection if it still answers NOOP, else a new one."""
        if self._connection is not None:
            try:
                alive = self._connection.noop()[0] == 250
            except (smtplib.SMTPException, OSError):
                alive = False
            if not alive:
                self._drop()
        return self._connect()

    def _one(self, envelope: Envelope) -> None:
        """MAIL, RCPT, DATA, each waiting for its reply (a server without PIPELINING)."""
        connection = self._connect()
        self._refuse_unsendable(connection, envelope)
        try:
            code, reply = connection.mail(envelope.sender, _options(envelope))
            if code != 250:
                self._reset(connection)
                raise self._refusal(code, reply, f"the sender {envelope.sender!r}", sender=True)
            code, reply = connection.rcpt(envelope.recipient)
            if code not in (250, 251):
                self._reset(connection)
                raise self._refusal(code, reply, f"the recipient {envelope.recipient!r}")
            code, reply = connection.data_uncertain_after_sending(envelope.as_bytes())
        except smtplib.SMTPDataError as error:
            self._reset(connection)
            raise self._refusal(error.smtp_code, error.smtp_error, "the message") from None
        except UncertainDelivery:
            self._drop()  # the next message goes on a new connection
            raise
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            raise self._lost(error) from None
        if code != 250:
            self._reset(connection)
            raise self._refusal(code, reply, "the message")

    def _pipeline(
        self,
        connection: _Connection,
        first: tuple[T, Envelope],
        source: Iterator[tuple[T, Envelope]],
        *,
        reused: bool,
    ) -> Generator[Outcome[T], None, Resume[T]]:
        """Send `first` and what follows it, one write and one read of replies each.

        `opened` is the message whose DATA got its 354: its body goes out in the
        next write, ahead of the commands of `current`.

        When the connection breaks, the message whose body went out is uncertain,
        and the one whose commands alone went out was not handed over: it is
        returned, with what was pulled after it, for a new connection to take, as
        is the first message of a `reused` connection the server dropped while idle
        (its first commands are answered before anything else is pulled).
        """
        opened: tuple[T, Envelope] | None = None
        current: tuple[T, Envelope] | None = first
        while opened is not None or current is not None:
            if current is not None:
                try:
                    self._refuse_unsendable(connection, current[1])
                except PermanentFailure as error:
                    yield current[0], error
                    current = next(source, None)
                    continue
            wire = b""
            if opened is not None:
                wire += _dot_stuffed(opened[1].as_bytes()) + b".\r\n"
            if current is not None:
                wire += _commands(current[1])
            probing = reused and current is first and opened is None
            try:
                connection.send(wire)
            except (smtplib.SMTPServerDisconnected, OSError) as error:
                return (yield from self._broken(error, opened, current, [], probing=probing))
            # The next message is built while the server reads and answers.
            upcoming = next(source, None) if current is not None and not probing else None
            try:
                if opened is not None:
                    code, reply = connection.getreply()
                    refused = None if code == 250 else self._refusal(code, reply, "the message")
                    yield opened[0], refused
                    opened = None
                if current is not None:
                    replies = (connection.getreply(), connection.getreply(), connection.getreply())
                    refused = self._opened(connection, current[1], *replies)
                    if refused is None:
                        opened = current
                    else:
                        yield current[0], refused
                        if self._connection is None:  # RSET failed: a new connection goes on
                            return (upcoming, []) if upcoming is not None else None
            except (smtplib.SMTPServerDisconnected, OSError) as error:
                pulled = [upcoming] if upcoming is not None else []
                return (yield from self._broken(error, opened, current, pulled, probing=probing))
            current = next(source, None) if probing else upcoming
        return None

    def _broken(
        self,
        error: BaseException,
        opened: tuple[T, Envelope] | None,
        current: tuple[T, Envelope] | None,
        pulled: list[Tagged[T]],
        *,
        probing: bool,
    ) -> Generator[Outcome[T], None, Resume[T]]:
        """Settle what the broken connection carried; return what a new one should take."""
        lost = self._lost(error)
        if opened is not None:
            yield opened[0], _uncertain(error)
        if current is None:
            return None
        if probing or opened is not None:
            return current, pulled
        # Only the commands went out and the server stopped answering them.
        yield current[0], lost
        return None

    def _opened(
        self,
        connection: _Connection,
        envelope: Envelope,
        mail: tuple[int, bytes],
        rcpt: tuple[int, bytes],
        data: tuple[int, bytes],
    ) -> DeliveryError | None:
        """Return None if MAIL, RCPT and DATA opened the message, else why not (reset)."""
        if data[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
            # RFC 2920: a server that took DATA anyway gets an empty message, then RSET.
            connection.send(b".\r\n")
            connection.getreply()
        if mail[0] != 250:
            self._reset(connection)
            return self._refusal(*mail, f"the sender {envelope.sender!r}", sender=True)
        if rcpt[0] not in (250, 251):
            self._reset(connection)
            return self._refusal(*rcpt, f"the recipient {envelope.recipient!r}")
        if data[0] != 354:
            self._reset(connection)
            return self._refusal(*data, "the message")
        return None

    def _refuse_unsendable(self, connection: _Connection, envelope: Envelope) -> None:
        if envelope.needs_smtputf8 and not connection.has_extn("smtputf8"):
            raise PermanentFailure(
                f"the address {envelope.recipient!r} needs SMTPUTF8, which the mail server "
                f"{self.where} does not offer: use an ASCII address for this contact"
            )

    def _lost(self, error: BaseException) -> TransientFailure:
        """The connection broke before a message was handed over: the batch stops."""
        self._drop()
        if isinstance(error, smtplib.SMTPServerDisconnected):
            return TransientFailure(
                f"the mail server {self.where} closed the connection ({error})", stops_batch=True
            )
        return TransientFailure(
            f"the mail server {self.where} stopped answering ({_describe_os_error(error)})",
            stops_batch=True,
        )

    def _refusal(
        self, code: int, reply: bytes | str, what: str, *, sender: bool = False
    ) -> DeliveryError:
        text = _reply(reply)
        message = f"the mail server {self.where} refused {what}: {code} {text}"
        if 400 <= code < 500:
            return TransientFailure(message, code=code, reply=text, stops_batch=sender)
        if sender:
            # A refused sender would refuse every message of the batch alike.
            return TransientFailure(
                f"{message}: check the agency's sender address", code=code, reply=text,
                stops_batch=True,
            )  # fmt: skip
        return PermanentFailure(message, code=code, reply=text)

    def _reset(self, connection: _Connection) -> None:
        try:
            connection.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


def _reply(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _describe_os_error(error: BaseException) -> str:
    # smtplib turns a timeout while waiting for the greeting into a disconnection.
    if isinstance(error, TimeoutError) or "timed out" in str(error):
        return "no answer in time"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def mailer_for(settings: Settings) -> Mailer:
    """Return the transport `mail.transport` names (no connection is made yet)."""
    if settings.mail.transport == "maildir":
        return MaildirMailer(settings.maildir_path)
    smtp = settings.smtp
    return SmtpMailer(
        smtp.host,
        smtp.port,
        security=smtp.security,
        username=smtp.username,
        password=smtp.password.get_secret_value() if smtp.password else None,
        timeout_s=smtp.timeout_s,
        ca_file=settings.path(smtp.ca_file) if smtp.ca_file else None,
    )
