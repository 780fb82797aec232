"""What the API reads from a request: JSON bodies, query strings, path fields (pure).

Each reader returns the value or raises a `Problem` naming the field and saying
what to send instead: 400 for a body that is not JSON, 422 for a field that is
missing, unknown, of the wrong type or invalid.
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..consent import Source, method_problem, normalise_address
from ..errors import InvalidAddress
from ..planning import EARLIEST_DAY, LATEST_DAY
from .problems import Problem, invalid

#: The report's page size when none is asked for, and the most one page holds.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: Unicode categories refused in a method: control (CR, LF, NUL...), format (bidi
#: overrides, zero-width), line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def json_object(body: bytes) -> dict[str, Any]:
    """Return the JSON object of a request body (an empty body is `{}`)."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise Problem(400, f"the body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise invalid("body", f"the body must be a JSON object, not {_json_type(value)}")
    return value


def fields(
    body: Mapping[str, Any], *, required: Collection[str] = (), optional: Collection[str] = ()
) -> dict[str, Any]:
    """Return the body's fields; refuse a missing or unknown one, naming what is accepted."""
    allowed = [*required, *optional]
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise invalid(
            f"body.{unknown[0]}",
            f"unknown field {names}: this request takes {_listing(allowed)}",
        )
    for name in required:
        if name not in body:
            raise invalid(f"body.{name}", f"the field {name!r} is required")
    return dict(body)


def text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be a string, not {_json_type(value)}")
    return value


def method(value: Any) -> str:
    """Return how a change reached the client (`phone`, `crm`...), printable and short.

    Control characters (CR, LF, NUL...) and invisible format characters are refused;
    anything else is kept as written: it is shown and exported as text, never put in
    an email header (the CSV report neutralises a leading `=`).
    """
    written = text(value, "body.method")
    problem = method_problem(written)
    if problem is not None:
        raise invalid("body.method", problem)
    return written.strip()


def address(value: str) -> str:
    """Return the normalised address of the path, or refuse it saying why it is not valid."""
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in value):
        raise invalid("path.address", "the address contains control or invisible characters")
    try:
        return normalise_address(value)
    except InvalidAddress as error:
        raise invalid("path.address", str(error)) from None


def instant(value: Any, field: str) -> datetime:
    """Return an ISO 8601 date and time with its offset (`2026-11-20T14:30:00+01:00`, `...Z`).

    A time without offset is refused: the API cannot know which zone it was in.
    """
    written = text(value, field)
    try:
        parsed = datetime.fromisoformat(written)
    except ValueError:
        raise invalid(
            field,
            f"{field} {written!r} is not an ISO 8601 date and time: write e.g. "
            "2026-11-20T14:30:00+01:00",
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise invalid(
            field,
            f"{field} {written!r} has no UTC offset: add it, e.g. {written}+01:00 or {written}Z",
        )
    _in_calendar(parsed.date(), written, field)
    return parsed


def since_until(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """Return the report's bounds: `since` included, `until` excluded.

    Each is an instant with its offset, or a date (a whole day in UTC, as the CLI's
    `consent report`: `until=2026-11-30` includes that day).
    """
    start = _bound(since, "query.since", end=False)
    end = _bound(until, "query.until", end=True)
    if start is not None and end is not None and end <= start:
        raise invalid("query.until", f"until {until} is not after since {since}: swap them")
    return start, end


def _bound(value: str | None, field: str, *, end: bool) -> datetime | None:
    if value is None:
        return None
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise invalid(field, f"{field} {value!r} is not a date: write YYYY-MM-DD") from None
        _in_calendar(day, value, field)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    return instant(value, field)


def _in_calendar(day: date, written: str, field: str) -> None:
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise invalid(
            field,
            f"{field} {written!r} is out of range: give a day from {EARLIEST_DAY.isoformat()} "
            f"to {LATEST_DAY.isoformat()}",
        )


def source(value: Any, allowed: Sequence[Source], field: str) -> Source:
    written = text(value, field)
    if written not in allowed:
        raise invalid(field, f"{field} {written!r} is not one of {_listing(allowed)}")
    return Source(written)


def query(params: Sequence[tuple[str, str]], allowed: Collection[str]) -> dict[str, str]:
    """Return the query's parameters; refuse an unknown or repeated one."""
    found: dict[str, str] = {}
    for name, value in params:
        if name not in allowed:
            raise invalid(
                f"query.{name}", f"unknown parameter {name!r}: this route takes {_listing(allowed)}"
            )
        if name in found:
            raise invalid(f"query.{name}", f"the parameter {name!r} is given twice: give it once")
        found[name] = value
    return found


def limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise invalid("query.limit", f"limit {value!r} is not a number from 1 to {MAX_LIMIT}")
    return int(value)


def cursor(key: str) -> str:
    """Return the opaque cursor of the page after the address key `key`."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii").rstrip("=")


def after(value: str | None) -> str | None:
    """Return the address key a cursor carries (None: the first page)."""
    if value is None:
        return None
    try:
        padded = value + "=" * (-len(value) % 4)
        key = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (UnicodeError, binascii.Error, ValueError):
        key = ""
    if not key or cursor(key) != value:
        raise invalid(
            "query.cursor", "cursor is not one this API gave: pass the 'next' of the last page"
        )
    return key


def _listing(names: Collection[str]) -> str:
    return ", ".join(repr(str(name)) for name in names) or "no field"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
