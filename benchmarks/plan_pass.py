"""Time the planning pass against bare baselines measured in the same run.

    python benchmarks/plan_pass.py [--bookings N] [--backend sqlite | --backend postgresql URL]

Every figure is printed next to a baseline measured in the same process, on the same
rows, with the raw database driver (sqlite3 or psycopg) and a plain Jinja environment.
The ratios, not the absolute times, are what carries over from one machine to another.
benchmarks/README.md says what each line means.

With PostgreSQL, URL must name an empty throwaway database: the script migrates it,
fills it, empties its tables between the steps (TRUNCATE) and at the end.
"""

from __future__ import annotations

import argparse
import functools
import platform
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import jinja2
import sqlalchemy
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from sqlalchemy import Engine, event

from reminders import service
from reminders.bookings import Booking, BookingStatus, Contact
from reminders.clock import FixedClock
from reminders.config import AgencySettings, Settings
from reminders.database import create_engine, current_revision, describe, upgrade
from reminders.errors import ReminderError
from reminders.kinds import Kind
from reminders.planning import visible_anchors
from reminders.store import Database, Store, minor_units

TEMPLATES = Path(__file__).parents[1] / "templates"
PLAN_DAY = date(2026, 12, 1)
#: 06:00 in Annecy on the plan day: the clock stamps updated_at and rendered_at
NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
#: rows per upsert call, as `reminders import` does
CHUNK = 500
TWO_YEARS_DAYS = 730
#: repeats of the short measurements (best of), and of the longer ones
QUICK, SLOW = 5, 3
DELAYS = {"balance_due": 30, "arrival": 7, "option_expiry": 2, "post_departure": 7}
AGENCIES: list[dict[str, Any]] = [
    {
        "code": "annecy",
        "name": "Agence du Lac",
        "timezone": "Europe/Paris",
        "locale": "fr",
        "sender": "Agence du Lac <reservations@agence-du-lac.example>",
        "delays": DELAYS,
    },
    {
        "code": "chamonix",
        "name": "Chamonix Chalets",
        "timezone": "Europe/Paris",
        "locale": "en",
        "sender": "Chamonix Chalets <hello@chamonix-chalets.example>",
        "reply_to": "Bookings <bookings@chamonix-chalets.example>",
        "delays": DELAYS,
    },
]
PROPERTIES = [
    "Chalet des Aravis",
    "Gîte Lac & Montagne",
    "Appartement Mont-Blanc",
    "Studio Les Praz",
    "Chalet L'Aiguille",
    "Maison du Semnoz",
]
BOOKING_COLUMNS = (
    "ref, agency, contact_id, property, status, option_expires_on, balance_due_on, "
    "balance_outstanding_minor, currency, arrival_on, departure_on, updated_at"
)
CONTACT_COLUMNS = "ref, agency, name, email, locale, updated_at"
ITEM_COLUMNS = (
    "id, agency, kind, booking_id, anchor_on, visible_from, visible_until, status, reason, "
    "locale, subject, edited, rendered_at, created_at, updated_at"
)
BODY_COLUMNS = "item_id, body_text, body_html"

T = TypeVar("T")


# -- data ------------------------------------------------------------------------


