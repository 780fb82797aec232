"""A world for the dispatcher's tests: a database, planned items, a real SMTP server, a clock.

Time only moves when a test moves it, or when the dispatcher asks to sleep: the
requested pause is recorded and the clock jumps forward by it, so rate limits and
retry schedules are checked without waiting.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from factories import MovableClock, booking, day
from mail_server import MailServer
from reminders import registry, sending, service
from reminders.bookings import Contact
from reminders.config import AgencySettings, Settings
from reminders.database import create_engine
from reminders.delivery import DispatchReport, Result
from reminders.dispatch import Dispatcher
from reminders.mailer import mailer_for
from reminders.queue import QueueItem
from reminders.schema import AddressRow, ConsentEventRow, ContactRow
from reminders.store import Database

TEMPLATES = Path(__file__).parents[2] / "templates"
SENDER = "Agence du Lac <reservations@agence-du-lac.example>"
REPLY_TO = "Réservations Agence du Lac <contact@agence-du-lac.example>"
BASE_URL = "https://links.example"
SECRET_KEY = "x" * 32
#: 09:00 in Annecy; the day every test plans for
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TODAY = "2026-12-01"
#: arrival reminders (delay 7) of this date are listed from 2026-11-28 to 2026-12-05
ARRIVAL = "2026-12-05"


def settings_for(
    port: int,
    *,
    agency: dict[str, Any] | None = None,
    smtp: dict[str, Any] | None = None,
    mail: dict[str, Any] | None = None,
) -> Settings:
    """Return one agency (arrival reminders only) sending through 127.0.0.1:`port`."""
    agency_values: dict[str, Any] = {
        "code": "annecy",
        "name": "Agence du Lac",
        "timezone": "Europe/Paris",
        "locale": "fr",
        "sender": SENDER,
        "reply_to": REPLY_TO,
        "delays": {"arrival": 7},
    }
    return Settings(
        agency=[agency_values | (agency or {})],
        templates={"dir": str(TEMPLATES)},
        smtp={"host": "127.0.0.1", "port": port, "timeout_s": 5} | (smtp or {}),
        mail={"transport": "smtp", "retry_after_s": 60} | (mail or {}),
        web={"base_url": BASE_URL, "secret_key": SECRET_KEY},
    )


def address_of(n: int) -> str:
    return f"guest{n}@example.com"


class SessionKeepingServer(MailServer):
    """The test server, keeping alive every SMTP session a message came in, in order.

    `Received.session` is the session's `id()`, which Python may give to a new
    session once an old one is freed; kept alive, two connections never share one.

    With `hold_until_sessions`, a message is not answered until that many
    sessions have sent one (or `HOLD_TIMEOUT_S` passed): a test of several
    connections then does not depend on how fast the first one drains the tab.
    """

    def __init__(self, *, hold_until_sessions: int = 1) -> None:
        super().__init__()
        self.sessions: list[object] = []
        self._hold_until = hold_until_sessions

    def start(self) -> SessionKeepingServer:
        super().start()
        assert self._controller is not None
        self._controller.handler = _KeepSessions(
            self._controller.handler, self.sessions, self._hold_until
        )
        return self


#: below the tests' SMTP timeout (5 s), so a run that never opens a second session
#: fails on its assertions, not on a timed-out reply
HOLD_TIMEOUT_S = 3.0


class _KeepSessions:
    def __init__(self, handler: Any, sessions: list[object], hold_until: int) -> None:
        self._handler = handler
        self._sessions = sessions
        self._hold_until = hold_until

    async def handle_RCPT(self, *args: Any) -> str:
        reply: str = await self._handler.handle_RCPT(*args)
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._sessions.append(session)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HOLD_TIMEOUT_S
        while len({id(s) for s in self._sessions}) < self._hold_until:
            if loop.time() > deadline:
                self._hold_until = 0  # held once for nothing: the rest is not held
                break
            await asyncio.sleep(0.01)
        reply: str = await self._handler.handle_DATA(server, session, envelope)
        return reply


class Sender:
    """The sending service as one process uses it: send, send a tab, the daemon's tick."""

    def __init__(self, run: sending.Run) -> None:
        self.run = run
        self.claimant = Dispatcher(
            run.database, run.settings, lambda: mailer_for(run.settings), actor=run.actor
        ).claimant

    def send(self, item_ids: list[int]) -> DispatchReport:
        return sending.send(self.run, item_ids)

    def resend(self, item_ids: list[int]) -> DispatchReport:
        return sending.resend(self.run, item_ids)

    def send_tab(self, agency: str, kind: str) -> DispatchReport:
        return sending.send_tab(self.run, agency, kind)

    def dispatch_due(self) -> DispatchReport:
        return sending.dispatch_due(self.run)

    def approve_automatic(self) -> int:
        return sending.approve_automatic(self.run.database, self.run.settings)

    def send_summary(self, agency: AgencySettings, *, again: bool = False) -> str | None:
        settings = self.run.settings
        return sending.email_summary(
            self.run.database, settings, agency, mailer_for(settings), again=again
        )

    def recover_abandoned(self) -> list[int]:
        return sending.recover(self.run.database, self.run.settings, self.claimant)


