"""Time `reminders send-all` against bare baselines measured in the same run.

    python benchmarks/dispatch.py [--emails N] [--skip-postgresql] [--skip-django] [--profile]

Every side is a whole process doing the same work: the same N guests, the same emails
(rendered once by `reminders plan` from the shipped templates), sent to the same SMTP
sink on loopback, Postfix's `smtp-sink` (a C program, so it is not the bottleneck; it
counts what it receives). The data set is built once with the `reminders` command
(`db upgrade`, `import contacts`, `import bookings`, `plan --date 2026-12-01`) and
restored before every run: a copy of the SQLite file, or `CREATE DATABASE ... TEMPLATE`
on PostgreSQL. Times are wall clock. Each line is the best of 3 runs of each side;
reminders and the bare baseline take turns. Every run is checked (exit codes, messages
the sink received, items `sent` in the database, one successful delivery per item and
recipient): a mismatch is listed at the end as a PROBLEM line, its line of the table
says FAILED and shows no ratio, and the exit code is 1.

The lines of the table:

SQLite, 1 connection
    reminders: the whole `reminders send-all --agency annecy --kind arrival --yes`
    process, from start to exit (interpreter start-up, configuration, the claims, the
    message building, the SMTP transactions, the outcomes written), N / seconds.
    baseline: the bare send loop. A separate Python process reads the same pending
    items with sqlite3, builds every message first with `email.message.EmailMessage`
    (From, To, Subject, text then the HTML alternative), then times only opening one
    SMTP connection, `sendmail` of the pre-built bytes for each email, and QUIT.
    ratio: reminders' whole-process rate over the bare send loop's rate (target 0.8x).
bare baseline, whole process
    The same bare process timed from start to exit (reading, building and sending,
    writing nothing back), set beside reminders' whole process: information only.
SQLite, 2 connections / 4 connections
    The same with `REMINDERS_MAIL__CONNECTIONS` (`mail.connections`) set to 2 and 4,
    against the same bare send loop; the target (1.5x) is for the better of the two.
PostgreSQL, 1 replica
    A throwaway PostgreSQL 15 cluster (fsync on, loopback only) holding the same data
    set; one `send-all` process, against the bare send loop (information only).
PostgreSQL, 3 replicas
    Three `send-all` processes started at once on the same tab, timed from the start of
    the first to the exit of the last, against one replica. Every email must go out
    exactly once: the sink gets exactly N messages, the database N items `sent` with N
    distinct recipients, and one successful delivery per item. smtp-sink only counts,
    so who received what is checked in the database.
django-post-office
    A second reference, in its own virtual environment: a minimal Django project queues
    the same N subjects and bodies with `post_office.mail.send(priority="medium")` then
    sends them with `send_queued_mail`, timed in one process (queue, send, end to end,
    without the Django start-up and migrations). The ratio is reminders' whole
    `send-all` process (SQLite, 1 connection) over post-office's queue and send
    (target 2.5x). Rendering and queuing reminders' items (`reminders plan`) is not in
    that figure: the line below the table adds it.

`--profile` runs one more `send-all` under py-spy (speedscope format, idle time
included) and keeps that one file, in its own temporary folder, printing its path;
everything else is removed at the end. benchmarks/README.md shows results.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

from _common import (
    PG_BIN,
    free_port,
    gist,
    progress,
    reminders_command,
    reminders_source,
    temporary_postgresql,
)

from reminders.imports import BOOKING_COLUMNS, CONTACT_COLUMNS

#: Debian's paths (packages `postfix` and `postgresql-15`).
SMTP_SINK = Path("/usr/sbin/smtp-sink")

AGENCY = "annecy"
KIND = "arrival"
SENDER_NAME = "Agence du Lac"
SENDER_ADDRESS = "reservations@agence-du-lac.example"
PLAN_DAY = date(2026, 12, 1)
#: arrivals spread over the days after the plan day, all inside the 7-day window
ARRIVAL_DAYS = 6
REPEAT = 3
REPLICAS = 3
CONNECTIONS = (2, 4)
#: a throwaway link-signing key (32 characters), new for each run
SECRET_KEY = secrets.token_hex(16)
#: a cluster of its own: trust on loopback; the server itself runs with fsync on
#: a subprocess taking longer than this is a hang, not a measurement
TIMEOUT_S = 3600.0
TARGET_ONE = 0.8
TARGET_PARALLEL = 1.5
TARGET_POST_OFFICE = 2.5


CONFIG = """\
[database]
url = "sqlite:///bench.db"

