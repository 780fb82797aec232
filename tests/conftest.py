"""Shared fixtures: a fresh, migrated database for each test, on SQLite and on PostgreSQL.

PostgreSQL: the session starts a throwaway cluster (no server needs to be running),
migrates one template database, and clones it for each test, which takes a few
milliseconds. Without PostgreSQL server binaries its tests are skipped, unless
`CI=true`, where they fail: CI must exercise both backends.

SQLite: one migrated file per session, copied for each test.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.pool import NullPool

from mail_server import MailServer
from reminders.database import create_engine, upgrade

TEMPLATE_DATABASE = "reminders_template"
#: Linux and macOS limit a unix socket path to about 100 bytes.
_MAX_SOCKET_DIR_LENGTH = 80


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


def find_postgres_bindir() -> Path | None:
    """Return the folder of the newest PostgreSQL server binaries, or None."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda initdb: _version_key(initdb.parent.parent.name),
    )
    if debian:
        return debian[-1].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        bindir = Path(result.stdout.strip())
        if result.returncode == 0 and (bindir / "initdb").is_file():
            return bindir
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Cluster:
    """A PostgreSQL cluster in a temporary folder, run as `postgres` when we are root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        # As root the folder is handed to the postgres user, so it must be in a
        # place every user can traverse; the short path also keeps the socket's short.
        self.root = Path(tempfile.mkdtemp(prefix="reminders-pg-", dir=self._parent()))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()

    def _parent(self) -> str | None:
        default = tempfile.gettempdir()
        if (self.as_root or len(default) > _MAX_SOCKET_DIR_LENGTH) and Path("/tmp").is_dir():
            return "/tmp"
        return None

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / program), *args]
        if self.as_root:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("runuser not found: it is needed to run PostgreSQL as root")
            command = [runuser, "-u", "postgres", "--", *command]
        return subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, check=False, timeout=120
        )

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(
                f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}{log}"
            )

    def start(self) -> None:
        if self.as_root:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root, PostgreSQL must run as the 'postgres' user, "
                    "which does not exist"
                ) from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._check(
            self._run(
                "initdb",
                "--pgdata", str(self.data),
                "--username", "postgres",
                "--auth", "trust",
                "--encoding", "UTF8",
                "--locale", "C",
                "--no-sync",
            ),
            "initdb",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            # Throwaway data: trade durability for speed.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self._check(
            self._run(
                "pg_ctl", "start", "--pgdata", str(self.data), "--log", str(self.log),
                "--wait", "--timeout", "60",
            ),
            "pg_ctl start",
        )  # fmt: skip

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "--pgdata", str(self.data), "--mode", "immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/"


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> str:
    """Start a throwaway PostgreSQL server; return its base URL (append a database name)."""
    bindir = find_postgres_bindir()
    if bindir is None:
        reason = (
            "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin, "
            "pg_config --bindir and PATH): install the 'postgresql' package"
        )
        if _in_ci():
            pytest.fail(f"CI=true requires PostgreSQL: {reason}", pytrace=False)
        pytest.skip(reason)
    cluster = _Cluster(bindir)
    # Registered before starting, so a half-started server is stopped too.
    request.addfinalizer(cluster.stop)
    try:
        cluster.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"cannot start a PostgreSQL server from {bindir}: {error}", pytrace=False)
    return cluster.url


@pytest.fixture(scope="session")
def postgres_admin(postgres_server: str) -> Iterator[Engine]:
    """Return an AUTOCOMMIT engine on the server's `postgres` database, for DDL."""
    engine = sa_create_engine(
        postgres_server + "postgres", isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str, postgres_admin: Engine) -> str:
    """Create and migrate the template database once; return its name."""
    with postgres_admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {TEMPLATE_DATABASE}"))
    engine = create_engine(postgres_server + TEMPLATE_DATABASE)
    try:
        upgrade(engine)
    finally:
        # CREATE DATABASE ... TEMPLATE fails while anyone is connected to the template.
        engine.dispose()
    return TEMPLATE_DATABASE


_database_numbers = itertools.count(1)


@pytest.fixture
def new_postgres_database(
    postgres_server: str, postgres_admin: Engine
) -> Iterator[Callable[[str | None], str]]:
    """Return a function creating a database (cloned from `template`, if given); return its URL.

    The databases are dropped after the test, connections still open included.
    """
    created: list[str] = []

    def create(template: str | None = None) -> str:
        name = f"test_{next(_database_numbers)}"
        clause = f" TEMPLATE {template}" if template else ""
        with postgres_admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}{clause}"))
        created.append(name)
        return postgres_server + name

    yield create
    with postgres_admin.connect() as connection:
        force = " WITH (FORCE)" if connection.dialect.server_version_info >= (13,) else ""
        for name in created:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))


@pytest.fixture
def postgresql_url(
    postgres_template: str, new_postgres_database: Callable[[str | None], str]
) -> str:
    """Return the URL of a fresh, migrated PostgreSQL database."""
    return new_postgres_database(postgres_template)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate one SQLite database file per session; return its path."""
    path = tmp_path_factory.mktemp("sqlite-template") / "reminders.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with engine.connect() as connection:
            # Fold the write-ahead log into the file, so copying the file copies it all.
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """Return the URL of a fresh, migrated SQLite database in the test's folder."""
    path = tmp_path / "reminders.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """Return the URL of a fresh, migrated database: each test runs on both backends."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of a new database with no schema, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    create: Callable[[str | None], str] = request.getfixturevalue("new_postgres_database")
    return create(None)


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server on loopback that records every message it accepts."""
    server = MailServer().start()
    try:
        yield server
    finally:
        server.stop()
