"""`check_schema` on a database that is not at this code's revision, on SQLite and PostgreSQL.

Older: `reminders db upgrade` fixes it. Newer: only upgrading reminders does, and
the message must not send the operator to `db upgrade`.
"""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, text

from reminders.database import SCHEMA_REVISION, _alembic_config, check_schema, create_engine
from reminders.errors import DatabaseError


def test_an_older_schema_says_to_run_db_upgrade(empty_database_url: str) -> None:
    """Fault: a database migrated only to 0003; the message says to run 'reminders db upgrade'."""
    engine = create_engine(empty_database_url)
    try:
        command.upgrade(_alembic_config(engine), "0003")

        with pytest.raises(DatabaseError) as raised:
            check_schema(engine)
    finally:
        engine.dispose()

    message = str(raised.value)
    assert "is at revision 0003, not at the current schema" in message
    assert message.endswith("run 'reminders db upgrade'")
    assert "newer" not in message


def test_a_newer_schema_says_to_upgrade_reminders_not_the_database(engine: Engine) -> None:
    """Fault: a database at a revision this code does not know; it says to upgrade reminders."""
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    with pytest.raises(DatabaseError) as raised:
        check_schema(engine)

    message = str(raised.value)
    assert f"is at revision 9999, newer than this reminders knows ({SCHEMA_REVISION})" in message
    assert "upgrade reminders on this host" in message
    assert "db upgrade" not in message
