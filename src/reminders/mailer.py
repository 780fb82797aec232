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
import mailbox
import re
import smtplib
import ssl
from pathlib import Path
from typing import Protocol

from .config import Settings
from .errors import ReminderError
from .messages import Envelope

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

    def close(self) -> None:
        """End the batch: close any connection (never raises)."""
        ...


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
            raise UncertainDelivery(
                f"the mail server did not confirm the message ({error}): it may have been delivered"
            ) from None


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
        for fresh in (self._connection is None, True):
            connection = self._connect()
            try:
                self._transaction(connection, envelope)
                return
            except smtplib.SMTPServerDisconnected as error:
                # Nothing was handed over. A reused connection may simply have been
                # dropped while idle: try once more on a new one.
                self._drop()
                if fresh:
                    raise TransientFailure(
                        f"the mail server {self.where} closed the connection ({error})",
                        stops_batch=True,
                    ) from None

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

    def _transaction(self, connection: _Connection, envelope: Envelope) -> None:
        """MAIL, RCPT, DATA for one message; failures say whose fault they are.

        With a server that offers PIPELINING (RFC 2920) the three commands go in one
        write and their replies are read together: two round trips a message
        instead of four.
        """
        options = ["SMTPUTF8", "BODY=8BITMIME"] if envelope.needs_smtputf8 else []
        if options and not connection.has_extn("smtputf8"):
            raise PermanentFailure(
                f"the address {envelope.recipient!r} needs SMTPUTF8, which the mail server "
                f"{self.where} does not offer: use an ASCII address for this contact"
            )
        try:
            if connection.has_extn("pipelining"):
                code, reply = self._pipelined(connection, envelope, options)
            else:
                code, reply = connection.mail(envelope.sender, options)
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
        except smtplib.SMTPServerDisconnected:
            raise
        except OSError as error:
            self._drop()
            raise TransientFailure(
                f"the mail server {self.where} stopped answering ({_describe_os_error(error)})",
                stops_batch=True,
            ) from None
        if code != 250:
            self._reset(connection)
            raise self._refusal(code, reply, "the message")

    def _pipelined(
        self, connection: _Connection, envelope: Envelope, options: list[str]
    ) -> tuple[int, bytes]:
        extra = "".join(f" {option}" for option in options)
        commands = (
            f"MAIL FROM:<{envelope.sender}>{extra}\r\nRCPT TO:<{envelope.recipient}>\r\nDATA\r\n"
        )
        connection.send(commands.encode("utf-8" if options else "ascii"))
        mail = connection.getreply()
        rcpt = connection.getreply()
        data = connection.getreply()
        if data[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
            # RFC 2920: a server that took DATA anyway gets an empty message, then RSET.
            connection.send(b".\r\n")
            connection.getreply()
        if mail[0] != 250:
            self._reset(connection)
            raise self._refusal(*mail, f"the sender {envelope.sender!r}", sender=True)
        if rcpt[0] not in (250, 251):
            self._reset(connection)
            raise self._refusal(*rcpt, f"the recipient {envelope.recipient!r}")
        if data[0] != 354:
            raise smtplib.SMTPDataError(*data)
        return connection.end_data_uncertain(envelope.as_bytes())

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