[mail]
transport = "smtp"

[smtp]
host = "127.0.0.1"
port = {port}

[web]
base_url = "https://links.example"

[[agency]]
code = "{agency}"
name = "{name}"
timezone = "Europe/Paris"
locale = "fr"
sender = "{name} <{address}>"

[agency.delays]
arrival = 7
"""

#: The bare baseline: a whole process; prints its send-loop seconds on stdout.
#: The emails of the tab, as both baselines read them (each script gets this text first).
PENDING_EMAILS_SQL = (
    "SELECT i.subject, t.body_text, t.body_html, c.name, c.email FROM items i"
    " JOIN item_bodies t ON t.item_id = i.id"
    " JOIN bookings b ON b.id = i.booking_id JOIN contacts c ON c.id = b.contact_id"
    " WHERE i.agency = 'annecy' AND i.kind = 'arrival' AND i.status = 'pending'"
    " ORDER BY i.anchor_on, i.id"
)

BARE_SEND = """\
import sqlite3, smtplib, sys, time
from email.message import EmailMessage
from email.policy import SMTP

database, host, port, sender, envelope_from = sys.argv[1:]
connection = sqlite3.connect(database)
rows = connection.execute(PENDING_EMAILS).fetchall()
connection.close()
built = []
for subject, text, html, name, address in rows:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = f"{name} <{address}>"
    message["Subject"] = subject
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    built.append((address, message.as_bytes(policy=SMTP)))
started = time.perf_counter()
with smtplib.SMTP(host, int(port), timeout=30) as client:
    for address, data in built:
        client.sendmail(envelope_from, [address], data)
print(time.perf_counter() - started)
"""

#: The django-post-office reference: queue then send in one process; prints JSON.
POST_OFFICE_SEND = """\
import json, sqlite3, sys, time
from importlib.metadata import version
import django
from django.core.management import call_command

django.setup()
call_command("migrate", verbosity=0)
from post_office import mail
from post_office.models import Email, STATUS

database, sender = sys.argv[1:]
connection = sqlite3.connect(database)
rows = connection.execute(PENDING_EMAILS).fetchall()
connection.close()
started = time.perf_counter()
for subject, text, html, name, address in rows:
    mail.send(
        [f"{name} <{address}>"], sender, subject=subject, message=text,
        html_message=html, priority="medium",
    )
queued = time.perf_counter()
call_command("send_queued_mail", processes=1)
finished = time.perf_counter()
print(json.dumps({
    "queue_s": queued - started,
    "send_s": finished - queued,
    "sent": Email.objects.filter(status=STATUS.sent).count(),
    "versions": f"Django {version('django')}, django-post-office {version('django-post-office')}",
}))
"""


def with_query(script: str) -> str:
    """Return a baseline script preceded by the query of the tab's emails."""
    return f"PENDING_EMAILS = {PENDING_EMAILS_SQL!r}\n" + script


POST_OFFICE_SETTINGS = """\
SECRET_KEY = "benchmark-only"
INSTALLED_APPS = ["post_office"]
TEMPLATES = [{{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}}]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {database!r}}}}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
EMAIL_BACKEND = "post_office.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = {port}
POST_OFFICE = {{"BACKENDS": {{"default": "django.core.mail.backends.smtp.EmailBackend"}}}}
"""


#: A line of the table: case, reminders, baseline, ratio, target.
Row = tuple[str, str, str, str, str]


