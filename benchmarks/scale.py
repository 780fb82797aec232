"""Time imports and planning at a large operator's size against bare scripts in the same run.

    python benchmarks/scale.py [--bookings N] [--agencies A] [--skip-postgresql] [--profile]

Every side is a whole process, timed from start to exit: the installed `reminders`
command beside a bare Python script doing the same work on the same rows (csv,
sqlite3 or psycopg, and for planning plain Jinja2 with the same Babel filters over the
same shipped templates). The data set is generated once: A agencies in 4 time zones,
half French, half English, each with the four built-in kinds on; N contacts and N
bookings (one each) whose dates spread over two years around the plan day, written as
the CSV files of SPEC section 5. Each step starts from the same database state, restored
before every run (a copy of the SQLite file; `CREATE DATABASE ... TEMPLATE` on
PostgreSQL). Each side is the best of 3 runs up to 20,000 bookings, of 1 above;
reminders and the bare script take turns.

The lines of the table (benchmarks/README.md says more):

import contacts
    `reminders import contacts contacts.csv` into an empty database, beside a bare
    csv + executemany of the same rows into the same columns of `addresses`, `contacts`
    and `consent_events` (target: 3x).
import bookings
    `reminders import bookings bookings.csv` after the contacts, beside a bare csv +
    executemany into `bookings` (target: 3x).
plan, first pass
    `reminders plan --date D` on the imported database, beside a bare script that
    selects the visible, eligible bookings of each agency and kind with the window rule
    of SPEC section 2 (one range query each), renders subject, text and HTML from the
    shipped templates with a plain `jinja2.Environment` and the product's Babel filters,
    and inserts the items with executemany (target: 2.0x). Both must create the same
    items with the same content.
plan, same day again
    `reminders plan --date D` once more, beside the first pass (target: 0.2x).
import changed bookings, plan after the change
    A bookings file with 5% of its rows changed (dates moved, cancelled, paid) imported
    over the planned database, then `plan --date D` again: information.

Peak RSS is each process's own maximum resident set (`os.wait4`); the target is 300 MB
for every reminders process. Every run is checked (exit codes, rows and items equal
between reminders and the bare script): a mismatch is listed at the end as a PROBLEM
line, its line of the table says FAILED and shows no ratio, and the exit code is 1.

`--profile` records one `import contacts` and one `plan` with py-spy (speedscope
format, idle time included) and keeps those files in their own temporary folder,
printing their paths; everything else is removed at the end.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import os
import platform
import random
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

from _common import (
    PG_BIN,
    gist,
    progress,
    reminders_command,
    reminders_source,
    temporary_postgresql,
)

from reminders.imports import BOOKING_COLUMNS, CONTACT_COLUMNS
from reminders.kinds import BUILT_IN_KINDS
from reminders.messages import SETTINGS_URL_PLACEHOLDER, UNSUBSCRIBE_URL_PLACEHOLDER

#: The templates that ship with reminders, used by both sides.
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
#: Debian's path (package `postgresql-15`).

PLAN_DAY = date(2026, 12, 1)
TWO_YEARS_DAYS = 730
ZONES = ("Europe/Paris", "America/Montreal", "Pacific/Auckland", "Asia/Tokyo")
#: the delays of config.example.toml
DELAYS = {"balance_due": 30, "arrival": 7, "option_expiry": 2, "post_departure": 7}
#: share of the bookings changed in the second bookings file
CHANGED_SHARE = 0.05
#: best of 3 up to this many bookings, best of 1 above
SMALL = 20_000
#: a throwaway link-signing key (32 characters), new for each run
SECRET_KEY = secrets.token_hex(16)
#: a subprocess taking longer than this is a hang, not a measurement
TIMEOUT_S = 4 * 3600.0
TARGET_IMPORT = 3.0
TARGET_PLAN = 2.0
TARGET_SAME_DAY = 0.2
TARGET_RSS_MB = 300.0

FIRST_NAMES = ("Anne", "Zoë", "Jean-Luc", "Łukasz", "Mary", "Hélène", "John", "Aiko", "Tāne")
LAST_NAMES = ("Dupré", "Martin", "O'Brien", "Nowak", "Smith", "Lefèvre", "Tanaka", "Ngata")
#: contacts' locales: German has no templates, so the agency's language is used
LOCALES = ("fr", "fr_FR", "en", "en_GB", "de", "")
PROPERTIES = (
    "Chalet des Aravis",
    "Gîte Lac & Montagne",
    "Appartement Mont-Blanc",
    "Studio Les Praz",
    "Chalet L'Aiguille",
    "Maison du Semnoz",
)


# -- the bare scripts: whole processes that import nothing from reminders -----------------

#: What every bare script starts with: how to reach the database and write its values
#: as SQLAlchemy stores them (SQLite: ISO text and naive UTC; PostgreSQL: native types).
BARE_PREAMBLE = """\
import csv, json, sys
from datetime import date, datetime, timezone
from itertools import islice

def connect(target):
    kind, _, where = target.partition(":")
    if kind == "sqlite":
        import sqlite3
        connection = sqlite3.connect(where)
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA journal_mode = WAL")
        return connection, "?", True
    import psycopg
    return psycopg.connect(where), "%s", False

connection, MARK, IS_SQLITE = connect(sys.argv[1])
NOW = datetime.now(timezone.utc)
STAMP = NOW.replace(tzinfo=None).isoformat(" ", "microseconds") if IS_SQLITE else NOW

def day(text):
    if not text:
        return None
    return text if IS_SQLITE else date.fromisoformat(text)

