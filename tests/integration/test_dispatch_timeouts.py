"""`smtp.timeout_s` bounds every wait on the mail server, on SQLite and PostgreSQL.

A server that never greets, one that never confirms a message, and one that is
slow but within the limit: sending never hangs, and what happens to each item is
what its fate on the server allows (retry, a person decides, sent).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from integration.dispatch_world import World, results
from reminders.delivery import Result
from reminders.queue import Status

#: However the server misbehaves, a send with a 1-2 s timeout returns well within this.
BOUND_S = 10.0


class SilentServer:
    """Accepts TCP connections on loopback and never says a word (no SMTP greeting)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        #: every connection accepted, held open until `stop`
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self._listener.accept()
            except OSError:  # the listener was closed
                return
            self.connections.append(connection)

    def stop(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone may not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.stop()


def test_a_server_that_never_greets_gives_up_in_time_and_keeps_the_items(
    world: World, silent_server: SilentServer
) -> None:
    """Fault: a server that never greets; the send gives up in bounded time and loses nothing."""
    first, second = world.guests(1, 2)
    world.configure(smtp={"port": silent_server.port, "timeout_s": 1})

    started = time.monotonic()
    report = world.dispatcher().send([first, second])
    elapsed_s = time.monotonic() - started

    assert elapsed_s < BOUND_S, f"send took {elapsed_s:.1f} s with smtp.timeout_s = 1"
    assert results(report) == [(first, Result.RETRY), (second, Result.NOT_TRIED)]
    # The batch stopped after one timeout instead of waiting once per item.
    assert report.stopped is not None
    assert f"127.0.0.1:{silent_server.port}" in report.stopped
    assert "did not answer within smtp.timeout_s (1 s)" in report.stopped
    assert len(silent_server.connections) == 1
    tried, untried = world.item(first), world.item(second)
    assert (tried.status, tried.attempts) == (Status.APPROVED, 1)
    assert tried.next_attempt_at is not None and tried.next_attempt_at > world.clock.now()
    assert tried.last_error == report.stopped
    # Never handed over: due again at once, and the try is not counted.
    assert (untried.status, untried.attempts, untried.next_attempt_at) == (
        Status.APPROVED, 0, None,
    )  # fmt: skip


def test_a_final_reply_slower_than_the_timeout_leaves_the_item_unknown(world: World) -> None:
    """Fault: the final reply comes after the timeout; the item is unknown, never resent alone."""
    [item_id] = world.guests(1)
    world.configure(smtp={"timeout_s": 1})
    world.mail_server.stall_s = 3

    started = time.monotonic()
    report = world.dispatcher().send([item_id])
    elapsed_s = time.monotonic() - started

    assert elapsed_s < BOUND_S, f"send took {elapsed_s:.1f} s with smtp.timeout_s = 1"
    assert results(report) == [(item_id, Result.UNKNOWN)]
    [delivery] = report.deliveries
    assert delivery.detail is not None and "did not confirm" in delivery.detail
    item = world.item(item_id)
    assert (item.status, item.attempts, item.next_attempt_at) == (Status.UNKNOWN, 1, None)

    # The server may have kept it: with the server well again, nothing sends it by itself.
    world.mail_server.stall_s = 0
    world.clock.advance(hours=1)
    later = world.dispatcher().dispatch_due()
    assert (later.deliveries, later.recovered) == ([], [])
    assert world.item(item_id).status is Status.UNKNOWN
    assert world.mail_server.messages() == []


def test_a_slow_server_within_the_timeout_is_simply_used(world: World) -> None:
    """Fault: a final reply 0.3 s late with smtp.timeout_s = 2; the email is sent once, normally."""
    [item_id] = world.guests(1)
    world.configure(smtp={"timeout_s": 2})
    world.mail_server.stall_s = 0.3

    started = time.monotonic()
    report = world.dispatcher().send([item_id])
    elapsed_s = time.monotonic() - started

    assert results(report) == [(item_id, Result.SENT)]
    assert report.stopped is None
    assert 0.3 <= elapsed_s < BOUND_S
    assert world.item(item_id).status is Status.SENT
    assert world.received_by_item(item_id) == 1
