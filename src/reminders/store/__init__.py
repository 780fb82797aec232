"""All SQL lives here: set-based queries named for intent, returning domain values.

ORM rows never leave this package. State changes are conditional updates that
fail loudly when an item is not in a state the transition table allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from ..clock import Clock
from ..database import check_schema, unreachable
from ._api_keys import ApiKeyStore
from ._choices import KindChoice, KindChoiceStore
from ._claims import Claimed
from ._delivery import DeliveryStore, Recovered, Settled
from ._planning import PassRecord
from ._records import ImportedContact, RecordStore
from ._review import ReviewStore
from ._rows import Candidate, NewItem, UpsertCounts, major_units, minor_units

__all__ = [
    "Candidate",
    "Claimed",
    "Database",
    "ImportedContact",
    "KindChoice",
    "NewItem",
    "PassRecord",
    "Recovered",
    "Settled",
    "Store",
    "UpsertCounts",
    "major_units",
    "minor_units",
]


class Store(RecordStore, DeliveryStore, ReviewStore, ApiKeyStore, KindChoiceStore):
    """Every query and state change, within one transaction."""


class Database:
    """The connector: hands out a `Store` bound to one transaction."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def check(self) -> None:
        """Raise unless the database is reachable and at the current schema."""
        check_schema(self.engine)

    @contextmanager
    def transaction(
        self, *, dry_run: bool = False, immediate: bool = False, durable: bool = True
    ) -> Iterator[Store]:
        """Yield a store in one transaction; commit at the end unless `dry_run`.

        `immediate`: take SQLite's write lock at the start (claims). Not `durable`:
        the commit does not wait for the disk (settlements: losing one on a power
        cut leaves its item `sending`, hence `unknown`, never sent twice).
        """
        try:
            with self.engine.connect() as connection:
                if immediate or not durable:
                    connection.execution_options(immediate=immediate, durable=durable)
                transaction = connection.begin()
                try:
                    yield Store(connection, self.clock)
                except BaseException:
                    transaction.rollback()
                    raise
                if dry_run:
                    transaction.rollback()
                else:
                    transaction.commit()
        except OperationalError as error:
            raise unreachable(self.engine, error) from None