class World:
    """Contacts, bookings and their planned items, and dispatchers to send them."""

    def __init__(self, url: str, mail_server: MailServer) -> None:
        self.engine: Engine = create_engine(url)
        self.clock = MovableClock(START)
        self.database = Database(self.engine, self.clock)
        self.mail_server = mail_server
        self.settings = settings_for(mail_server.port)
        #: every pause a dispatcher asked for, in seconds
        self.sleeps: list[float] = []

    def configure(self, **sections: dict[str, Any]) -> None:
        """Replace the settings: `agency=`, `smtp=`, `mail=` override the defaults."""
        self.settings = settings_for(self.mail_server.port, **sections)

    @property
    def agency(self) -> AgencySettings:
        return self.settings.agency[0]

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds=seconds)

    def dispatcher(self, **options: Any) -> Sender:
        options.setdefault("sleep", self.sleep)
        return Sender(
            sending.Run(database=self.database, settings=self.settings, actor="tester", **options)
        )

    # -- contacts, bookings, items ---------------------------------------------------

    def contact(
        self,
        ref: str,
        email: str | None,
        *,
        name: str = "Guest",
        confirmed: bool = True,
        opted_out: bool = False,
    ) -> None:
        contacts = [
            Contact(
                ref=ref,
                agency="annecy",
                name=name,
                email=email,
                locale="fr",
                email_confirmed=confirmed,
                email_opt_out=opted_out,
            )
        ]
        with self.database.transaction() as store:
            store.upsert_contacts(contacts)
            # As `reminders import contacts` does: the flags go to the consent registry.
            registry.apply_import_flags(store, contacts, self.clock.now())

    def booking(self, ref: str, contact_ref: str, **overrides: Any) -> None:
        overrides.setdefault("arrival_on", day(ARRIVAL))
        with self.database.transaction() as store:
            store.upsert_bookings([booking(ref=ref, contact_ref=contact_ref, **overrides)])

    def plan(self, on: str = TODAY) -> service.AgencyPlan:
        return service.plan_agency(self.database, self.settings, self.agency, today=day(on))

    def guests(self, *numbers: int, **contact: Any) -> list[int]:
        """Queue an arrival reminder for guest N (contact C-N, booking B-N) each; return ids."""
        for n in numbers:
            self.contact(f"C-{n}", address_of(n), **({"name": f"Guest {n}"} | contact))
            self.booking(f"B-{n}", f"C-{n}")
        self.plan()
        return [self.item_of(f"B-{n}").id for n in numbers]

    def item_of(self, booking_ref: str, kind: str = "arrival") -> QueueItem:
        with self.database.transaction() as store:
            [item] = [i for i in store.items(kind=kind) if i.booking_ref == booking_ref]
            return item

    def item(self, item_id: int) -> QueueItem:
        with self.database.transaction() as store:
            return store.item(item_id)

    def deliveries(self, item_id: int) -> list[dict[str, Any]]:
        with self.database.transaction() as store:
            return store.deliveries(item_id)

    def approve(self, *item_ids: int) -> None:
        with self.database.transaction() as store:
            for item_id in item_ids:
                store.approve(item_id, "staff")

    def opted_out_refs(self) -> set[str]:
        """Return the refs of contacts whose address the registry has opted out."""
        with self.engine.connect() as connection:
            query = (
                select(ContactRow.ref)
                .join(AddressRow, AddressRow.id == ContactRow.address_id)
                .where(AddressRow.opted_out_by.is_not(None))
            )
            return set(connection.scalars(query))

    def consent_events(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(ConsentEventRow).order_by(ConsentEventRow.id))
            return [dict(row._mapping) for row in rows]

    # -- what the server received ----------------------------------------------------

    def received_by_item(self, item_id: int) -> int:
        """Count the messages received with the item's current Message-ID."""
        message_id = self.item(item_id).message_id
        return sum(1 for m in self.mail_server.messages() if m.message["Message-ID"] == message_id)

    def dispose(self) -> None:
        self.engine.dispose()


def results(report: DispatchReport) -> list[tuple[int, Result]]:
    return [(d.item_id, d.result) for d in report.deliveries]
