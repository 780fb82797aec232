"""Connecting to the database and migrating its schema with Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, event, inspect, make_url, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from .errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")

#: The newest migration's revision: every command checks the database is at it without
#: loading Alembic (a test keeps it equal to Alembic's head).
SCHEMA_REVISION = "0010"


def create_engine(url: str) -> Engine:
    """Create an engine for `url` (no connection is made yet)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            f"database.url {url!r} is not a database URL: write e.g. "
            "'sqlite:///reminders.db' or 'postgresql+psycopg://user@host/db'"
        ) from None
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        # Wait for another writer (a second process) instead of failing at once.
        options["connect_args"] = {"timeout": 30}
    else:
        options["pool_pre_ping"] = True
    try:
        engine = sa_create_engine(parsed, **options)
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise DatabaseError(
            f"no driver for database.url {describe(url)}: {error} "
            "(for PostgreSQL install 'reminders[postgresql]')"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        event.listen(engine, "connect", _postgresql_session)
        event.listen(engine, "begin", _postgresql_begin)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Begin a transaction as its options ask (`Database.transaction`).

    `immediate` takes the write lock at once (a claim reads and writes in one
    step; another writer waits for it, up to the busy timeout); otherwise the driver
    begins the transaction at its first write, as it always does. A transaction
    that is not `durable` commits without waiting for the disk (synchronous=NORMAL
    in WAL mode): a power cut may lose it, never corrupt the file. The pragma cannot
    change inside a transaction, so it is set before the transaction begins.
    """
    options = connection.get_execution_options()
    durable = options.get("durable", True)
    connection.exec_driver_sql(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    if options.get("immediate"):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _postgresql_session(connection: Any, _record: Any) -> None:
    """Turn off the JIT compiler for this connection's queries.

    Its threshold is an estimated cost, and a claim walking an index with a check
    per item is estimated as if it read the whole tab: compiling took 12 ms where
    the claim took half a millisecond. The queries here are short; none gains.
    """
    cursor = connection.cursor()
    cursor.execute("SET jit = off")
    cursor.close()
    connection.commit()


def _postgresql_begin(connection: Connection) -> None:
    if not connection.get_execution_options().get("durable", True):
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def describe(url: str) -> str:
    """Return `url` with any password hidden, for messages."""
    try:
        return repr(make_url(url).render_as_string(hide_password=True))
    except ArgumentError:
        return repr(url)


def _alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config  # only `db upgrade` needs Alembic

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate the schema to the newest revision; return (before, after) revisions."""
    from alembic import command

    before = current_revision(engine)
    if before is not None and before not in _known_revisions():
        raise _newer(engine, before)
    try:
        command.upgrade(_alembic_config(engine), "head")
    except OperationalError as error:
        raise unreachable(engine, error) from None
    return before, head_revision()


def head_revision() -> str:
    """Return the newest revision among the migration scripts (asks Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the schema revision the database is at (None: empty database)."""
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            revision: str | None = connection.scalar(
                text("SELECT version_num FROM alembic_version")
            )
            return revision
    except OperationalError as error:
        raise unreachable(engine, error) from None


def check_schema(engine: Engine) -> None:
    """Raise unless the database schema is at the newest revision."""
    file = engine.url.database
    if engine.dialect.name == "sqlite" and file and file != ":memory:" and not Path(file).exists():
        # Connecting would leave an empty file behind.
        raise DatabaseError(
            f"no database at '{file}': run 'reminders db upgrade' to create it "
            "(or check database.url)"
        )
    current = current_revision(engine)
    if current == SCHEMA_REVISION:
        return
    database = describe(engine.url.render_as_string(hide_password=False))
    if current is not None and current not in _known_revisions():
        raise _newer(engine, current)
    state = "empty" if current is None else f"at revision {current}"
    raise DatabaseError(
        f"the database {database} is {state}, not at the current schema: run 'reminders db upgrade'"
    )


def _newer(engine: Engine, current: str) -> DatabaseError:
    # Migrating cannot help: this code does not know that schema, and writing to it
    # could break what the newer code relies on.
    database = describe(engine.url.render_as_string(hide_password=False))
    return DatabaseError(
        f"the database {database} is at revision {current}, newer than this reminders "
        f"knows ({SCHEMA_REVISION}): a newer version migrated it; upgrade reminders on "
        "this host before running it"
    )


def _known_revisions() -> set[str]:
    """Return the revisions of the migration scripts, from their names (`0004_leases.py`)."""
    scripts = (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")
    return {script.name[:4] for script in scripts} | {SCHEMA_REVISION}


def unreachable(engine: Engine, error: OperationalError) -> DatabaseError:
    reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
    advice = (
        "check database.url and that its folder exists and is writable"
        if engine.dialect.name == "sqlite"
        else "check database.url and that the server is running"
    )
    return DatabaseError(
        f"cannot use the database {describe(engine.url.render_as_string(hide_password=False))}: "
        f"{reason}: {advice}"
    )