class SmtpSink:
    """Postfix's smtp-sink on loopback, counting messages (`-c`) into a file."""

    def __init__(self, folder: Path, port: int) -> None:
        self.port = port
        self._counters = folder / "sink-counters.txt"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        user = ["-u", "postfix"] if os.geteuid() == 0 else []
        with self._counters.open("wb") as counters:
            self._process = subprocess.Popen(
                [str(SMTP_SINK), *user, "-c", f"127.0.0.1:{self.port}", "1000"],
                stdout=counters,
                stderr=subprocess.DEVNULL,
            )
        wait_for_port(self.port)

    def received(self) -> int:
        """Messages received so far: the last `mesg=` of the running counters."""
        with self._counters.open("rb") as counters:
            counters.seek(max(0, self._counters.stat().st_size - 200))
            found = re.findall(rb"mesg=(\d+)", counters.read())
        return int(found[-1]) if found else 0

    def wait_for(self, expected: int, timeout_s: float = 5.0) -> int:
        """The count once it reaches `expected` (it is written when "." arrives)."""
        deadline = time.monotonic() + timeout_s
        count = self.received()
        while count < expected and time.monotonic() < deadline:
            time.sleep(0.02)
            count = self.received()
        time.sleep(0.05)  # anything more than expected arrives now or never
        return self.received()

    def stop(self) -> None:
        if self._process:
            self._process.terminate()
            self._process.wait(timeout=10)


@dataclass(frozen=True, slots=True)
class PostgresCluster:
    """A throwaway cluster: its folder, port and how to reach one of its databases."""

    folder: Path
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, database: str, *statements: str) -> list[tuple[Any, ...]]:
        """Run statements in autocommit (CREATE DATABASE needs it); the last one's rows."""
        import psycopg

        rows: list[tuple[Any, ...]] = []
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"
        with psycopg.connect(dsn, autocommit=True) as connection:
            for statement in statements:
                cursor = connection.execute(statement.encode())
                rows = cursor.fetchall() if cursor.description else []
        return rows


@dataclass(frozen=True, slots=True)
class SendRun:
    """One timed run of `send-all` processes (several for replicas)."""

    seconds: float
    exit_codes: tuple[int, ...]
    stderr: tuple[str, ...]


@dataclass(slots=True)
class Bench:
    """What every measurement shares: the folder, the sink, the command, the problems."""

    folder: Path
    emails: int
    sink: SmtpSink
    config: Path
    #: what went wrong, by case (the case's name as in the table)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def environment(self, **overrides: str) -> dict[str, str]:
        """The environment of a `reminders` process: ours without REMINDERS_*, plus these."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
        env["REMINDERS_CONFIG"] = str(self.config)
        env["REMINDERS_WEB__SECRET_KEY"] = SECRET_KEY
        env.update(overrides)
        return env

    def report(self, case: str, problem: str) -> None:
        self.problems.setdefault(case, []).append(problem)

    def check(self, case: str, what: str, expected: object, got: object) -> None:
        if expected != got:
            self.report(case, f"{what}: expected {expected}, got {got}")


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def write_guests(folder: Path, emails: int) -> tuple[Path, Path]:
    """contacts.csv and bookings.csv: one confirmed guest and booking per email."""
    contacts, bookings = folder / "contacts.csv", folder / "bookings.csv"
    with contacts.open("w", newline="") as file:
        out = csv.DictWriter(file, CONTACT_COLUMNS)
        out.writeheader()
        for n in range(emails):
            out.writerow(
                {
                    "ref": f"C-{n}",
                    "agency": AGENCY,
                    "name": f"Guest {n}",
                    "email": f"guest{n}@example.com",
                    "locale": "fr" if n % 2 == 0 else "en",
                    "email_confirmed": "true",
                    "email_opt_out": "false",
                }
            )
    with bookings.open("w", newline="") as file:
        out = csv.DictWriter(file, BOOKING_COLUMNS, restval="")
        out.writeheader()
        for n in range(emails):
            arrival = PLAN_DAY + timedelta(days=1 + n % ARRIVAL_DAYS)
            out.writerow(
                {
                    "ref": f"B-{n}",
                    "agency": AGENCY,
                    "contact_ref": f"C-{n}",
                    "property": "Chalet des Aravis",
                    "status": "confirmed",
                    "balance_due_on": (PLAN_DAY - timedelta(days=30)).isoformat(),
                    "balance_outstanding": "0.00",
                    "currency": "EUR",
                    "arrival_on": arrival.isoformat(),
                    "departure_on": (arrival + timedelta(days=7)).isoformat(),
                }
            )
    return contacts, bookings


def run_reminders(env: dict[str, str], *args: str) -> None:
    """Run one setup command; stop with its output if it fails."""
    done = subprocess.run(
        [*reminders_command(), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"reminders {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")


def build_data_set(bench: Bench, env: dict[str, str]) -> float:
    """Migrate, import the guests, plan the day; return the planning pass's seconds."""
    contacts, bookings = write_guests(bench.folder, bench.emails)
    run_reminders(env, "db", "upgrade")
    run_reminders(env, "import", "contacts", str(contacts))
    run_reminders(env, "import", "bookings", str(bookings))
    started = time.perf_counter()
    run_reminders(env, "plan", "--date", PLAN_DAY.isoformat())
    return time.perf_counter() - started


