"""The link pages served for real: uvicorn on loopback, a migrated database, a real SMTP server.

Shared by the tests of the pages (test_web.py) and of concurrent requests (test_web_races.py).
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from integration.dispatch_world import World
from mail_server import Received
from reminders import registry
from reminders.bookings import Contact
from reminders.consent import Source
from reminders.logs import EventLog
from reminders.mailer import mailer_for
from reminders.tokens import LinkSigner, Purpose
from reminders.web import create_app, server

GUEST = "guest@example.com"
#: Headers every response carries, besides the Content-Security-Policy.
EXPECTED_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


class LiveServer:
    """The app served by uvicorn in a thread, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.server = server(app)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.listener]}, daemon=True
        )

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("the web server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.listener.close()
        assert not self.thread.is_alive(), "the web server did not stop"


@dataclass
class Site:
    """The running pages, an HTTP client, and the world behind them."""

    world: World
    client: httpx.Client
    log: io.StringIO

    @property
    def signer(self) -> LinkSigner:
        return LinkSigner(self.world.settings.link_secret(), self.world.clock)

    def status(self, address: str = GUEST) -> tuple[str, str | None, int]:
        """Return (consent, opt-out source, number of history events) of `address`."""
        found = registry.status(self.world.database, self.world.settings, address)
        return found.consent, found.record.opted_out_by, len(found.history)

    def last_event(self, address: str = GUEST) -> tuple[str, str, str, str]:
        found = registry.status(self.world.database, self.world.settings, address)
        event = found.history[-1]
        return event.action, event.source, event.method, event.actor

    def contact(
        self, email: str = GUEST, *, locale: str = "fr", ref: str = "C-1", confirmed: bool = False
    ) -> None:
        contacts = [
            Contact(
                ref=ref,
                agency="annecy",
                name="Camille Martin",
                email=email,
                locale=locale,
                email_confirmed=confirmed,
            )
        ]
        with self.world.database.transaction() as store:
            store.upsert_contacts(contacts)
            registry.apply_import_flags(store, contacts, self.world.clock.now())

    def send_confirmation(self, address: str = GUEST) -> str:
        """Send the confirmation email as staff do; return the token of its link."""
        before = len(self.world.mail_server.messages())
        registry.send_confirmation(
            self.world.database,
            self.world.settings,
            mailer_for(self.world.settings),
            address,
            by=Source.AGENT,
            actor="staff",
            method="email",
        )
        [message] = self.world.mail_server.messages()[before:]
        return confirm_token_in(message)

    def unsubscribe_token(self, address: str = GUEST) -> str:
        return self.signer.sign(Purpose.UNSUBSCRIBE, address)

    def submit(self, page: httpx.Response, *, index: int = 0) -> httpx.Response:
        """Click the button of the page's form number `index`, as a browser would."""
        action, fields = forms_in(page.text)[index]
        return self.client.post(action, data=fields)


def confirm_token_in(message: Received) -> str:
    match = re.search(r"https?://\S+/confirm/([A-Za-z0-9_.-]+)", message.part("plain"))
    assert match, message.part("plain")
    return match[1]


def forms_in(html: str) -> list[tuple[str, dict[str, str]]]:
    """Return (action, hidden fields) of each POST form of a page."""
    found = []
    for attributes, body in re.findall(r"<form ([^>]*)>(.*?)</form>", html, re.S):
        assert 'method="post"' in attributes, attributes
        action = re.search(r'action="([^"]*)"', attributes)
        assert action, attributes
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body))
        found.append((action[1], fields))
    return found


@contextlib.contextmanager
def running_site(world: World) -> Iterator[Site]:
    """Serve the pages of `world` on a free loopback port; yield them with a client."""
    log = io.StringIO()
    app = create_app(world.settings, world.database, log=EventLog(world.clock, stream=log))
    server = LiveServer(app).start()
    try:
        with httpx.Client(base_url=server.url, follow_redirects=False, timeout=20) as client:
            site = Site(world, client, log)
            site.contact()
            yield site
    finally:
        server.stop()
