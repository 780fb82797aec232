"""Faults outside the code, as a user meets them through the installed command.

The database is unreachable or missing, its schema is older or newer than this
code, the Maildir's disk is full: each command stops with one line that names
the cause and says what to do, without a traceback and without doing anything else.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from alembic import command

from acceptance.test_send_cli import smtp_env
from acceptance.workspace import Workspace, assert_fails
from mail_server import MailServer, free_port
from reminders.database import _alembic_config, create_engine

Ids = dict[tuple[str, str], int]
SEND_ALL = ("send-all", "--agency", "annecy", "--kind", "arrival", "--yes")
#: `send-all` and `run` alike: every command that sends checks the database first.
SENDING_COMMANDS = [pytest.param(SEND_ALL, id="send-all"), pytest.param(("run",), id="run")]
PASSWORD = "pg-s3cret"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def set_revision(database: Path, revision: str) -> None:
    """Write `revision` into the database's alembic_version by hand."""
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))


def revision_of(database: Path) -> str:
    with closing(sqlite3.connect(database)) as connection:
        [(revision,)] = connection.execute("SELECT version_num FROM alembic_version")
    return str(revision)


# -- the database cannot be reached ---------------------------------------------------


@pytest.mark.parametrize("args", SENDING_COMMANDS)
def test_postgresql_not_listening_stops_the_command_with_one_line(
    bare: Workspace, mail_server: MailServer, args: tuple[str, ...]
) -> None:
    """Fault: nothing listens at database.url's port; one line names it (no password), exit 1."""
    port = free_port()
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{port}/x"

    result = bare.run(*args, env=smtp_env(mail_server, REMINDERS_DATABASE__URL=url))

    message = assert_fails(
        result,
        1,
        f"cannot use the database 'postgresql+psycopg://postgres:***@127.0.0.1:{port}/x'",
        "check database.url and that the server is running",
    )
    assert PASSWORD not in result.stderr
    assert "Connection refused" in message
    assert mail_server.messages() == []
    assert sorted(p.name for p in bare.folder.iterdir()) == ["agency-templates", "reminders.toml"]


@pytest.mark.parametrize("args", SENDING_COMMANDS)
def test_a_missing_sqlite_file_says_to_run_db_upgrade_and_creates_nothing(
    bare: Workspace, mail_server: MailServer, args: tuple[str, ...]
) -> None:
    """Fault: database.url names a SQLite file that does not exist; it says to run db upgrade."""
    result = bare.run(*args, env=smtp_env(mail_server))

    assert_fails(
        result,
        1,
        f"no database at '{bare.database}'",
        "run 'reminders db upgrade' to create it",
    )
    assert not bare.database.exists(), "checking must not leave an empty file behind"
    assert sorted(p.name for p in bare.folder.iterdir()) == ["agency-templates", "reminders.toml"]
    assert mail_server.messages() == []


# -- the schema is not this code's -----------------------------------------------------


@pytest.fixture
def at_0003(bare: Workspace) -> Workspace:
    """A workspace whose database was migrated only to revision 0003 (Alembic)."""
    engine = create_engine(f"sqlite:///{bare.database}")
    try:
        command.upgrade(_alembic_config(engine), "0003")
    finally:
        engine.dispose()
    return bare


@pytest.mark.parametrize("args", SENDING_COMMANDS)
def test_an_older_schema_is_refused_until_db_upgrade(
    at_0003: Workspace, mail_server: MailServer, args: tuple[str, ...]
) -> None:
    """Fault: the database is at revision 0003; one line says to run 'reminders db upgrade'."""
    result = at_0003.run(*args, env=smtp_env(mail_server))

    message = assert_fails(result, 1, "is at revision 0003", "run 'reminders db upgrade'")
    assert f"'sqlite:///{at_0003.database}'" in message
    assert revision_of(at_0003.database) == "0003", "nothing may migrate it behind the user's back"
    assert mail_server.messages() == []


@pytest.mark.parametrize("args", SENDING_COMMANDS)
def test_a_newer_schema_says_to_upgrade_reminders_not_the_database(
    planned: Workspace, mail_server: MailServer, args: tuple[str, ...]
) -> None:
    """Fault: the database is at revision 9999 (newer code migrated it); upgrade reminders."""
    set_revision(planned.database, "9999")

    result = planned.run(*args, env=smtp_env(mail_server))

    message = assert_fails(result, 1, "is at revision 9999, newer than this reminders")
    assert "upgrade reminders on this host" in message
    assert "db upgrade" not in message
    assert mail_server.messages() == []
    assert revision_of(planned.database) == "9999"


def test_db_upgrade_of_a_newer_schema_refuses_in_one_line(planned: Workspace) -> None:
    """Fault: `db upgrade` of a database newer than the code: one line, nothing migrated."""
    set_revision(planned.database, "9999")

    result = planned.run("db", "upgrade")

    assert_fails(result, 1, "is at revision 9999, newer than this reminders")
    assert revision_of(planned.database) == "9999"


# -- the Maildir's disk is full ----------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """Mount a 64 KiB tmpfs (root only); yield its folder; unmount it after the test."""
    folder = tmp_path / "disk"
    folder.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        problem = mounted.stderr.strip() if mounted.returncode != 0 else None
    except OSError as error:  # no mount command
        problem = str(error)
    if problem is not None:
        reason = f"cannot mount a tmpfs (needs root): {problem}"
        if in_ci():
            pytest.fail(f"CI=true requires the full-disk test: {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, check=True)


def fill(folder: Path) -> Path:
    """Write into `folder` until its disk is full; return the file that fills it."""
    filler = folder / "filler"
    # Unbuffered: a buffer left over would fail again when the file is closed.
    with filler.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return filler


def test_a_full_maildir_disk_keeps_the_email_and_sends_it_once_space_is_back(
    planned: Workspace, planned_ids: Ids, small_disk: Path, mail_server: MailServer
) -> None:
    """Fault: the Maildir's disk is full; one line says so, the email stays approved, then goes."""
    item_id = planned_ids[("B-1", "balance_due")]
    maildir = small_disk / "outbox"
    env = smtp_env(
        mail_server, REMINDERS_MAIL__TRANSPORT="maildir", REMINDERS_MAIL__MAILDIR=str(maildir)
    )
    filler = fill(small_disk)

    full = planned.run("send", str(item_id), env=env)

    assert full.code == 1, full.describe()
    [line] = full.errors
    assert f"cannot write to the maildir '{maildir}': No space left on device" in line
    assert "free space on its disk" in line
    assert "nothing lost" in line and "send them again" in line
    assert f"item {item_id} not sent" in full.stdout
    assert "stays approved" in full.stdout
    assert not list((maildir / "new").iterdir()), "no half-written email may be delivered"
    item = planned.json("show", str(item_id))
    assert item["status"] == "approved"
    # The try counts (a disk that stays full ends in `failed` after mail.max_attempts),
    # and the daemon waits mail.retry_after_s before the next one.
    assert item["attempts"] == 1
    assert item["next_attempt_at"] is not None
    assert [d["outcome"] for d in item["deliveries"]] == ["transient"]
    assert "No space left on device" in item["last_error"]

    filler.unlink()
    freed = planned.ok("send", str(item_id), env=env)

    assert f"item {item_id} sent" in freed.stdout
    [written] = list((maildir / "new").iterdir())
    item = planned.json("show", str(item_id))
    assert (item["status"], item["attempts"]) == ("sent", 2)
    assert f"Message-ID: {item['message_id']}".encode() in written.read_bytes()
    assert mail_server.messages() == [], "the maildir transport must not fall back to SMTP"
