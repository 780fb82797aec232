"""A real SMTP server on loopback (aiosmtpd) that records what it receives.

It can misbehave on cue, the way real servers do: refuse a recipient with a 4xx
or 5xx reply a given number of times, refuse the message after DATA, stall before
its final reply, hold every sender after a given count until released, or be
stopped and started again on the same port.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the server received it."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    mail_options: tuple[str, ...]
    data: bytes
    session: int

    @property
    def message(self) -> EmailMessage:
        # Headers of an SMTPUTF8 message are UTF-8: read them as text, not as ASCII.
        parsed = (
            email.message_from_bytes(self.data, policy=email.policy.default)
            if self.data.isascii()
            else email.message_from_string(self.data.decode("utf-8"), policy=email.policy.default)
        )
        assert isinstance(parsed, EmailMessage)
        return parsed

    def part(self, subtype: str) -> str:
        """Return the decoded text of the text/<subtype> part, with plain line ends."""
        for part in self.message.walk():
            if part.get_content_type() == f"text/{subtype}":
                content: str = part.get_content()
                return content.replace("\r\n", "\n")
        raise AssertionError(f"no text/{subtype} part in {self.message['Message-ID']}")


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_EHLO(
        self, _server: Any, session: Any, _envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.server.pipelining:
            # aiosmtpd reads commands in order whether or not they were pipelined;
            # most real servers offer PIPELINING (RFC 2920), so this one does too.
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        replies = self.server.rcpt_replies.get(address.lower())
        if replies:
            return replies.popleft()
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        server = self.server
        server.data_started.set()
        if server.stall_s:
            await asyncio.sleep(server.stall_s)
        while server.holding():
            await asyncio.sleep(0.01)
        if server.data_replies:
            return server.data_replies.popleft()
        with server.lock:
            server.received.append(
                Received(
                    mail_from=envelope.mail_from,
                    rcpt_to=tuple(envelope.rcpt_tos),
                    mail_options=tuple(envelope.mail_options),
                    data=envelope.original_content or envelope.content,
                    session=id(session),
                )
            )
        return "250 2.0.0 OK: queued"


class _Controller(Controller):
    """aiosmtpd's controller, which also closes open connections when it stops."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[Any] = []

    def factory(self) -> Any:
        smtp = super().factory()
        self.sessions.append(smtp)
        return smtp

    def stop(self, *args: Any, **kwargs: Any) -> None:
        for smtp in self.sessions:
            transport = getattr(smtp, "transport", None)
            if transport is not None:
                self.loop.call_soon_threadsafe(transport.close)
        super().stop(*args, **kwargs)


class MailServer:
    """Start with `start()`; `stop()` makes it unreachable (connection refused)."""

    def __init__(self, port: int | None = None, *, pipelining: bool = True, **options: Any) -> None:
        """`options` go to aiosmtpd's Controller: TLS contexts, authentication, ..."""
        self.options: dict[str, Any] = {"enable_SMTPUTF8": True, **options}
        #: offer PIPELINING in the EHLO reply
        self.pipelining = pipelining
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        #: replies to give to RCPT TO:<address> (lower-case) before accepting it
        self.rcpt_replies: dict[str, deque[str]] = defaultdict(deque)
        #: replies to give after DATA, instead of accepting, in order
        self.data_replies: deque[str] = deque()
        #: seconds to wait before answering the end of DATA
        self.stall_s = 0.0
        self.data_started = threading.Event()
        #: once this many messages arrived, hold every later DATA until `release()`
        self.hold_after: int | None = None
        self.released = threading.Event()
        self._controller: _Controller | None = None

    def start(self) -> MailServer:
        self._controller = _Controller(
            _Handler(self), hostname=self.host, port=self.port, **self.options
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def refuse_rcpt(self, address: str, *replies: str) -> None:
        """Answer RCPT TO:<address> with these replies, one per attempt, then accept."""
        self.rcpt_replies[address.lower()].extend(replies)

    def hold(self, after: int) -> None:
        """Accept `after` messages, then keep every sender waiting in DATA until `release()`."""
        self.released.clear()
        self.hold_after = after

    def release(self) -> None:
        self.released.set()

    def holding(self) -> bool:
        if self.hold_after is None or self.released.is_set():
            return False
        with self.lock:
            return len(self.received) >= self.hold_after

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages() if address.lower() in (r.lower() for r in m.rcpt_to)]

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Received]:
        """Wait until at least `count` messages arrived; return them all."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            messages = self.messages()
            if len(messages) >= count:
                return messages
            time.sleep(0.05)
        raise AssertionError(f"expected {count} messages, got {len(self.messages())}")