def make_data(count: int, span_days: int, seed: int) -> tuple[list[Contact], list[Booking]]:
    """Return `count` bookings whose dates spread uniformly over `span_days` around PLAN_DAY.

    70% confirmed, 15% options, 15% cancelled; balances are mostly paid once due;
    contacts write in French, English, German (no templates: falls back) or say nothing.
    """
    rng = random.Random(seed)
    contacts = []
    for i in range(max(2, count * 3 // 4)):
        contacts.append(
            Contact(
                ref=f"C{i:07d}",
                agency=AGENCIES[i % 2]["code"],
                name=f"Guest {i}",
                email=f"guest{i}@example.com" if rng.random() < 0.95 else None,
                locale=rng.choices(
                    ["fr", "fr_FR", "en", "en_GB", "de", None], weights=[45, 10, 20, 5, 5, 15]
                )[0],
                email_confirmed=rng.random() < 0.8,
            )
        )
    bookings = []
    half = span_days // 2
    for i in range(count):
        contact = contacts[rng.randrange(len(contacts))]
        arrival = PLAN_DAY + timedelta(days=rng.randint(-half, half))
        status = rng.choices(
            [BookingStatus.CONFIRMED, BookingStatus.OPTION, BookingStatus.CANCELLED],
            weights=[70, 15, 15],
        )[0]
        held = status is BookingStatus.OPTION or rng.random() < 0.3
        balance_due = arrival - timedelta(days=30)
        owes = status is not BookingStatus.CANCELLED and rng.random() < (
            0.85 if balance_due >= PLAN_DAY else 0.1
        )
        currency = rng.choices(["EUR", "CHF", "GBP"], weights=[90, 5, 5])[0]
        bookings.append(
            Booking(
                ref=f"B{i:07d}",
                agency=contact.agency,
                contact_ref=contact.ref,
                property=rng.choice(PROPERTIES),
                status=status,
                option_expires_on=arrival - timedelta(days=rng.randint(20, 90)) if held else None,
                balance_due_on=balance_due,
                balance_outstanding=Decimal(rng.randint(5_000, 300_000)).scaleb(-2)
                if owes
                else Decimal(0),
                currency=currency,
                arrival_on=arrival,
                departure_on=arrival + timedelta(days=rng.choice([2, 3, 4, 7, 7, 7, 14])),
            )
        )
    return contacts, bookings


def settings() -> Settings:
    return Settings(agency=AGENCIES, templates={"dir": str(TEMPLATES)})


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# -- the database and the raw driver -----------------------------------------------


@dataclass
class Backend:
    engine: Engine
    is_sqlite: bool

    @property
    def mark(self) -> str:
        """The raw driver's placeholder."""
        return "?" if self.is_sqlite else "%s"

    def value(self, value: Any) -> Any:
        """Adapt a value for the raw driver the way SQLAlchemy stores it."""
        if not self.is_sqlite:
            return value
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(value, date):
            return value.isoformat()
        return value

    @contextmanager
    def raw(self) -> Iterator[Any]:
        """Yield a raw DBAPI connection from the engine's pool (same pragmas as the app)."""
        connection = self.engine.raw_connection()
        try:
            yield connection
        finally:
            connection.rollback()
            connection.close()

    def empty(self) -> None:
        """Delete every row the benchmark wrote."""
        with self.engine.begin() as connection:
            if self.is_sqlite:
                for table in ("item_bodies", "items", "planning_passes", "bookings", "contacts"):
                    connection.exec_driver_sql(f"DELETE FROM {table}")
            else:
                connection.exec_driver_sql(
                    "TRUNCATE item_bodies, items, planning_passes, bookings, contacts"
                    " RESTART IDENTITY"
                )
        if self.is_sqlite:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM")

    def settle(self) -> None:
        """On PostgreSQL, vacuum and analyze, as autovacuum soon would after a load.

        This also clears the dead rows the rolled-back baselines leave behind.
        """
        if not self.is_sqlite:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE")

    def count(self, table: str) -> int:
        with self.engine.connect() as connection:
            return int(connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def bare_insert_contacts(backend: Backend, contacts: Sequence[Contact]) -> None:
    v = backend.value
    rows = [(c.ref, c.agency, c.name, c.email, c.locale, v(NOW)) for c in contacts]
    marks = ", ".join([backend.mark] * 6)
    with backend.raw() as raw:
        cursor = raw.cursor()
        for chunk in chunks(rows):
            cursor.executemany(f"INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES ({marks})", chunk)
        raw.commit()


def bare_import_bookings(backend: Backend, bookings: Sequence[Booking]) -> float:
    """Insert the bookings with the raw driver's executemany; return the seconds taken."""
    v = backend.value
    marks = ", ".join([backend.mark] * 12)
    with backend.raw() as raw:
        cursor = raw.cursor()
        start = time.perf_counter()
        cursor.execute("SELECT ref, id FROM contacts")
        contact_ids = dict(cursor.fetchall())
        rows = [
            (
                b.ref,
                b.agency,
                contact_ids[b.contact_ref],
                b.property,
                str(b.status),
                v(b.option_expires_on),
                v(b.balance_due_on),
                minor_units(b.balance_outstanding, b.currency),
                b.currency,
                v(b.arrival_on),
                v(b.departure_on),
                v(NOW),
            )
            for b in bookings
        ]
        for chunk in chunks(rows):
            cursor.executemany(f"INSERT INTO bookings ({BOOKING_COLUMNS}) VALUES ({marks})", chunk)
        raw.commit()
        return time.perf_counter() - start


def store_import(
    database: Database, contacts: Sequence[Contact], bookings: Sequence[Booking]
) -> float:
    """Import through the store as `reminders import` does; return the bookings' seconds."""
    with database.transaction() as store:
        for contact_chunk in chunks(contacts):
            store.upsert_contacts(contact_chunk)
    start = time.perf_counter()
    with database.transaction() as store:
        for booking_chunk in chunks(bookings):
            store.upsert_bookings(booking_chunk)
    return time.perf_counter() - start


# -- baselines: bare selection (a) and bare rendering (b) ------------------------------


@dataclass(frozen=True)
class Selected:
    agency: AgencySettings
    kind: Kind
    row: tuple[Any, ...]


def bare_candidates_sql(backend: Backend, kind: Kind, *, exclude_live: bool) -> str:
    """The selection Store.candidates makes, written by hand (one indexed range query)."""
    anchor = f"b.{kind.anchor}"
    m = backend.mark
    statuses = ", ".join(f"'{s}'" for s in sorted(kind.eligibility.statuses))
    balance = (
        " AND b.balance_outstanding_minor > 0" if kind.eligibility.needs_outstanding_balance else ""
    )
    live = (
        f" AND NOT EXISTS (SELECT 1 FROM items i WHERE i.booking_id = b.id AND i.kind = {m}"
        f" AND i.anchor_on = {anchor} AND i.status <> 'withdrawn')"
        if exclude_live
        else ""
    )
    return (
        "SELECT b.id, b.ref, b.property, b.status, b.option_expires_on, b.balance_due_on,"
        " b.balance_outstanding_minor, b.currency, b.arrival_on, b.departure_on,"
        " c.ref, c.name, c.email, c.locale"
        " FROM bookings b JOIN contacts c ON c.id = b.contact_id"
        f" WHERE b.agency = {m} AND {anchor} BETWEEN {m} AND {m}"
        f" AND b.status IN ({statuses}){balance}{live}"
        f" ORDER BY {anchor}, b.ref"
    )


def bare_select(
    backend: Backend, config: Settings, today: date, *, exclude_live: bool = False
) -> list[Selected]:
    """Fetch the visible, eligible bookings: one range query per agency and kind."""
    selected: list[Selected] = []
    with backend.raw() as raw:
        cursor = raw.cursor()
        for agency in config.agency:
            for kind in agency.enabled_kinds():
                anchors = visible_anchors(kind, today)
                params: list[Any] = [agency.code, backend.value(anchors.first)]
                params.append(backend.value(anchors.last))
                if exclude_live:
                    params.append(kind.name)
                cursor.execute(
                    bare_candidates_sql(backend, kind, exclude_live=exclude_live), params
                )
                selected.extend(Selected(agency, kind, row) for row in cursor.fetchall())
    return selected


def plain_environment() -> jinja2.Environment:
    """A plain (not sandboxed) Jinja environment over the same files, with the same filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date"] = jinja2.pass_context(
        lambda ctx, value, style="long": (
            format_date(value, style, locale=ctx["language"]) if value else ""
        )
    )
    env.filters["money"] = jinja2.pass_context(
        lambda ctx, value, currency: format_currency(value, currency, locale=ctx["language"])
    )
    env.filters["number"] = jinja2.pass_context(
        lambda ctx, value: format_decimal(value, locale=ctx["language"])
    )
    return env


def bare_render(selected: Sequence[Selected]) -> int:
    """Render subject, text and HTML of each selected booking; return how many."""
    # A fresh environment each run: compiling the templates is counted, as in a pass.
    env = plain_environment()
    agencies = {s.agency.code: _bare_agency(s.agency) for s in selected}
    count = 0
    for s in selected:
        agency_language, agency = agencies[s.agency.code]
        language, context = _bare_context(s, agency_language, agency)
        folder = s.kind.template
        subject = env.get_template(f"{folder}/subject.{language}.txt").render(context)
        text = env.get_template(f"{folder}/body.{language}.txt").render(context)
        html = env.get_template(f"{folder}/body.{language}.html").render(context)
        count += bool(" ".join(subject.split()) and text and html)
    return count


def _bare_agency(agency: AgencySettings) -> tuple[str, dict[str, Any]]:
    return agency.language, {
        "code": agency.code,
        "name": agency.name,
        "sender": agency.sender,
        "email": agency.sender.split("<")[-1].rstrip(">"),
        "reply_to": agency.reply_to,
    }


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _bare_context(
    s: Selected, agency_language: str, agency: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Build the variables templates see from one row of the bare selection."""
    _, ref, prop, status, *dates_and_money, contact_ref, name, email, locale = s.row
    option_on, due_on, minor, currency, arrival_on, departure_on = dates_and_money
    booking = {
        "ref": ref,
        "property": prop,
        "status": status,
        "option_expires_on": _day(option_on),
        "balance_due_on": _day(due_on),
        "balance_outstanding": Decimal(minor).scaleb(-2),
        "currency": currency,
        "arrival_on": _day(arrival_on),
        "departure_on": _day(departure_on),
    }
    spoken = (locale or "").replace("-", "_").split("_")[0]
    language = spoken if spoken in ("fr", "en") else agency_language
    return language, {
        "agency": agency,
        "contact": {"ref": contact_ref, "name": name, "email": email, "locale": locale},
        "booking": booking,
        "kind": {
            "name": s.kind.name,
            "tab": s.kind.tab_label(language),
            "delay_days": s.kind.delay_days,
            "anchor_on": booking[s.kind.anchor],
        },
        "language": language,
    }


# -- measuring the app ---------------------------------------------------------------


def timed(run: Callable[[], T]) -> tuple[float, T]:
    """Return the wall time of one run, and its result."""
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def best_of(repeat: int, run: Callable[[], T]) -> tuple[float, T]:
    """Return the shortest wall time of `repeat` runs, and the last run's result."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def plan_all(
    database: Database, config: Settings, today: date, *, dry_run: bool = False
) -> list[service.AgencyPlan]:
    return [
        service.plan_agency(database, config, agency, today=today, dry_run=dry_run)
        for agency in config.agency
    ]


@dataclass
class Breakdown:
    """Where a pass spends its time: wall time and SQL statements inside chosen functions."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    statements: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total_statements: int = 0

    @contextmanager
    def watching(self, engine: Engine) -> Iterator[Breakdown]:
        targets: list[tuple[Any, str]] = [
            (Store, "withdraw_unqualified"),
            (Store, "expire_passed"),
            (Store, "stale_items"),
            (Store, "candidates"),
            (service, "render_item"),
            (Store, "add_items"),
        ]
        originals = [(owner, name, getattr(owner, name)) for owner, name in targets]
        for owner, name, original in originals:
            setattr(owner, name, self._timed(name, original))

        def count(*_: Any) -> None:
            self.total_statements += 1

        event.listen(engine, "before_cursor_execute", count)
        try:
            yield self
        finally:
            event.remove(engine, "before_cursor_execute", count)
            for owner, name, original in originals:
                setattr(owner, name, original)

    def _timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            statements, start = self.total_statements, time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.statements[name] += self.total_statements - statements

        return timed

    def upkeep(self) -> tuple[float, int]:
        """Time and statements spent withdrawing, expiring and re-rendering."""
        names = ("withdraw_unqualified", "expire_passed", "stale_items")
        return sum(self.seconds[n] for n in names), sum(self.statements[n] for n in names)


@contextmanager
def counting(engine: Engine) -> Iterator[list[int]]:
    """Count the SQL statements sent while the block runs."""
    counter = [0]

    def count(*_: Any) -> None:
        counter[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", count)


def bare_insert_items(backend: Backend) -> tuple[int, float]:
    """Re-insert the items the pass created with executemany (in a rolled-back transaction)."""
    with backend.raw() as raw:
        cursor = raw.cursor()
        cursor.execute(f"SELECT {ITEM_COLUMNS} FROM items ORDER BY id")
        rows = cursor.fetchall()
        cursor.execute(f"SELECT {BODY_COLUMNS} FROM item_bodies ORDER BY item_id")
        bodies = cursor.fetchall()
        cursor.execute("DELETE FROM item_bodies")
        cursor.execute("DELETE FROM items")
        marks = ", ".join([backend.mark] * len(ITEM_COLUMNS.split(",")))
        start = time.perf_counter()
        cursor.executemany(f"INSERT INTO items ({ITEM_COLUMNS}) VALUES ({marks})", rows)
        body_marks = ", ".join([backend.mark] * 3)
        cursor.executemany(
            f"INSERT INTO item_bodies ({BODY_COLUMNS}) VALUES ({body_marks})", bodies
        )
        elapsed = time.perf_counter() - start
        raw.rollback()
    return len(rows), elapsed


def candidates_plan(database: Database, backend: Backend, agency: str, kind: Kind) -> list[str]:
    """Capture the statement Store.candidates executes and ask the database for its plan."""
    captured: list[tuple[str, Any]] = []

    def grab(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    with database.transaction(dry_run=True) as store:
        event.listen(backend.engine, "before_cursor_execute", grab)
        try:
            store.candidates(agency, kind, visible_anchors(kind, PLAN_DAY))
        finally:
            event.remove(backend.engine, "before_cursor_execute", grab)
    statement, parameters = captured[-1]
    with backend.engine.connect() as connection:
        if not backend.is_sqlite:
            result = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            return [row[0] for row in result]
        result = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        depth: dict[int, int] = {0: -1}
        lines = []
        for node, parent, _, detail in result:
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
        return lines


# -- the report ----------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.2f} s"


def per_s(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds else "-"


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add(self, *cells: str) -> None:
        self.rows.append(cells)

    def print(self, header: tuple[str, ...]) -> None:
        rows = [header, *self.rows]
        widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(len(header))]
        for r in rows:
            cells = [c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)]
            print("  ".join(cells).rstrip())
        self.rows = []


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run the benchmark, return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=20_000, metavar="N")
    parser.add_argument(
        "--backend",
        nargs="+",
        default=["sqlite"],
        metavar="BACKEND",
        help="'sqlite' (a temporary file, the default) or 'postgresql URL' (an empty database)",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-scaling", action="store_true", help="skip the 4N runs")
    args = parser.parse_args(argv)
    if args.bookings < 100:
        parser.error("--bookings: give 100 or more")
    try:
        if args.backend == ["sqlite"]:
            with tempfile.TemporaryDirectory(prefix="reminders-bench-") as folder:
                return run(f"sqlite:///{Path(folder) / 'bench.db'}", args)
        if len(args.backend) == 2 and args.backend[0] == "postgresql":
            # A bare postgresql:// URL would pick psycopg2; the project uses psycopg 3.
            url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", args.backend[1])
            return run(url, args)
    except ReminderError as error:
        print(error, file=sys.stderr)
        return 2
    parser.error("--backend: give 'sqlite', or 'postgresql' and the URL of an empty database")


def run(url: str, args: argparse.Namespace) -> int:
    engine = create_engine(url)
    try:
        if current_revision(engine) is None and sqlalchemy.inspect(engine).get_table_names():
            print(f"{describe(url)} holds other tables: give an empty throwaway database")
            return 2
        upgrade(engine)
        backend = Backend(engine, engine.dialect.name == "sqlite")
        if any(backend.count(t) for t in ("contacts", "bookings", "items")):
            print(f"{describe(url)} holds reminders data: give an empty throwaway database")
            return 2
        try:
            return report(backend, Database(engine, FixedClock(NOW)), settings(), args)
        finally:
            if not backend.is_sqlite:  # a SQLite file goes with its temporary folder
                backend.empty()
    finally:
        engine.dispose()


def report(backend: Backend, database: Database, config: Settings, args: argparse.Namespace) -> int:
    n: int = args.bookings
    engine = backend.engine
    version = sqlite3.sqlite_version if backend.is_sqlite else _server_version(backend)
    print(
        f"planning-pass benchmark: {n:,} bookings, anchor dates over {TWO_YEARS_DAYS} days "
        f"around {PLAN_DAY}, 2 agencies x 4 kinds"
    )
    print(
        f"{engine.dialect.name} {version}, Python {platform.python_version()}, "
        f"SQLAlchemy {sqlalchemy.__version__}, Jinja2 {jinja2.__version__}"
    )
    print()
    contacts, bookings = make_data(n, TWO_YEARS_DAYS, args.seed)
    table = Table()

    # Setup: the same bookings through executemany, then (tables emptied) through the store.
    bare_runs, store_runs = [], []
    for _ in range(SLOW):
        backend.empty()
        bare_insert_contacts(backend, contacts)
        bare_runs.append(bare_import_bookings(backend, bookings))
    for _ in range(SLOW):
        backend.empty()
        with counting(engine) as statements:
            store_runs.append(store_import(database, contacts, bookings))
    backend.settle()
    bare_import_s, import_s = min(bare_runs), min(store_runs)
    table.add(
        f"import {n:,} bookings (upsert_bookings)",
        ms(import_s),
        per_s(n, import_s) + " rows",
        f"{statements[0]:,}",
        f"executemany {ms(bare_import_s)}",
        f"{import_s / bare_import_s:.1f}x",
    )

    # First pass: the baselines, then the pass itself (committed, instrumented).
    select_s, selected = best_of(QUICK, lambda: bare_select(backend, config, PLAN_DAY))
    render_s, rendered = best_of(SLOW, lambda: bare_render(selected))
    first_runs = [timed(lambda: plan_all(database, config, PLAN_DAY, dry_run=True))[0]]
    first_runs.append(timed(lambda: plan_all(database, config, PLAN_DAY, dry_run=True))[0])
    first = Breakdown()
    with first.watching(engine):
        first_wall, plans = timed(lambda: plan_all(database, config, PLAN_DAY))
    first_s = min(*first_runs, first_wall)
    created = sum(p.created for p in plans)
    if created != len(selected) or rendered != len(selected):
        print(f"note: the pass created {created} items; the bare selection found {len(selected)}")
    _, bare_items_s = bare_insert_items(backend)
    backend.settle()
    sec, stm = first.seconds, first.statements
    bare_s = select_s + render_s
    upkeep_s, upkeep_n = first.upkeep()
    rest_s = first_wall - sum(sec.values())
    table.add(
        f"first pass: {created:,} items created",
        ms(first_s),
        per_s(created, first_s) + " items",
        f"{first.total_statements:,}",
        f"(a)+(b) {ms(bare_s)}",
        f"{first_s / bare_s:.1f}x",
    )
    table.add(" (a) bare selection, raw SQL", "", "", "8", ms(select_s), "")
    table.add(f" (b) bare render, plain Jinja: {len(selected):,}", "", "", "", ms(render_s), "")
    # Each measured part of the pass beside its bare baseline: (label, timed function,
    # statements shown, baseline label, baseline seconds).
    parts = [
        ("render (service.render_item)", "render_item", "", "(b)", render_s),
        ("select (Store.candidates)", "candidates", f"{stm['candidates']:,}", "(a)", select_s),
        ("insert (Store.add_items)", "add_items", f"{stm['add_items']:,}", "executemany",
         bare_items_s),
    ]  # fmt: skip
    for label, name, statements, baseline, baseline_s in parts:
        table.add(
            f" pass: {label}",
            ms(sec[name]),
            share(sec[name], first_wall),
            statements,
            f"{baseline} {ms(baseline_s)}",
            f"{sec[name] / baseline_s:.1f}x",
        )
    table.add(
        " pass: withdraw, expire, stale",
        ms(upkeep_s),
        share(upkeep_s, first_wall),
        f"{upkeep_n:,}",
    )
    table.add(" pass: the rest", ms(rest_s), share(rest_s, first_wall))

    # The same day again: nothing new to create or render.
    again_s, again = best_of(QUICK, lambda: plan_all(database, config, PLAN_DAY))
    live_s, live = best_of(QUICK, lambda: bare_select(backend, config, PLAN_DAY, exclude_live=True))
    repeat = Breakdown()
    with repeat.watching(engine):
        repeat_wall, _ = timed(lambda: plan_all(database, config, PLAN_DAY))
    table.add(
        f"same day again: {sum(p.created for p in again)} created",
        ms(again_s),
        "",
        f"{repeat.total_statements:,}",
        f"(a) {ms(select_s)}",
        f"{again_s / select_s:.1f}x",
    )
    table.add(
        f" (a') bare selection minus live items: {len(live)}",
        "",
        "",
        "8",
        ms(live_s),
        f"{again_s / live_s:.1f}x",
    )
    for name, label in [
        ("withdraw_unqualified", "withdraw (Store.withdraw_unqualified)"),
        ("candidates", "select (Store.candidates)"),
    ]:
        table.add(
            f" pass: {label}",
            ms(repeat.seconds[name]),
            share(repeat.seconds[name], repeat_wall),
            f"{repeat.statements[name]:,}",
        )

    # The next day: one day's worth of anchors enters the windows, one day's worth leaves.
    next_day = PLAN_DAY + timedelta(days=1)
    next_select_s, _ = best_of(QUICK, lambda: bare_select(backend, config, next_day))
    runs = [timed(lambda: plan_all(database, config, next_day, dry_run=True))[0]]
    runs.append(timed(lambda: plan_all(database, config, next_day, dry_run=True))[0])
    following = Breakdown()
    with following.watching(engine):
        next_wall, next_plans = timed(lambda: plan_all(database, config, next_day))
    runs.append(next_wall)
    next_s = min(runs)
    next_created = sum(p.created for p in next_plans)
    table.add(
        f"next day: {next_created} created, {sum(p.expired for p in next_plans)} expired",
        ms(next_s),
        "",
        f"{following.total_statements:,}",
        f"(a) {ms(next_select_s)}",
        f"{next_s / next_select_s:.1f}x",
    )
    compile_s, _ = best_of(SLOW, lambda: compile_templates(config))
    table.add(
        f" pass: render {next_created} (service.render_item)",
        ms(following.seconds["render_item"]),
        share(following.seconds["render_item"], next_wall),
        "",
        f"compile {ms(compile_s)}",
        "",
    )
    table.print(("step", "time", "rate / share", "SQL", "bare baseline", "ratio"))
    errors = {e for p in (*plans, *again, *next_plans) for e in p.errors}
    if errors:
        print("template errors:", *sorted(errors), sep="\n  ")

    print()
    agency, kind = config.agency[0], config.agency[0].kind("arrival")
    print(
        f"query plan of Store.candidates({agency.code!r}, {kind.name}), "
        "the statement captured as executed:"
    )
    for line in candidates_plan(database, backend, agency.code, kind):
        print("  " + line)

    if not args.no_scaling:
        print()
        scaling(backend, database, config, n, args.seed)
    return 0


def compile_templates(config: Settings) -> int:
    """Compile every enabled kind's templates with fresh renderers, as each pass does."""
    problems = 0
    for agency in config.agency:
        renderer = service.renderer_for(config, agency)
        for kind in agency.enabled_kinds():
            problems += len(renderer.check(kind.template, ("fr", "en")))
    return problems


def share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}"


def scaling(backend: Backend, database: Database, config: Settings, n: int, seed: int) -> None:
    """Time the same-day pass on N and 4N bookings: 4N over 4x the days, then over 2 years."""
    print(
        "scaling of the same-day pass (nothing new), each database built the same way."
        "\nExpected: flat when only the bookings outside the windows grow; growing with "
        "the visible rows (at most linearly) when they grow."
    )
    table = Table()
    measured: list[tuple[str, int, float]] = []
    for label, count, span in [
        ("N over 2 years", n, TWO_YEARS_DAYS),
        ("4N over 8 years", 4 * n, 4 * TWO_YEARS_DAYS),
        ("4N over 2 years", 4 * n, TWO_YEARS_DAYS),
    ]:
        backend.empty()
        contacts, bookings = make_data(count, span, seed)
        # Loaded with executemany: only the pass is measured here.
        bare_insert_contacts(backend, contacts)
        bare_import_bookings(backend, bookings)
        backend.settle()
        plan_all(database, config, PLAN_DAY)
        backend.settle()
        select_s, selected = best_of(QUICK, lambda: bare_select(backend, config, PLAN_DAY))
        again_s, _ = best_of(QUICK, lambda: plan_all(database, config, PLAN_DAY))
        measured.append((label, len(selected), again_s))
        table.add(
            label,
            f"{count:,}",
            f"{len(selected):,}",
            ms(select_s),
            ms(again_s),
            f"{again_s / select_s:.1f}x",
            f"{again_s / measured[0][2]:.2f}",
        )
    table.print(("bookings", "count", "visible", "bare (a)", "same-day pass", "vs (a)", "vs N"))
    (_, base_rows, base_s), *others = measured
    print(
        "measured: "
        + "; ".join(
            f"{label} took {seconds / base_s:.2f}x the time with {rows / base_rows:.2f}x "
            "the visible rows"
            for label, rows, seconds in others
        )
    )


def _server_version(backend: Backend) -> str:
    with backend.engine.connect() as connection:
        return str(connection.exec_driver_sql("SHOW server_version").scalar_one())


if __name__ == "__main__":
    sys.exit(main())
