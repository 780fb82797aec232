"""Several `reminders send-all` processes on one PostgreSQL database, thousands of emails.

A replica is killed with SIGKILL mid-batch, bookings are cancelled while a tab is
being sent: every message the server received is counted per address. Nothing is
sent twice, nothing is lost; the few in flight when a replica died are `unknown`.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from acceptance.workspace import REMINDERS, TEMPLATES, Workspace, clean_environment
from mail_server import MailServer

pytestmark = pytest.mark.postgresql

SECRET = "replicas-test-signing-key-0123456789"
BATCH = 20


def big_tab(folder: Path, url: str, port: int, guests: int) -> Workspace:
    """A workspace whose annecy arrival tab holds `guests` consenting emails today."""
    workspace = Workspace(folder)
    workspace.write(
        "reminders.toml",
        f"""\
[database]
url = "{url}"

[templates]
dir = "{TEMPLATES}"

[mail]
transport = "smtp"
batch_size = {BATCH}

[smtp]
host = "127.0.0.1"
port = {port}
timeout_s = 120

[web]
base_url = "https://links.example"

[[agency]]
code = "annecy"
name = "Agence du Lac"
timezone = "Europe/Paris"
locale = "fr"
sender = "Agence du Lac <reservations@agence-du-lac.example>"

[agency.delays]
arrival = 7
""",
    )
    # Windows around the real today: the sending checks them against the clock.
    today = date.today()
    with (folder / "contacts.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["ref", "agency", "name", "email", "locale", "email_confirmed", "email_opt_out"]
        )
        for n in range(guests):
            writer.writerow(
                [f"C-{n}", "annecy", f"Guest {n}", f"guest{n}@example.com", "fr", "true", "false"]
            )
    workspace.write("bookings.csv", bookings_csv(guests, today, cancelled=set()))
    env = environment()
    workspace.ok("db", "upgrade", env=env)
    load(workspace, "contacts")
    load(workspace, "bookings")
    workspace.ok("plan", "--date", today.isoformat(), env=env)
    return workspace


def load(workspace: Workspace, what: str) -> None:
    """Import a big file: off a terminal, no progress bar, nothing on stderr."""
    workspace.ok("import", what, f"{what}.csv", env=environment())


def bookings_csv(guests: int, today: date, cancelled: set[int]) -> str:
    header = (
        "ref,agency,contact_ref,property,status,option_expires_on,balance_due_on,"
        "balance_outstanding,currency,arrival_on,departure_on"
    )
    lines = [header]
    for n in range(guests):
        arrival = today + timedelta(days=2 + n % 4)
        status = "cancelled" if n in cancelled else "confirmed"
        lines.append(
            f"B-{n},annecy,C-{n},Chalet,{status},,,0,EUR,{arrival},{arrival + timedelta(days=7)}"
        )
    return "\n".join(lines) + "\n"


def environment() -> dict[str, str | None]:
    return {"REMINDERS_WEB__SECRET_KEY": SECRET}


def start_replica(workspace: Workspace, n: int) -> subprocess.Popen[bytes]:
    """Start `send-all` of the tab; its stderr goes to replica-N.log in the workspace."""
    with (workspace.folder / f"replica-{n}.log").open("wb") as log:
        return subprocess.Popen(
            [str(REMINDERS), "send-all", "--agency", "annecy", "--kind", "arrival", "--yes"],
            cwd=workspace.folder,
            env=clean_environment(environment()),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def logs(workspace: Workspace) -> str:
    return "\n".join(p.read_text() for p in sorted(workspace.folder.glob("replica-*.log")))


def statuses(url: str) -> dict[str, str]:
    """Return each booking's arrival item status, by booking ref."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT b.ref, i.status FROM items i JOIN bookings b ON b.id = i.booking_id "
                    "WHERE i.kind = 'arrival'"
                )
            )
            return {ref: status for ref, status in rows}
    finally:
        engine.dispose()


def wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_three_replicas_send_each_email_once_though_one_is_killed_mid_batch(
    postgresql_url: str, mail_server: MailServer, tmp_path: Path
) -> None:
    guests = 5000
    workspace = big_tab(tmp_path, postgresql_url, mail_server.port, guests)

    # Every replica is mid-batch, waiting on the server, when one is killed.
    mail_server.hold(after=guests // 5)
    replicas = [start_replica(workspace, n) for n in range(3)]
    try:
        wait_for(mail_server.holding, 120)
        os.kill(replicas[0].pid, signal.SIGKILL)
        replicas[0].wait(10)  # reaped, as its supervisor (systemd, a shell) would
        mail_server.release()
        survivors = [r.wait(300) for r in replicas[1:]]
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()
            replica.wait()

    assert survivors == [0, 0], logs(workspace)
    received = Counter(r for m in mail_server.messages() for r in m.rcpt_to)
    assert max(received.values()) == 1, received.most_common(3)
    found = statuses(postgresql_url)
    by_status = Counter(found.values())
    assert set(by_status) <= {"sent", "unknown"}, by_status
    # Only what the killed replica held when it died is unknown: one batch at most.
    assert by_status["sent"] > 0 and by_status["unknown"] <= BATCH, by_status
    for ref, status in found.items():
        address = f"guest{ref.removeprefix('B-')}@example.com"
        if status == "sent":
            assert received[address] == 1, ref
    # A person settles the unknown ones: `health` says so until then.
    health = workspace.run("health", env=environment())
    assert (health.code == 1) is bool(by_status["unknown"]), health.describe()


def test_bookings_cancelled_while_their_tab_is_sent_are_never_mailed_after(
    postgresql_url: str, mail_server: MailServer, tmp_path: Path
) -> None:
    guests = 2000
    workspace = big_tab(tmp_path, postgresql_url, mail_server.port, guests)
    # The tab goes out in anchor order: cancel from the end, which is claimed last.
    cancelled = set(range(guests - 600, guests))

    # However fast the machine, the tab is not done when the cancellation lands.
    mail_server.hold(after=200)
    replicas = [start_replica(workspace, n) for n in range(2)]
    try:
        wait_for(mail_server.holding, 120)
        workspace.write("bookings.csv", bookings_csv(guests, date.today(), cancelled))
        load(workspace, "bookings")
        committed = datetime.now(UTC)
        mail_server.release()
        codes = [r.wait(300) for r in replicas]
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()

    # Withdrawn is not a failure of a tab: exit 0.
    assert codes == [0, 0], logs(workspace)
    engine = create_engine(postgresql_url)
    try:
        with engine.connect() as connection:
            late = connection.execute(
                text(
                    "SELECT b.ref FROM items i JOIN bookings b ON b.id = i.booking_id "
                    "WHERE b.status = 'cancelled' AND i.status = 'sent' "
                    "AND i.claimed_at > :committed"
                ),
                {"committed": committed},
            ).all()
            left = connection.execute(
                text(
                    "SELECT i.status, count(*) FROM items i JOIN bookings b ON b.id = i.booking_id "
                    "WHERE b.status = 'cancelled' GROUP BY i.status"
                )
            ).all()
    finally:
        engine.dispose()
    # Claimed after the cancellation was committed: never sent.
    assert late == []
    states = dict(left)
    assert set(states) <= {"sent", "withdrawn"}, states
    assert states.get("withdrawn", 0) > 0, states
    received = Counter(r for m in mail_server.messages() for r in m.rcpt_to)
    assert max(received.values()) == 1
    assert sum(received.values()) == guests - states.get("withdrawn", 0)