def send_all(env: dict[str, str], replicas: int, folder: Path) -> SendRun:
    """Start `replicas` send-all processes at once; wall clock until the last exits."""
    command = [*reminders_command(), "send-all", "--agency", AGENCY, "--kind", KIND, "--yes"]
    logs: list[IO[bytes]] = [(folder / f"stderr-{n}.txt").open("w+b") for n in range(replicas)]
    try:
        started = time.perf_counter()
        processes = [
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
            for log in logs
        ]
        codes = tuple(process.wait(timeout=TIMEOUT_S) for process in processes)
        seconds = time.perf_counter() - started
        errors = []
        for log in logs:
            log.seek(0)
            errors.append(log.read().decode(errors="replace").strip())
    finally:
        for log in logs:
            log.close()
    return SendRun(seconds, codes, tuple(errors))


def check_send(bench: Bench, case: str, run: SendRun, received: int, counts: Sequence[int]) -> None:
    """Every process exited 0 and every email went out exactly once."""
    for n, (code, errors) in enumerate(zip(run.exit_codes, run.stderr, strict=True)):
        if code != 0:
            bench.report(case, f"send-all #{n + 1} exited {code}: {gist(errors)}")
    sent, recipients, deliveries, delivered_items = counts
    bench.check(case, "messages received by the sink", bench.emails, received)
    bench.check(case, "items sent", bench.emails, sent)
    bench.check(case, "distinct recipients of sent items", bench.emails, recipients)
    bench.check(case, "successful deliveries", bench.emails, deliveries)
    bench.check(case, "items with a successful delivery", bench.emails, delivered_items)


#: items sent, their distinct recipients, successful deliveries, items delivered
SENT_COUNTS = (
    "SELECT (SELECT count(*) FROM items WHERE status = 'sent'),"
    " (SELECT count(DISTINCT c.email) FROM items i JOIN bookings b ON b.id = i.booking_id"
    "  JOIN contacts c ON c.id = b.contact_id WHERE i.status = 'sent'),"
    " (SELECT count(*) FROM deliveries WHERE outcome = 'sent'),"
    " (SELECT count(DISTINCT item_id) FROM deliveries WHERE outcome = 'sent')"
)


def sqlite_counts(path: Path) -> tuple[int, ...]:
    with sqlite3.connect(path) as connection:
        row: tuple[int, ...] = connection.execute(SENT_COUNTS).fetchone()
    connection.close()
    return row


def restore_sqlite(template: Path, database: Path) -> None:
    """A fresh copy of the template, without the previous run's WAL, on disk."""
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, database)
    # Written back now, not by the kernel in the middle of the timed run.
    os.sync()


def time_reminders_sqlite(
    bench: Bench, template: Path, database: Path, connections: int
) -> SendRun:
    """One checked run of send-all on a fresh copy of the SQLite data set."""
    restore_sqlite(template, database)
    before = bench.sink.received()
    run = send_all(bench.environment(REMINDERS_MAIL__CONNECTIONS=str(connections)), 1, bench.folder)
    received = bench.sink.wait_for(before + bench.emails) - before
    case = f"SQLite, {connections} connection{'s' if connections > 1 else ''}"
    check_send(bench, case, run, received, sqlite_counts(database))
    return run


