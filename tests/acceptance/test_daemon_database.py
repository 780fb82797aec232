"""`reminders run` survives losing its PostgreSQL server mid-run, without a restart.

The test owns a PostgreSQL cluster of its own (the session's is shared by every
other test), so it can stop the server under the daemon and start it again on the
same port and data.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from acceptance.test_daemon import Daemon, daemon_env
from acceptance.workspace import CONTACTS, Workspace, by_ref, config_text
from mail_server import MailServer


def _load_session_conftest() -> ModuleType:
    """Load tests/conftest.py, whose cluster this test reuses.

    `import conftest` would find tests/acceptance/conftest.py, which pytest put
    first on sys.path; loaded under another name, its fixtures are not registered twice.
    """
    path = Path(__file__).parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("reminders_session_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_session = _load_session_conftest()
_Cluster = _session._Cluster
find_postgres_bindir = _session.find_postgres_bindir

#: From the server's return, the daemon must have sent everything within this.
RECOVERY_BOUND_S = 90.0
#: The two kinds the daemon sends by itself: (agency, booking) of arrival reminders.
AUTO_SENT = {
    ("montreal", "B-5"): "olivia.tremblay@example.ca",
    ("auckland", "B-6"): "aroha.ngata@example.nz",
}


class Cluster(_Cluster):
    """A throwaway cluster like the session's, which can also be stopped and started again."""

    def halt(self) -> None:
        """Stop the server as an operator would (fast: open sessions are cut)."""
        self._check(
            self._run("pg_ctl", "stop", "--pgdata", str(self.data), "--mode", "fast", "--wait"),
            "pg_ctl stop",
        )

    def resume(self) -> None:
        """Start the stopped server again, same port, same data."""
        self._check(
            self._run(
                "pg_ctl", "start", "--pgdata", str(self.data), "--log", str(self.log),
                "--wait", "--timeout", "60",
            ),
            "pg_ctl start",
        )  # fmt: skip


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster for this test only, removed afterwards."""
    bindir = find_postgres_bindir()
    if bindir is None:
        reason = "PostgreSQL server binaries not found: install the 'postgresql' package"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires PostgreSQL: {reason}", pytrace=False)
        pytest.skip(reason)
    cluster = Cluster(bindir)
    try:
        cluster.start()
        admin = create_engine(
            cluster.url + "postgres", isolation_level="AUTOCOMMIT", poolclass=NullPool
        )
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE reminders"))
        admin.dispose()
        yield cluster
    finally:
        cluster.stop()


def with_auto_send(config: str, database_url: str) -> str:
    """The workspace's configuration on `database_url`, montreal and auckland auto-sending."""
    for code in ("montreal", "auckland"):
        anchor = f'templates_dir = "agency-templates/{code}"\n'
        assert anchor in config
        config = config.replace(anchor, anchor + "\n[agency.auto_send]\narrival = true\n")
    sqlite = 'url = "sqlite:///reminders.db"'
    assert sqlite in config
    return config.replace(sqlite, f'url = "{database_url}"')


def bookings_around_today() -> list[str]:
    """Bookings whose reminders are listed today in every agency's zone, whatever the date.

    The daemon runs on the real clock: freezegun's patched `datetime` breaks psycopg's
    compiled adapters ("datetime.date size changed"). Arriving in two days (UTC), the
    montreal (delay 10) and auckland (delay 3) arrival reminders are listed on both
    sides of the date line; the balance of annecy is due in ten days (delay 30).
    """
    today = datetime.now(UTC).date()

    def on(days: int) -> str:
        return (today + timedelta(days=days)).isoformat()

    return [
        f"B-1,annecy,C-1,Chalet Les Aravis,confirmed,,{on(10)},1250.00,EUR,{on(40)},{on(47)}",
        f"B-5,montreal,C-5,Chalet Mont-Tremblant,confirmed,,,0.00,CAD,{on(2)},{on(9)}",
        f"B-6,auckland,C-6,Bach Piha,confirmed,,,0.00,NZD,{on(2)},{on(9)}",
    ]


def test_the_daemon_rides_out_a_postgresql_outage_and_sends_everything_once(
    bare: Workspace, cluster: Cluster, mail_server: MailServer
) -> None:
    """Fault: PostgreSQL stops under the running daemon; it waits, recovers, sends each once."""
    bare.write("reminders.toml", with_auto_send(config_text(), cluster.url + "reminders"))
    bare.ok("db", "upgrade")
    bare.ok("import", "contacts", str(bare.write_contacts(CONTACTS)))
    bare.ok("import", "bookings", str(bare.write_bookings(bookings_around_today())))
    bare.ok("plan")
    # The mail server is down at first, so the emails are approved and tried once, not
    # sent, when the database goes away. Retries 10 s apart leave the daemon idle (no
    # item between claim and settlement) when the server stops.
    mail_server.stop()
    env = daemon_env(
        mail_server,
        REMINDERS_DAEMON__DISPATCH_EVERY_S="0.5",
        REMINDERS_MAIL__RETRY_AFTER_S="10",
    )
    daemon = Daemon(bare, env)
    try:
        for agency, _booking in AUTO_SENT:
            daemon.wait_for("mail.retry", agency=agency)
        cluster.halt()
        unreachable = daemon.wait_for("database.unreachable")
        mail_server.start()
        # Let a few ticks pass with the database down: each must be skipped quietly.
        time.sleep(2)
        assert daemon.process.poll() is None, daemon.log()
        cluster.resume()
        resumed_at = time.monotonic()
        daemon.wait_for("database.reachable", timeout_s=RECOVERY_BOUND_S)
        deadline = time.monotonic() + RECOVERY_BOUND_S
        while len(daemon.events("mail.sent")) < len(AUTO_SENT) and time.monotonic() < deadline:
            time.sleep(0.1)
        recovered_s = time.monotonic() - resumed_at
        time.sleep(2)  # more ticks: nothing may go twice
        daemon.signal(signal.SIGTERM)
        code = daemon.stop()
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(10)
        daemon.close()

    log = daemon.log()
    assert code == 0, log
    assert len(daemon.events("daemon.started")) == 1, "the daemon must never restart"
    assert f"127.0.0.1:{cluster.port}/reminders" in unreachable["error"]
    # Each tick while it is down waits out a backoff (5 s, doubling) instead of retrying.
    backoff = [e["retry_in_s"] for e in daemon.events("database.unreachable")]
    assert backoff == [min(5 * 2**n, 60) for n in range(len(backoff))], log
    assert len(daemon.events("database.reachable")) == 1, log
    sent = daemon.events("mail.sent")
    assert sorted((e["agency"], e["to"]) for e in sent) == sorted(
        (agency, to) for (agency, _booking), to in AUTO_SENT.items()
    ), log
    assert recovered_s < RECOVERY_BOUND_S, log
    received = sorted(r for m in mail_server.messages() for r in m.rcpt_to)
    assert received == sorted(AUTO_SENT.values()), log
    items = by_ref(bare.queue("--status", "sent"))
    assert set(items) == {(booking, "arrival") for _agency, booking in AUTO_SENT}
    message_ids = {m.message["Message-ID"] for m in mail_server.messages()}
    assert {item["message_id"] for item in items.values()} == message_ids
    # One refused try, one success: the ticks without a database cost no attempt.
    for item in items.values():
        assert bare.json("show", str(item["id"]))["attempts"] == 2, log
    # Staff-reviewed kinds still wait for staff, outage or not.
    assert ("B-1", "balance_due") in by_ref(bare.queue())
