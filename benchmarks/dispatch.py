"""Time sending a tab against bare baselines measured in the same run.

    python benchmarks/dispatch.py [--emails N]

A SQLite database with N pending, consenting emails (one tab) is made once and copied
for every run. Each run sends the whole tab to a real SMTP server on loopback
(aiosmtpd, in this process's background thread), or into a Maildir folder, and is set
beside a bare baseline doing the least the same delivery needs: the raw sqlite3 driver
selects the emails, the standard library builds each message and sends it on one
connection, and one UPDATE per email records it. The ratio is the price of what the
dispatcher adds: the consent and booking checks, the claim committed before each SMTP
transaction, the delivery log, the signed unsubscribe link, the rate-limit look-up.
benchmarks/README.md says what each line means.
"""

from __future__ import annotations

import argparse
import mailbox
import platform
import shutil
import smtplib
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import event

from reminders import registry, service
from reminders.bookings import Booking, BookingStatus, Contact
from reminders.clock import FixedClock
from reminders.config import Settings
from reminders.database import create_engine, upgrade
from reminders.delivery import Result
from reminders.dispatch import Dispatcher, mailer_for
from reminders.store import Database

TEMPLATES = Path(__file__).parents[1] / "templates"
PLAN_DAY = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SECRET = "benchmark-signing-key-0123456789"
REPEAT = 3


class Sink:
    """An SMTP server that accepts everything and counts it."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def settings(database_url: str, transport: str, port: int, outbox: Path) -> Settings:
    return Settings(
        database={"url": database_url},
        templates={"dir": str(TEMPLATES)},
        mail={"transport": transport, "maildir": str(outbox)},
        smtp={"host": "127.0.0.1", "port": port, "timeout_s": 10},
        web={"base_url": "https://links.example", "secret_key": SECRET},
        agency=[
            {
                "code": "annecy",
                "name": "Agence du Lac",
                "timezone": "Europe/Paris",
                "locale": "fr",
                "sender": "Agence du Lac <reservations@agence-du-lac.example>",
                "max_per_minute": 1_000_000,
                "delays": {"arrival": 7},
            }
        ],
    )


def make_template(folder: Path, emails: int) -> Path:
    """Create a database whose arrival tab holds `emails` pending, consenting emails."""
    path = folder / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    database = Database(engine, FixedClock(NOW))
    contacts = [
        Contact(
            ref=f"C-{n}",
            agency="annecy",
            name=f"Guest {n}",
            email=f"guest{n}@example.com",
            locale="fr" if n % 2 else "en",
            email_confirmed=True,
        )
        for n in range(emails)
    ]
    bookings = [
        Booking(
            ref=f"B-{n}",
            agency="annecy",
            contact_ref=f"C-{n}",
            property="Chalet des Aravis",
            status=BookingStatus.CONFIRMED,
            balance_due_on=PLAN_DAY - timedelta(days=10),
            balance_outstanding=Decimal(0),
            arrival_on=PLAN_DAY + timedelta(days=1 + n % 7),
            departure_on=PLAN_DAY + timedelta(days=8 + n % 7),
        )
        for n in range(emails)
    ]
    with database.transaction() as store:
        store.upsert_contacts(contacts)
        registry.apply_import_flags(store, contacts, NOW)
        store.upsert_bookings(bookings)
    configured = settings(f"sqlite:///{path}", "maildir", 1, folder)
    report = service.plan_agency(database, configured, configured.agency[0], today=PLAN_DAY)
    assert report.created == emails, report
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def fresh_copy(template: Path, folder: Path) -> Path:
    copy = folder / "run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, copy)
    return copy


def reminders_send(path: Path, transport: str, port: int, outbox: Path) -> tuple[float, int, int]:
    """Send the tab with the dispatcher; return (seconds, emails sent, SQL statements)."""
    engine = create_engine(f"sqlite:///{path}")
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    configured = settings(f"sqlite:///{path}", transport, port, outbox)
    database = Database(engine, FixedClock(NOW))
    dispatcher = Dispatcher(database, configured, mailer_for(configured), actor="bench")
    started = time.perf_counter()
    report = dispatcher.send_tab("annecy", "arrival")
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, report.count(Result.SENT), statements[0]


def bare_send(path: Path, deliver: Callable[[EmailMessage], None]) -> tuple[float, int]:
    """Select with sqlite3, build with `email`, deliver, one UPDATE each; (seconds, sent)."""
    connection = sqlite3.connect(path)
    started = time.perf_counter()
    rows = connection.execute(
        "SELECT i.id, i.subject, i.body_text, i.body_html, c.name, c.email FROM items i "
        "JOIN bookings b ON b.id = i.booking_id JOIN contacts c ON c.id = b.contact_id "
        "WHERE i.agency = 'annecy' AND i.kind = 'arrival' AND i.status = 'pending' "
        "ORDER BY i.anchor_on, i.id"
    ).fetchall()
    for item_id, subject, text, html, name, address in rows:
        message = EmailMessage()
        message["From"] = "Agence du Lac <reservations@agence-du-lac.example>"
        message["To"] = f"{name} <{address}>"
        message["Subject"] = subject
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        deliver(message)
        connection.execute("UPDATE items SET status = 'sent' WHERE id = ?", (item_id,))
        connection.commit()
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed, len(rows)


def best(runs: list[tuple[float, ...]]) -> tuple[float, ...]:
    return min(runs, key=lambda run: run[0])


def main(argv: list[str] | None = None) -> int:
    assert __doc__
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=500, help="emails in the tab (500)")
    options = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="reminders-bench-"))
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        template = make_template(folder, options.emails)
        print(
            f"{options.emails} emails, one tab, SQLite; Python {platform.python_version()}, "
            f"best of {REPEAT}"
        )
        rows = []

        def smtp_bare(path: Path) -> tuple[float, int]:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                return bare_send(path, client.send_message)

        def maildir_bare(path: Path) -> tuple[float, int]:
            box = mailbox.Maildir(folder / "bare-outbox", create=True)
            return bare_send(path, box.add)

        for transport, bare in (("smtp", smtp_bare), ("maildir", maildir_bare)):
            ours = best(
                [
                    reminders_send(fresh_copy(template, folder), transport, port, folder / "box")
                    for _ in range(REPEAT)
                ]
            )
            baseline = best([bare(fresh_copy(template, folder)) for _ in range(REPEAT)])
            seconds, sent, statements = ours
            assert sent == options.emails == baseline[1], (sent, baseline)
            rows.append(
                (
                    transport,
                    f"{seconds * 1000:.0f} ms ({sent / seconds:.0f}/s)",
                    f"{baseline[0] * 1000:.0f} ms ({sent / baseline[0]:.0f}/s)",
                    f"{seconds / baseline[0]:.1f}x",
                    f"{statements / sent:.1f}",
                )
            )
        header = ("transport", "reminders send-all", "bare baseline", "ratio", "SQL/email")
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    finally:
        controller.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