def time_bare_send(bench: Bench, template: Path, database: Path) -> tuple[float, float]:
    """One run of the bare baseline: (send-loop seconds, whole-process seconds)."""
    restore_sqlite(template, database)
    before = bench.sink.received()
    started = time.perf_counter()
    server = ["127.0.0.1", str(bench.sink.port)]
    sender = [f"{SENDER_NAME} <{SENDER_ADDRESS}>", SENDER_ADDRESS]
    done = subprocess.run(
        [sys.executable, "-c", with_query(BARE_SEND), str(database), *server, *sender],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT_S,
    )
    whole = time.perf_counter() - started
    received = bench.sink.wait_for(before + bench.emails) - before
    bench.check("bare baseline", "messages received by the sink", bench.emails, received)
    return float(done.stdout), whole


def profile_send_all(bench: Bench, template: Path, database: Path) -> Path:
    """Record one send-all with py-spy (installed into this environment if missing)."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True)
    restore_sqlite(template, database)
    output = Path(tempfile.mkdtemp(prefix="reminders-profile-")) / "send-all.speedscope.json"
    command = [*reminders_command(), "send-all", "--agency", AGENCY, "--kind", KIND, "--yes"]
    record = [str(py_spy), "record", "--idle", "--format", "speedscope", "-o", str(output)]
    subprocess.run(
        [*record, "--", *command],
        env=bench.environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return output


def time_postgresql(bench: Bench) -> tuple[float, float]:
    """Best of REPEAT runs with one replica, then with REPLICAS at once: (seconds, seconds)."""
    with temporary_postgresql(PostgresCluster) as cluster:
        cluster.execute("postgres", "CREATE DATABASE bench")
        build_data_set(bench, bench.environment(REMINDERS_DATABASE__URL=cluster.url("bench")))
        best: dict[int, float] = {}
        for replicas in (1, REPLICAS):
            for _ in range(REPEAT):
                cluster.execute(
                    "postgres",
                    "DROP DATABASE IF EXISTS run",
                    "CREATE DATABASE run TEMPLATE bench",
                    "CHECKPOINT",  # the clone on disk now, not during the timed run
                )
                env = bench.environment(REMINDERS_DATABASE__URL=cluster.url("run"))
                before = bench.sink.received()
                run = send_all(env, replicas, bench.folder)
                received = bench.sink.wait_for(before + bench.emails) - before
                counts = cluster.execute("run", SENT_COUNTS)[0]
                case = f"PostgreSQL, {replicas} replica{'s' if replicas > 1 else ''}"
                check_send(bench, case, run, received, counts)
                best[replicas] = min(best.get(replicas, run.seconds), run.seconds)
    return best[1], best[REPLICAS]


def time_post_office(bench: Bench, template: Path) -> dict[str, Any] | None:
    """Queue and send the same emails with django-post-office; None when it can't install."""
    folder = bench.folder / "post-office"
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "django", "django-post-office"],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        reason = (installed.stderr.strip().splitlines() or ["?"])[-1]
        print(f"django-post-office skipped: pip could not install it ({reason})")
        return None
    (folder / "bench_settings.py").write_text(
        POST_OFFICE_SETTINGS.format(database=str(folder / "post_office.db"), port=bench.sink.port)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
    env |= {"DJANGO_SETTINGS_MODULE": "bench_settings", "PYTHONPATH": str(folder)}
    before = bench.sink.received()
    done = subprocess.run(
        [
            str(python),
            "-c",
            with_query(POST_OFFICE_SEND),
            str(template),
            f"{SENDER_NAME} <{SENDER_ADDRESS}>",
        ],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_S,
    )
    if done.returncode != 0:
        bench.report("django-post-office", f"exited {done.returncode}: {gist(done.stderr)}")
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    received = bench.sink.wait_for(before + bench.emails) - before
    bench.check("django-post-office", "messages received by the sink", bench.emails, received)
    bench.check("django-post-office", "emails marked sent", bench.emails, result["sent"])
    return result


def build_sqlite_template(bench: Bench) -> tuple[Path, Path, float]:
    """Build the SQLite data set once: (template, working copy, planning seconds)."""
    database, template = bench.folder / "bench.db", bench.folder / "template.db"
    plan_s = build_data_set(bench, bench.environment())
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (pending,) = connection.execute(
            "SELECT count(*) FROM items WHERE status = 'pending'"
        ).fetchone()
    connection.close()
    if pending != bench.emails:
        sys.exit(f"reminders plan queued {pending} emails, not {bench.emails}")
    shutil.copyfile(database, template)
    return template, database, plan_s


@dataclass(frozen=True, slots=True)
class SqliteFigures:
    """Best times on SQLite: reminders by connections, the bare send loop and process."""

    reminders_s: dict[int, float]
    send_loop_s: float
    bare_process_s: float


def measure_sqlite(bench: Bench, template: Path, database: Path) -> SqliteFigures:
    """Best of REPEAT for each side; reminders and the bare baseline take turns."""
    progress("SQLite, 1 connection, and the bare baseline")
    ours, send_loop, bare_process = [], [], []
    for _ in range(REPEAT):
        ours.append(time_reminders_sqlite(bench, template, database, 1).seconds)
        loop_s, process_s = time_bare_send(bench, template, database)
        send_loop.append(loop_s)
        bare_process.append(process_s)
    reminders_s = {1: min(ours)}
    for connections in CONNECTIONS:
        progress(f"SQLite, {connections} connections")
        reminders_s[connections] = min(
            time_reminders_sqlite(bench, template, database, connections).seconds
            for _ in range(REPEAT)
        )
    return SqliteFigures(reminders_s, min(send_loop), min(bare_process))


def sqlite_rows(emails: int, figures: SqliteFigures) -> list[Row]:
    one_s, bare_s = figures.reminders_s[1], figures.send_loop_s
    bare = f"bare send loop {rate(emails, bare_s)}"
    rows = [
        (
            "SQLite, 1 connection",
            rate(emails, one_s),
            bare,
            ratio(bare_s, one_s),
            f">= {TARGET_ONE}x",
        ),
        (
            "bare baseline, whole process",
            rate(emails, one_s),
            f"bare process {rate(emails, figures.bare_process_s)}",
            ratio(figures.bare_process_s, one_s),
            "",
        ),
    ]
    best = max(bare_s / figures.reminders_s[c] for c in CONNECTIONS)
    for connections in CONNECTIONS:
        seconds = figures.reminders_s[connections]
        rows.append(
            (
                f"SQLite, {connections} connections",
                rate(emails, seconds),
                bare,
                ratio(bare_s, seconds),
                f">= {TARGET_PARALLEL}x for the best (best: {best:.2f}x)",
            )
        )
    return rows


def postgresql_rows(bench: Bench, send_loop_s: float) -> list[Row]:
    emails = bench.emails
    one_s, many_s = time_postgresql(bench)
    return [
        (
            "PostgreSQL, 1 replica",
            rate(emails, one_s),
            f"bare send loop {rate(emails, send_loop_s)}",
            ratio(send_loop_s, one_s),
            "",
        ),
        (
            f"PostgreSQL, {REPLICAS} replicas",
            rate(emails, many_s),
            f"1 replica {rate(emails, one_s)}",
            ratio(one_s, many_s),
            "",
        ),
    ]


def post_office_rows(
    bench: Bench, template: Path, reminders_s: float, plan_s: float
) -> tuple[list[Row], list[str]]:
    """The django-post-office line, and the note that adds reminders' planning pass."""
    result = time_post_office(bench, template)
    if not result:
        return [], []
    emails = bench.emails
    total_s = result["queue_s"] + result["send_s"]
    row = (
        "django-post-office",
        rate(emails, reminders_s),
        f"queue {result['queue_s']:.2f} s + send {result['send_s']:.2f} s"
        f" = {rate(emails, total_s)}",
        ratio(total_s, reminders_s),
        f">= {TARGET_POST_OFFICE}x",
    )
    note = (
        f"{result['versions']}; with reminders plan (render and queue, {plan_s:.2f} s, run once)"
        " added: "
        f"{rate(emails, reminders_s + plan_s)}, {ratio(total_s, reminders_s + plan_s)} "
        "django-post-office's queue and send"
    )
    return [row], [note]


def rate(emails: int, seconds: float) -> str:
    return f"{seconds:.2f} s  {emails / seconds:,.0f}/s"


def ratio(baseline_s: float, ours_s: float) -> str:
    """Our rate over the baseline's, from the two times."""
    return f"{baseline_s / ours_s:.2f}x"


def marked_failed(row: Row, problems: dict[str, list[str]]) -> Row:
    """A line whose runs (or whose baseline's) went wrong shows no figure as if it counted."""
    case, ours, baseline, figure, target = row
    if case in problems:
        ours, figure = f"{ours} FAILED", "-"
    if case == f"PostgreSQL, {REPLICAS} replicas" and "PostgreSQL, 1 replica" in problems:
        figure = "-"
    if baseline.startswith("bare") and "bare baseline" in problems:
        figure = "-"
    return case, ours, baseline, figure, target


def print_table(rows: Sequence[Row]) -> None:
    header: Row = ("case", "reminders", "baseline", "ratio", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(" | ".join(cells).rstrip())


def main(argv: list[str] | None = None) -> int:
    assert __doc__
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=5000, help="emails in the tab (5000)")
    parser.add_argument("--skip-postgresql", action="store_true", help="no PostgreSQL lines")
    parser.add_argument("--skip-django", action="store_true", help="no django-post-office line")
    parser.add_argument("--profile", action="store_true", help="profile one send-all (py-spy)")
    options = parser.parse_args(argv)
    if not SMTP_SINK.exists():
        print("install postfix (smtp-sink)", file=sys.stderr)
        return 1
    emails: int = options.emails
    print(
        f"dispatch benchmark: {emails:,} emails, {date.today().isoformat()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}"
    )
    print(f"reminders from {reminders_source()}, smtp-sink on loopback, best of {REPEAT}")
    folder = Path(tempfile.mkdtemp(prefix="reminders-bench-"))
    sink = SmtpSink(folder, free_port())
    config = folder / "reminders.toml"
    config.write_text(
        CONFIG.format(port=sink.port, agency=AGENCY, name=SENDER_NAME, address=SENDER_ADDRESS)
    )
    bench = Bench(folder, emails, sink, config)
    rows: list[Row] = []
    notes: list[str] = []
    try:
        sink.start()
        # Stop cleanly (finally blocks run) when interrupted with SIGTERM too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        progress("building the data set")
        template, database, plan_s = build_sqlite_template(bench)
        figures = measure_sqlite(bench, template, database)
        rows += sqlite_rows(emails, figures)
        if options.profile:
            progress("profiling one send-all")
            notes.append(f"profile of one send-all: {profile_send_all(bench, template, database)}")
        if options.skip_postgresql:
            pass
        elif not (PG_BIN / "initdb").exists():
            notes.append(f"PostgreSQL skipped: no {PG_BIN / 'initdb'} (Debian's postgresql-15)")
        elif importlib.util.find_spec("psycopg") is None:
            notes.append('PostgreSQL skipped: no psycopg (pip install -e ".[postgresql]")')
        else:
            progress("PostgreSQL, 1 and 3 replicas")
            rows += postgresql_rows(bench, figures.send_loop_s)
        if not options.skip_django:
            progress("django-post-office")
            more_rows, more_notes = post_office_rows(
                bench, template, figures.reminders_s[1], plan_s
            )
            rows += more_rows
            notes += more_notes
    finally:
        sink.stop()
        shutil.rmtree(folder, ignore_errors=True)

    print_table([marked_failed(row, bench.problems) for row in rows])
    for note in notes:
        print(note)
    for case, problems in bench.problems.items():
        for problem, runs in Counter(problems).items():
            print(f"PROBLEM {case}: {problem}" + (f" ({runs} runs)" if runs > 1 else ""))
    return 1 if bench.problems else 0


if __name__ == "__main__":
    sys.exit(main())