def insert(table, columns):
    marks = ", ".join([MARK] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"

def chunks(rows, size=5000):
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk
"""

#: Contacts: their registry entries (ids given here: the tables start empty), the
#: contacts, and the `import` events of their flags, as `reminders import contacts` writes.
BARE_CONTACTS = """
ADDRESS = insert("addresses", ("id", "address", "address_key", "opted_out_by", "opted_out_at",
                               "confirmed_at", "updated_at"))
CONTACT = insert("contacts", ("ref", "agency", "name", "email", "address_id", "locale",
                              "imported_confirmed", "imported_opt_out", "updated_at"))
EVENT = insert("consent_events", ("address", "registry_id", "action", "source", "method",
                                  "actor", "detail", "occurred_at", "recorded_at"))
ids = {}
written = 0
cursor = connection.cursor()
with open(sys.argv[2], newline="", encoding="utf-8") as file:
    rows = csv.reader(file)
    next(rows)
    for chunk in chunks(rows):
        addresses, contacts, events = [], [], []
        for ref, agency, name, email, locale, confirmed, opt_out in chunk:
            confirmed, opted_out = confirmed == "true", opt_out == "true"
            entry = None
            if email:
                local, _, domain = email.rpartition("@")
                address = f"{local}@{domain.lower()}"
                key = address.lower()
                entry = ids.get(key)
                if entry is None:
                    entry = ids[key] = len(ids) + 1
                    addresses.append((
                        entry, address, key, "import" if opted_out else None,
                        STAMP if opted_out else None, STAMP if confirmed else None, STAMP,
                    ))
                    for action, wanted in (("confirm", confirmed), ("opt_out", opted_out)):
                        if wanted:
                            events.append((address, entry, action, "import", "csv import",
                                           "import", f"contact {ref}", STAMP, STAMP))
            contacts.append((ref, agency, name, email or None, entry, locale or None,
                             confirmed, opted_out, STAMP))
        cursor.executemany(ADDRESS, addresses)
        cursor.executemany(CONTACT, contacts)
        cursor.executemany(EVENT, events)
        written += len(contacts)
connection.commit()
print(json.dumps({"contacts": written}))
"""

#: Bookings: the contact ids looked up once, then the rows with amounts in minor units.
BARE_BOOKINGS = """
from decimal import Decimal
from babel.numbers import get_currency_precision

BOOKING = insert("bookings", ("ref", "agency", "contact_id", "property", "status",
                              "option_expires_on", "balance_due_on", "balance_outstanding_minor",
                              "currency", "arrival_on", "departure_on", "updated_at"))
cursor = connection.cursor()
cursor.execute("SELECT ref, id FROM contacts")
contact_ids = dict(cursor.fetchall())
places = {}
written = 0
with open(sys.argv[2], newline="", encoding="utf-8") as file:
    rows = csv.reader(file)
    next(rows)
    for chunk in chunks(rows):
        bookings = []
        for (ref, agency, contact, prop, status, option_on, due_on, amount, currency,
             arrival_on, departure_on) in chunk:
            currency = currency.upper() or "EUR"
            if currency not in places:
                places[currency] = get_currency_precision(currency)
            minor = int(Decimal(amount).scaleb(places[currency])) if amount else 0
            bookings.append((ref, agency, contact_ids[contact], prop, status.lower(),
                             day(option_on), day(due_on), minor, currency, day(arrival_on),
                             day(departure_on), STAMP))
        cursor.executemany(BOOKING, bookings)
        written += len(bookings)
connection.commit()
print(json.dumps({"bookings": written}))
"""

#: Planning: per agency and kind, one range query over the window rule of SPEC section 2,
#: the shipped templates rendered with plain Jinja2 and the product's Babel filters (the
#: French "1er" included), and the items inserted with executemany.
BARE_PLAN = """
import re
from datetime import timedelta
from decimal import Decimal
import jinja2
from babel.dates import format_date, get_date_format
from babel.numbers import format_currency, format_decimal, get_currency_precision

with open(sys.argv[2], encoding="utf-8") as file:
    spec = json.load(file)
DAY_FIELD = re.compile(r"(?<![d'])d(?![d'])")

def local_date(value, style, language):
    if language.split("_")[0] == "fr" and value.day == 1:
        pattern = style
        if style in ("short", "medium", "long", "full"):
            pattern = get_date_format(style, locale=language).pattern
        style = DAY_FIELD.sub("d'er'", pattern, count=1)
    return format_date(value, format=style, locale=language)

@jinja2.pass_context
def date_filter(context, value, style="long"):
    return "" if value is None else local_date(value, style, context["language"])

@jinja2.pass_context
def money_filter(context, value, currency):
    return format_currency(value, currency, locale=context["language"])

@jinja2.pass_context
def number_filter(context, value):
    return format_decimal(value, locale=context["language"])

env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(spec["templates"]),
    undefined=jinja2.StrictUndefined,
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(date=date_filter, money=money_filter, number=number_filter)
PARTS = ("subject.{}.txt", "body.{}.txt", "body.{}.html")
LANGUAGES = ("fr", "en")

def render(template, language, context):
    subject, text, html = (
        env.get_template(f"{template}/{part.format(language)}").render(context).strip() + "\\n"
        for part in PARTS
    )
    return " ".join(subject.split()), text, html

as_day = (lambda v: date.fromisoformat(v) if v else None) if IS_SQLITE else (lambda v: v)
as_text = (lambda d: d.isoformat()) if IS_SQLITE else (lambda d: d)
ITEM = insert("items", ("id", "agency", "kind", "booking_id", "anchor_on", "visible_from",
                        "visible_until", "status", "locale", "subject", "edited", "auto_send",
                        "rendered_at", "created_at", "updated_at"))
BODY = insert("item_bodies", ("item_id", "body_text", "body_html"))
PASS = insert("planning_passes", ("agency", "last_planned_on", "last_run_at"))
places = {}
plan_day = date.fromisoformat(spec["day"])
cursor = connection.cursor()
created = 0
# The items' ids are given here, so that their bodies are inserted with executemany too.
cursor.execute("SELECT coalesce(max(id), 0) FROM items")
(next_id,) = cursor.fetchone()
for agency in spec["agencies"]:
    # `plan --date D` plans D for every agency: D is each agency's local day.
    today = plan_day
    about = {key: agency[key] for key in ("code", "name", "sender", "email", "reply_to")}
    for kind in spec["kinds"]:
        delay = agency["delays"][kind["name"]]
        # SPEC section 2: visible iff A + offset <= today <= A + offset + retention.
        offset = -delay if kind["direction"] == "before" else delay
        retention = delay if kind["direction"] == "before" else 14
        first = today - timedelta(days=offset + retention)
        last = today - timedelta(days=offset)
        anchor = kind["anchor"]
        statuses = ", ".join(f"'{s}'" for s in kind["statuses"])
        owing = " AND b.balance_outstanding_minor > 0" if kind["needs_balance"] else ""
        cursor.execute(
            "SELECT b.id, b.ref, b.property, b.status, b.option_expires_on, b.balance_due_on,"
            " b.balance_outstanding_minor, b.currency, b.arrival_on, b.departure_on,"
            " c.ref, c.name, c.email, c.locale"
            " FROM bookings b JOIN contacts c ON c.id = b.contact_id"
            f" WHERE b.agency = {MARK} AND b.{anchor} BETWEEN {MARK} AND {MARK}"
            f" AND b.status IN ({statuses}){owing}",
            (agency["code"], as_text(first), as_text(last)),
        )
        items, bodies = [], []
        for (booking_id, ref, prop, status, option_on, due_on, minor, currency, arrival_on,
             departure_on, contact_ref, name, email, locale) in cursor.fetchall():
            if currency not in places:
                places[currency] = get_currency_precision(currency)
            booking = {
                "ref": ref, "property": prop, "status": status,
                "option_expires_on": as_day(option_on), "balance_due_on": as_day(due_on),
                "balance_outstanding": Decimal(minor).scaleb(-places[currency]),
                "currency": currency, "arrival_on": as_day(arrival_on),
                "departure_on": as_day(departure_on),
            }
            spoken = (locale or "").replace("-", "_").split("_")[0]
            language = spoken if spoken in LANGUAGES else agency["language"]
            anchor_on = booking[anchor]
            context = {
                "agency": about,
                "contact": {"ref": contact_ref, "name": name, "email": email, "locale": locale},
                "booking": booking,
                "kind": {"name": kind["name"], "tab": kind["tab"][language],
                         "delay_days": delay, "anchor_on": anchor_on},
                "unsubscribe_url": spec["unsubscribe_url"],
                "settings_url": spec["settings_url"],
                "language": language,
            }
            subject, text, html = render(kind["template"], language, context)
            visible_from = anchor_on + timedelta(days=offset)
            next_id += 1
            items.append((
                next_id, agency["code"], kind["name"], booking_id, as_text(anchor_on),
                as_text(visible_from), as_text(visible_from + timedelta(days=retention)),
                "pending", language, subject, False, False, STAMP, STAMP, STAMP,
            ))
            bodies.append((next_id, text, html))
        cursor.executemany(ITEM, items)
        cursor.executemany(BODY, bodies)
        created += len(items)
    cursor.execute(PASS, (agency["code"], as_text(today), STAMP))
connection.commit()
print(json.dumps({"items": created}))
"""


# -- the data set -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Agency:
    code: str
    name: str
    timezone: str
    language: str
    sender_address: str
    reply_to: str | None

    @property
    def sender(self) -> str:
        return f"{self.name} <{self.sender_address}>"


def make_agencies(count: int) -> list[Agency]:
    """`count` agencies: French and English by turns, over the four zones."""
    width = len(str(count))
    agencies = []
    for n in range(count):
        french = n % 2 == 0
        code = f"agency-{n + 1:0{width}d}"
        agencies.append(
            Agency(
                code=code,
                name=f"Agence {n + 1}" if french else f"Agency {n + 1}",
                timezone=ZONES[(n // 2) % len(ZONES)],
                language="fr" if french else "en",
                sender_address=f"reservations@{code}.example",
                reply_to=f"Accueil <accueil@{code}.example>" if n % 3 == 0 else None,
            )
        )
    return agencies


def write_config(path: Path, agencies: Sequence[Agency]) -> None:
    """reminders.toml: a SQLite file beside it, maildir transport, the shipped templates."""
    lines = [
        "[database]",
        'url = "sqlite:///bench.db"',
        "",
        "[mail]",
        'transport = "maildir"',
        'maildir = "outbox"',
        "",
        "[web]",
        'base_url = "https://links.example"',
        "",
        "[templates]",
        f"dir = {json.dumps(str(TEMPLATES))}",
    ]
    for agency in agencies:
        lines += [
            "",
            "[[agency]]",
            f'code = "{agency.code}"',
            f'name = "{agency.name}"',
            f'timezone = "{agency.timezone}"',
            f'locale = "{agency.language}"',
            f'sender = "{agency.sender}"',
        ]
        if agency.reply_to:
            lines.append(f'reply_to = "{agency.reply_to}"')
        lines += ["", "[agency.delays]", *(f"{kind} = {days}" for kind, days in DELAYS.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_data(
    folder: Path, agencies: Sequence[Agency], count: int, seed: int
) -> tuple[Path, Path, Path]:
    """contacts.csv, bookings.csv and bookings-changed.csv (CHANGED_SHARE of rows changed).

    One contact per booking, in the booking's agency: 1% without an address, 3% opted
    out, 80% confirmed; locales fr, fr_FR, en, en_GB, de (no templates: the agency's
    language is used) or none. Arrivals spread uniformly over two years around the plan
    day; 70% confirmed, 15% options, 15% cancelled; balances due 30 days before arrival,
    mostly owed before that day and mostly paid after it.
    """
    rng = random.Random(seed)
    contacts, bookings = folder / "contacts.csv", folder / "bookings.csv"
    changed = folder / "bookings-changed.csv"
    half = TWO_YEARS_DAYS // 2
    with (
        contacts.open("w", newline="", encoding="utf-8") as contacts_file,
        bookings.open("w", newline="", encoding="utf-8") as bookings_file,
        changed.open("w", newline="", encoding="utf-8") as changed_file,
    ):
        contact_rows, booking_rows = csv.writer(contacts_file), csv.writer(bookings_file)
        changed_rows = csv.writer(changed_file)
        contact_rows.writerow(CONTACT_COLUMNS)
        booking_rows.writerow(BOOKING_COLUMNS)
        changed_rows.writerow(BOOKING_COLUMNS)
        for n in range(count):
            agency = agencies[n % len(agencies)].code
            contact_ref = f"C{n:07d}"
            contact_rows.writerow(
                (
                    contact_ref,
                    agency,
                    f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                    f"guest{n}@Example.com" if rng.random() >= 0.01 else "",
                    rng.choices(LOCALES, [40, 10, 25, 5, 5, 15])[0],
                    "true" if rng.random() < 0.8 else "false",
                    "true" if rng.random() < 0.03 else "false",
                )
            )
            arrival = PLAN_DAY + timedelta(days=rng.randint(-half, half))
            status = rng.choices(["confirmed", "option", "cancelled"], [70, 15, 15])[0]
            held = status == "option" or rng.random() < 0.3
            option_on = arrival - timedelta(days=rng.randint(20, 90)) if held else None
            due_on = arrival - timedelta(days=30)
            owes = status != "cancelled" and rng.random() < (0.85 if due_on >= PLAN_DAY else 0.1)
            amount = f"{rng.randint(5_000, 300_000) / 100:.2f}" if owes else "0.00"
            currency = rng.choices(["EUR", "CHF", "GBP"], [90, 5, 5])[0]
            departure = arrival + timedelta(days=rng.choice([2, 3, 4, 7, 7, 7, 14]))
            row = [
                f"B{n:07d}",
                agency,
                contact_ref,
                rng.choice(PROPERTIES),
                status,
                option_on.isoformat() if option_on else "",
                due_on.isoformat(),
                amount,
                currency,
                arrival.isoformat(),
                departure.isoformat(),
            ]
            booking_rows.writerow(row)
            if rng.random() < CHANGED_SHARE:
                row = change(row, rng)
            changed_rows.writerow(row)
    return contacts, bookings, changed


def change(row: list[str], rng: random.Random) -> list[str]:
    """One booking as the next night's export has it: moved, cancelled or paid."""
    row = list(row)
    what = rng.choice(("moved", "cancelled", "paid"))
    if what == "moved":
        shift = timedelta(days=rng.choice([-3, -2, -1, 1, 2, 3, 7]))
        for column in (5, 6, 9, 10):  # option expiry, balance due, arrival, departure
            if row[column]:
                row[column] = (date.fromisoformat(row[column]) + shift).isoformat()
    elif what == "cancelled":
        row[4] = "cancelled"
    else:
        row[7] = "0.00"
    return row


def bare_plan_spec(agencies: Sequence[Agency], path: Path) -> None:
    """What the bare planner is told: the agencies, the kinds' definitions, the plan day."""
    kinds = [
        {
            "name": kind.name,
            "anchor": kind.anchor,
            "direction": str(kind.direction),
            "statuses": sorted(str(s) for s in kind.eligibility.statuses),
            "needs_balance": kind.eligibility.needs_outstanding_balance,
            "template": kind.template,
            "tab": kind.tab,
        }
        for name, kind in BUILT_IN_KINDS.items()
        if name in DELAYS
    ]
    spec = {
        "day": PLAN_DAY.isoformat(),
        "templates": str(TEMPLATES),
        "unsubscribe_url": UNSUBSCRIBE_URL_PLACEHOLDER,
        "settings_url": SETTINGS_URL_PLACEHOLDER,
        "kinds": kinds,
        "agencies": [
            {
                "code": a.code,
                "name": a.name,
                "sender": a.sender,
                "email": a.sender_address,
                "reply_to": a.reply_to,
                "language": a.language,
                "delays": DELAYS,
            }
            for a in agencies
        ],
    }
    path.write_text(json.dumps(spec), encoding="utf-8")


# -- running and measuring processes -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """One whole process: wall time, exit code, peak resident set, its output."""

    seconds: float
    exit_code: int
    peak_rss_mb: float
    stdout: str
    stderr: str


#: Starts the measured command and waits for it: forked from this small process, the
#: command's peak RSS is its own (a child forked from the benchmark would inherit the
#: benchmark's high-water mark, which Linux keeps across exec). Writes "seconds kilobytes
#: exit-code" to the file named first.
LAUNCHER = """\
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(sys.argv[1], "w") as report:
    report.write(f"{seconds} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_process(command: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run `command` to its end: wall time from fork to exit, peak RSS from wait4's rusage."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r", suffix=".txt") as measured,
    ):
        launcher = [sys.executable, "-S", "-c", LAUNCHER, measured.name, *command]
        process = subprocess.Popen(
            launcher, env=env, stdout=out, stderr=err, start_new_session=True
        )
        try:
            process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        seconds, kilobytes, exit_code = (measured.read().split() or ["0", "0", "-1"])[:3]
        if process.returncode != 0:
            exit_code = str(process.returncode)
        return Run(
            seconds=float(seconds),
            exit_code=int(exit_code),
            # Linux gives kilobytes (KiB); MB here are 10^6 bytes.
            peak_rss_mb=int(kilobytes) * 1024 / 1e6,
            stdout=stdout,
            stderr=stderr,
        )


# -- the two databases -------------------------------------------------------------------


class Side(Protocol):
    """One database backend: where the runs write, and how a state is saved and restored."""

    label: str

    def reminders_env(self) -> dict[str, str]: ...
    def bare_target(self) -> str: ...
    def save(self, state: str) -> None: ...
    def restore(self, state: str) -> None: ...
    def rows(self, query: str) -> Iterator[tuple[Any, ...]]: ...
    def version(self) -> str: ...


@dataclass(slots=True)
class SqliteSide:
    """A SQLite file beside the configuration; states are copies of it."""

    folder: Path
    env: dict[str, str]
    label: str = "SQLite"

    @property
    def database(self) -> Path:
        return self.folder / "bench.db"

    def reminders_env(self) -> dict[str, str]:
        return self.env

    def bare_target(self) -> str:
        return f"sqlite:{self.database}"

    def save(self, state: str) -> None:
        with sqlite3.connect(self.database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        shutil.copyfile(self.database, self.folder / f"{state}.db")

    def restore(self, state: str) -> None:
        """A fresh copy of the state, without the previous run's WAL, on disk."""
        for suffix in ("-wal", "-shm"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.folder / f"{state}.db", self.database)
        # Written back now, not by the kernel in the middle of the timed run.
        os.sync()

    def rows(self, query: str) -> Iterator[tuple[Any, ...]]:
        connection = sqlite3.connect(self.database)
        try:
            yield from connection.execute(query)
        finally:
            connection.close()

    def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"


@dataclass(frozen=True, slots=True)
class PostgresCluster:
    """A throwaway cluster: its folder, port and how to reach one of its databases."""

    folder: Path
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def execute(self, database: str, *statements: str) -> list[tuple[Any, ...]]:
        """Run statements in autocommit (CREATE DATABASE needs it); the last one's rows."""
        import psycopg

        rows: list[tuple[Any, ...]] = []
        with psycopg.connect(self.conninfo(database), autocommit=True) as connection:
            for statement in statements:
                cursor = connection.execute(statement.encode())
                rows = cursor.fetchall() if cursor.description else []
        return rows


@dataclass(slots=True)
class PostgresSide:
    """Database `run` of a throwaway cluster; states are databases cloned from it."""

    cluster: PostgresCluster
    env: dict[str, str]
    label: str = "PostgreSQL"

    def reminders_env(self) -> dict[str, str]:
        return {**self.env, "REMINDERS_DATABASE__URL": self.cluster.url("run")}

    def bare_target(self) -> str:
        return f"postgresql:{self.cluster.conninfo('run')}"

    def save(self, state: str) -> None:
        # Statistics as autovacuum would soon gather them after a load, for both sides.
        self.cluster.execute("run", "VACUUM ANALYZE")
        self.cluster.execute(
            "postgres",
            f"DROP DATABASE IF EXISTS state_{state}",
            f"CREATE DATABASE state_{state} TEMPLATE run",
        )

    def restore(self, state: str) -> None:
        self.cluster.execute(
            "postgres",
            "DROP DATABASE IF EXISTS run",
            f"CREATE DATABASE run TEMPLATE state_{state}",
            "CHECKPOINT",  # the clone on disk now, not during the timed run
        )

    def rows(self, query: str) -> Iterator[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.cluster.conninfo("run")) as connection:
            yield from connection.execute(query.encode())

    def version(self) -> str:
        (version,) = self.cluster.execute("postgres", "SHOW server_version")[0]
        return f"PostgreSQL {version}"


# -- what the runs wrote -----------------------------------------------------------------

#: What an import of contacts wrote, to compare reminders' with the bare script's.
CONTACT_COUNTS = (
    "SELECT 'contacts', count(*), count(address_id),"
    " sum(CASE WHEN imported_confirmed THEN 1 ELSE 0 END),"
    " sum(CASE WHEN imported_opt_out THEN 1 ELSE 0 END) FROM contacts"
    " UNION ALL SELECT 'addresses', count(*), count(DISTINCT address_key), count(confirmed_at),"
    " count(opted_out_by) FROM addresses"
    " UNION ALL SELECT 'events ' || action, count(*), count(DISTINCT registry_id), 0, 0"
    " FROM consent_events GROUP BY action"
)
BOOKING_COUNTS = (
    "SELECT status, count(*), sum(balance_outstanding_minor), count(option_expires_on),"
    " min(arrival_on), max(departure_on) FROM bookings GROUP BY status ORDER BY status"
)
ITEM_CONTENT = (
    "SELECT b.ref, i.kind, i.anchor_on, i.visible_from, i.visible_until, i.subject,"
    " t.body_text, t.body_html FROM items i JOIN item_bodies t ON t.item_id = i.id"
    " JOIN bookings b ON b.id = i.booking_id"
    " WHERE i.status = 'pending'"
)
ITEM_STATUSES = "SELECT status, count(*) FROM items GROUP BY status ORDER BY status"
RERENDERED = "SELECT count(*) FROM items WHERE status = 'pending' AND rendered_at > created_at"


def counts(side: Side, query: str) -> list[tuple[str, ...]]:
    """The rows of a counting query, as text (sums come back as Decimal on PostgreSQL)."""
    return sorted(tuple(str(value) for value in row) for row in side.rows(query))


def item_contents(side: Side) -> dict[tuple[str, str, str], bytes]:
    """Each pending item's digest (window, subject, text, HTML), by booking ref, kind, anchor."""
    found = {}
    for ref, kind, anchor_on, *content in side.rows(ITEM_CONTENT):
        digest = hashlib.blake2b("\x00".join(map(str, content)).encode(), digest_size=16)
        found[(ref, kind, str(anchor_on))] = digest.digest()
    return found


# -- the measurements --------------------------------------------------------------------


@dataclass(slots=True)
class Figures:
    """The best run of each side of one case, and the line's options."""

    ours: Run | None = None
    bare: Run | None = None
    #: every reminders run's peak RSS (the line shows the highest)
    peak_rss_mb: float = 0.0
    #: items the (last) reminders run left pending, where the line counts them
    items: int = 0
    note: str = ""

    def keep(self, run: Run, *, bare: bool = False) -> None:
        if bare:
            if self.bare is None or run.seconds < self.bare.seconds:
                self.bare = run
            return
        self.peak_rss_mb = max(self.peak_rss_mb, run.peak_rss_mb)
        if self.ours is None or run.seconds < self.ours.seconds:
            self.ours = run


@dataclass(slots=True)
class Bench:
    """What every measurement shares: the files, the repeat count, the problems."""

    folder: Path
    bookings: int
    repeat: int
    contacts_csv: Path
    bookings_csv: Path
    changed_csv: Path
    plan_spec: Path
    #: what went wrong, by case (the case's name as in the table)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def report(self, case: str, problem: str) -> None:
        self.problems.setdefault(case, []).append(problem)

    def check(self, case: str, what: str, expected: object, got: object) -> None:
        if expected != got:
            self.report(case, f"{what}: expected {expected}, got {got}")

    def reminders(self, side: Side, case: str, *args: str) -> Run:
        """One checked `reminders` process."""
        run = run_process([*reminders_command(), *args], side.reminders_env())
        if run.exit_code != 0:
            self.report(case, f"reminders {args[0]} exited {run.exit_code}: {gist(run.stderr)}")
        return run

    def bare(self, side: Side, case: str, script: str, *args: str) -> tuple[Run, dict[str, int]]:
        """One checked bare process; what it says it wrote."""
        run = run_process([sys.executable, "-c", BARE_PREAMBLE + script, side.bare_target(), *args])
        if run.exit_code != 0:
            self.report(case, f"bare script exited {run.exit_code}: {gist(run.stderr)}")
            return run, {}
        said: dict[str, int] = json.loads(run.stdout.strip().splitlines()[-1])
        return run, said


def case_name(side: Side, step: str) -> str:
    return f"{side.label} {step}"


def measure_import(
    bench: Bench, side: Side, step: str, entity: str, path: Path, script: str, state: str
) -> Figures:
    """Best of `repeat` for each side, each run from `state`; the last (ours) is kept."""
    case = case_name(side, step)
    query = CONTACT_COUNTS if entity == "contacts" else BOOKING_COUNTS
    figures = Figures()
    for _ in range(bench.repeat):
        side.restore(state)
        run, said = bench.bare(side, case, script, str(path))
        figures.keep(run, bare=True)
        bench.check(case, f"{entity} the bare script wrote", bench.bookings, said.get(entity))
        bare_counts = counts(side, query)
        side.restore(state)
        figures.keep(bench.reminders(side, case, "import", entity, str(path)))
        bench.check(case, "rows written (reminders vs bare)", bare_counts, counts(side, query))
    return figures


def measure_plan(bench: Bench, side: Side) -> Figures:
    """The first pass from the imported bookings: reminders and the bare planner, same items."""
    case = case_name(side, "plan, first pass")
    figures = Figures()
    for _ in range(bench.repeat):
        side.restore("bookings")
        run, said = bench.bare(side, case, BARE_PLAN, str(bench.plan_spec))
        figures.keep(run, bare=True)
        bare_items = item_contents(side)
        bench.check(case, "items the bare script created", len(bare_items), said.get("items"))
        side.restore("bookings")
        figures.keep(bench.reminders(side, case, "plan", "--date", PLAN_DAY.isoformat()))
        ours = item_contents(side)
        bench.check(case, "pending items (reminders vs bare)", len(bare_items), len(ours))
        compare_items(bench, case, ours, bare_items)
        statuses = counts(side, ITEM_STATUSES)
        bench.check(case, "items by status", [("pending", str(len(ours)))], statuses)
    figures.items = len(ours)
    figures.note = f"{len(ours):,} items"
    return figures


def compare_items(
    bench: Bench,
    case: str,
    ours: dict[tuple[str, str, str], bytes],
    bare: dict[tuple[str, str, str], bytes],
) -> None:
    """Both sides must have created the same items with the same windows and content."""
    only_ours = sorted(ours.keys() - bare.keys())
    only_bare = sorted(bare.keys() - ours.keys())
    differ = sorted(k for k in ours.keys() & bare.keys() if ours[k] != bare[k])
    for label, keys in (
        ("items only reminders created", only_ours),
        ("items only the bare script created", only_bare),
        ("items whose window or content differ", differ),
    ):
        if keys:
            bench.report(case, f"{len(keys)} {label}, e.g. {' '.join(keys[0])}")


def measure_side(bench: Bench, side: Side) -> tuple[dict[str, Figures], int]:
    """Every step on one backend; the figures by step, and the first pass's item count."""
    figures: dict[str, Figures] = {}
    progress(f"{side.label}: db upgrade")
    setup = bench.reminders(side, case_name(side, "import contacts"), "db", "upgrade")
    if setup.exit_code != 0:
        return figures, 0
    side.save("empty")
    progress(f"{side.label}: import contacts")
    figures["import contacts"] = measure_import(
        bench, side, "import contacts", "contacts", bench.contacts_csv, BARE_CONTACTS, "empty"
    )
    side.save("contacts")
    progress(f"{side.label}: import bookings")
    figures["import bookings"] = measure_import(
        bench, side, "import bookings", "bookings", bench.bookings_csv, BARE_BOOKINGS, "contacts"
    )
    side.save("bookings")
    progress(f"{side.label}: plan, first pass")
    figures["plan, first pass"] = measure_plan(bench, side)
    items = figures["plan, first pass"].items
    side.save("planned")

    progress(f"{side.label}: plan, same day again")
    case = case_name(side, "plan, same day again")
    again = figures["plan, same day again"] = Figures()
    before = counts(side, ITEM_STATUSES)
    for _ in range(bench.repeat):
        side.restore("planned")
        again.keep(bench.reminders(side, case, "plan", "--date", PLAN_DAY.isoformat()))
        bench.check(case, "items by status (nothing new)", before, counts(side, ITEM_STATUSES))

    progress(f"{side.label}: import changed bookings, plan again")
    side.restore("planned")
    case = case_name(side, "import changed bookings")
    changed = figures["import changed bookings"] = Figures()
    changed.keep(bench.reminders(side, case, "import", "bookings", str(bench.changed_csv)))
    rows = sum(int(row[1]) for row in counts(side, BOOKING_COUNTS))
    bench.check(case, "bookings after the re-import", bench.bookings, rows)
    case = case_name(side, "plan after the change")
    replanned = figures["plan after the change"] = Figures()
    replanned.keep(bench.reminders(side, case, "plan", "--date", PLAN_DAY.isoformat()))
    statuses = {status: int(n) for status, n in counts(side, ITEM_STATUSES)}
    (rerendered,) = next(side.rows(RERENDERED))
    replanned.note = (
        f"{statuses.get('withdrawn', 0):,} withdrawn, "
        f"{sum(statuses.values()) - items:,} created, {int(rerendered):,} re-rendered"
    )
    # With a thousand items, some 30 of them belong to changed bookings: none withdrawn is
    # a fault. With fewer, none may be.
    if items >= 1000 and not statuses.get("withdrawn"):
        bench.report(case, "no item withdrawn after 5% of the bookings changed")
    return figures, items


def profile(bench: Bench, side: SqliteSide) -> list[Path]:
    """Record one import of contacts and one plan with py-spy; return the files."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True)
    output = Path(tempfile.mkdtemp(prefix="reminders-profile-"))
    record = [str(py_spy), "record", "--idle", "--format", "speedscope", "-o"]
    files = []
    for state, name, args in [
        ("empty", "import-contacts", ["import", "contacts", str(bench.contacts_csv)]),
        ("bookings", "plan", ["plan", "--date", PLAN_DAY.isoformat()]),
    ]:
        side.restore(state)
        path = output / f"{name}.speedscope.json"
        done = run_process([*record, str(path), "--", *reminders_command(), *args], side.env)
        if done.exit_code != 0:
            problem = f"py-spy exited {done.exit_code}: {gist(done.stderr)}"
            bench.report(f"profile of {name}", problem)
        files.append(path)
    return files


# -- the report --------------------------------------------------------------------------

#: A line of the table: case, reminders, peak RSS, baseline, ratio, target, met.
Row = tuple[str, str, str, str, str, str, str]


def seconds_and_rate(run: Run, count: int, unit: str) -> str:
    return f"{run.seconds:.2f} s  {count / run.seconds:,.0f} {unit}/s"


def table_rows(side: Side, figures: dict[str, Figures], bookings: int, items: int) -> list[Row]:
    rows: list[Row] = []
    first = figures.get("plan, first pass")
    first_import = figures.get("import bookings")
    for step, count, unit, target in [
        ("import contacts", bookings, "rows", TARGET_IMPORT),
        ("import bookings", bookings, "rows", TARGET_IMPORT),
        ("plan, first pass", items, "items", TARGET_PLAN),
        ("plan, same day again", 0, "", TARGET_SAME_DAY),
        ("import changed bookings", bookings, "rows", None),
        ("plan after the change", 0, "", None),
    ]:
        found = figures.get(step)
        if found is None or found.ours is None:
            continue
        ours = found.ours
        label = f"{step} ({found.note})" if found.note else step
        time_cell = seconds_and_rate(ours, count, unit) if count else f"{ours.seconds:.2f} s"
        rss = f"{found.peak_rss_mb:,.0f} MB"
        baseline, ratio_cell, target_cell, met = "", "", "", ""
        reference: float | None = None
        if found.bare is not None:
            what = "bare planner" if step.startswith("plan") else "bare csv + executemany"
            baseline = f"{what} {found.bare.seconds:.2f} s ({found.bare.peak_rss_mb:,.0f} MB)"
            reference = found.bare.seconds
        elif step in ("plan, same day again", "plan after the change") and first and first.ours:
            baseline, reference = f"first pass {first.ours.seconds:.2f} s", first.ours.seconds
        elif step == "import changed bookings" and first_import and first_import.ours:
            baseline = f"first import {first_import.ours.seconds:.2f} s"
            reference = first_import.ours.seconds
        if reference:
            ratio_cell = f"{ours.seconds / reference:.2f}x"
        within_rss = found.peak_rss_mb <= TARGET_RSS_MB
        if target is not None and reference:
            target_cell = f"<= {target}x, <= {TARGET_RSS_MB:.0f} MB"
            met = "yes" if ours.seconds / reference <= target and within_rss else "NO"
        else:
            target_cell = f"<= {TARGET_RSS_MB:.0f} MB"
            met = "yes" if within_rss else "NO"
        rows.append(
            (f"{side.label} {label}", time_cell, rss, baseline, ratio_cell, target_cell, met)
        )
    return rows


def marked_failed(row: Row, problems: dict[str, list[str]]) -> Row:
    """A line whose runs (or whose baseline's) went wrong shows no figure as if it counted."""
    case, ours, rss, baseline, figure, target, met = row
    if any(case.startswith(failed) for failed in problems):
        ours, figure, met = f"{ours} FAILED", "-", "-"
    return case, ours, rss, baseline, figure, target, met


def print_table(rows: Sequence[Row]) -> None:
    header: Row = ("case", "reminders", "peak RSS", "baseline", "ratio", "target", "met")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(" | ".join(cells).rstrip())


def main(argv: list[str] | None = None) -> int:
    assert __doc__
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=200_000, metavar="N", help="(200000)")
    parser.add_argument("--agencies", type=int, default=500, metavar="A", help="(500)")
    parser.add_argument("--skip-postgresql", action="store_true", help="no PostgreSQL lines")
    parser.add_argument("--profile", action="store_true", help="profile an import and a plan")
    parser.add_argument("--seed", type=int, default=2026, help="of the data generator (2026)")
    options = parser.parse_args(argv)
    bookings: int = options.bookings
    if bookings < 100 or options.agencies < 1 or options.agencies > bookings:
        parser.error("give at least 100 bookings and between 1 and that many agencies")
    repeat = 3 if bookings <= SMALL else 1
    print(
        f"scale benchmark: {bookings:,} bookings and contacts over {options.agencies} agencies"
        f" in {len(ZONES)} time zones, plan day {PLAN_DAY}; {date.today().isoformat()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}"
    )
    print(f"reminders from {reminders_source()}; whole processes, best of {repeat}")
    folder = Path(tempfile.mkdtemp(prefix="reminders-bench-"))
    rows: list[Row] = []
    notes: list[str] = []
    try:
        # Stop cleanly (finally blocks run) when interrupted with SIGTERM too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        progress("writing the data set")
        agencies = make_agencies(options.agencies)
        config = folder / "reminders.toml"
        write_config(config, agencies)
        contacts_csv, bookings_csv, changed_csv = write_data(
            folder, agencies, bookings, options.seed
        )
        plan_spec = folder / "bare-plan.json"
        bare_plan_spec(agencies, plan_spec)
        bench = Bench(folder, bookings, repeat, contacts_csv, bookings_csv, changed_csv, plan_spec)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
        env |= {"REMINDERS_CONFIG": str(config), "REMINDERS_WEB__SECRET_KEY": SECRET_KEY}

        sqlite_side = SqliteSide(folder, env)
        versions = [sqlite_side.version()]
        figures, items = measure_side(bench, sqlite_side)
        rows += table_rows(sqlite_side, figures, bookings, items)
        if options.profile:
            progress("profiling one import of contacts and one plan")
            for path in profile(bench, sqlite_side):
                notes.append(f"profile: {path}")
        if options.skip_postgresql:
            pass
        elif not (PG_BIN / "initdb").exists():
            notes.append(f"PostgreSQL skipped: no {PG_BIN / 'initdb'} (Debian's postgresql-15)")
        elif importlib.util.find_spec("psycopg") is None:
            notes.append('PostgreSQL skipped: no psycopg (pip install -e ".[postgresql]")')
        else:
            with temporary_postgresql(PostgresCluster) as cluster:
                cluster.execute("postgres", "CREATE DATABASE run")
                pg_side = PostgresSide(cluster, env)
                versions.append(pg_side.version())
                figures, items = measure_side(bench, pg_side)
                rows += table_rows(pg_side, figures, bookings, items)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(", ".join(versions))
    print_table([marked_failed(row, bench.problems) for row in rows])
    for note in notes:
        print(note)
    for case, problems in bench.problems.items():
        for problem, runs in Counter(problems).items():
            print(f"PROBLEM {case}: {problem}" + (f" ({runs} runs)" if runs > 1 else ""))
    return 1 if bench.problems else 0


if __name__ == "__main__":
    sys.exit(main())
