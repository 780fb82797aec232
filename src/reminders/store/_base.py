"""What every part of the store shares: the transaction, the clock, the dialect."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, func, literal_column, select
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

    def _one_of(self, column: Any, values: Sequence[str | int]) -> Any:
        """`column IN values`, the values one parameter: an array on PostgreSQL (`= ANY`),
        a JSON array on SQLite (`IN (SELECT value FROM json_each(?))`).

        The look-ups of an import name thousands of refs or addresses at a time: as one
        parameter, the statement's text is the same whatever the values, so it is
        compiled and parsed once (the server prepares it), where a list of hundreds of
        parameters was a new statement every time. Values are text or integers.
        """
        if self._dialect == "postgresql":
            # `func.any`, not `any_()`, and one array type per column: `any_()` tied the
            # parameter, its values and a new type's comparator in a reference cycle,
            # left to the cyclic collector (30 MB of an import of 200,000 contacts).
            values_of = bindparam(None, list(values), type_=_array_of(column))
            return column == func.any(values_of)
        each = func.json_each(bindparam(None, json.dumps(list(values))))
        return column.in_(select(literal_column("value")).select_from(each))

    def _execute_many(
        self,
        name: str,
        build: Callable[[], Any],
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> int:
        """Run the statement `build()` makes once for each of `rows`; return the rows written.

        `rows` hold the values of the bind parameters named `columns`, in that order.
        The statement is compiled once per process (`name` keys it) and handed to the
        driver's own executemany: SQLAlchemy's per-row parameter handling was a fifth
        of an import. Each value still goes through its column type's conversion,
        once per distinct value of a column (the same `now` on every row is
        converted once).
        """
        if not rows:
            return 0
        many = _compiled_many(self._connection.dialect, name, build, tuple(columns))
        values = [list(column) for column in zip(*rows, strict=True)]
        for index, convert in many.conversions:
            seen: dict[Hashable, Any] = {}
            values[index] = [
                seen[v] if v in seen else seen.setdefault(v, convert(v)) for v in values[index]
            ]
        if many.order is None:
            rows_out = zip(*values, strict=True)
            params: list[Any] = [dict(zip(columns, row, strict=True)) for row in rows_out]
        else:
            params = list(zip(*(values[i] for i in many.order), strict=True))
        # Both drivers count the rows of every execution (-1 if one could not say).
        return int(self._connection.exec_driver_sql(many.sql, params).rowcount)


_ARRAYS: dict[Any, Any] = {}


def _array_of(column: Any) -> Any:
    """PostgreSQL's array of `column`'s type, made once per column."""
    array = _ARRAYS.get(column)
    if array is None:
        from sqlalchemy.dialects.postgresql import ARRAY

        array = _ARRAYS[column] = ARRAY(column.type)
    return array


@dataclass(frozen=True, slots=True)
class _Many:
    """A statement compiled for the driver, and how to lay out its rows."""

    sql: str
    #: positional parameters: the index in a row of each placeholder (None: by name)
    order: tuple[int, ...] | None
    #: (index in a row, conversion) of the columns whose type converts values
    conversions: tuple[tuple[int, Callable[[Any], Any]], ...]


_COMPILED: dict[tuple[str, str, str, tuple[str, ...]], _Many] = {}


def _compiled_many(
    dialect: Dialect, name: str, build: Callable[[], Any], columns: tuple[str, ...]
) -> _Many:
    key = (dialect.name, str(dialect.paramstyle), name, columns)
    many = _COMPILED.get(key)
    if many is None:
        compiled = build().compile(dialect=dialect, column_keys=list(columns), for_executemany=True)
        conversions = []
        for index, column in enumerate(columns):
            convert = compiled.binds[column].type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                conversions.append((index, convert))
        order = (
            tuple(columns.index(bind) for bind in compiled.positiontup)
            if compiled.positional
            else None
        )
        many = _COMPILED[key] = _Many(
            sql=compiled.string, order=order, conversions=tuple(conversions)
        )
    return many
