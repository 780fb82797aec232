"""What every part of the store shares: the transaction, the clock, the dialect."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ..clock import Clock


class StoreBase:
    """Queries and state changes within one transaction."""

    def __init__(self, connection: Connection, clock: Clock) -> None:
        # A session joined to the caller's transaction, for ORM-typed selects.
        self._db = Session(bind=connection, autoflush=False, expire_on_commit=False)
        self._connection = connection
        self._dialect = connection.dialect.name
        self._clock = clock
        #: agencies whose data version this transaction already raised
        self._bumped: set[str] = set()

    def _now(self) -> datetime:
        return self._clock.now()

    def _insert(self, table: Any) -> Any:
        # Each dialect's INSERT has its own ON CONFLICT; load only the one in use.
        if self._dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(table)
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
