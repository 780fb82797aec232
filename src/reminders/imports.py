"""CSV import of contacts and bookings: validate every row first, then upsert by `ref`.

Parsing and validation are pure (rows in, values and problems out); `import_file`
does the I/O: reads the file, asks the store which contacts exist, and writes
nothing unless every row is valid (or the caller chose to skip invalid ones).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Generic, TypeVar

from babel import Locale, UnknownLocaleError
from babel.numbers import get_currency_precision, list_currencies
from email_validator import EmailNotValidError, validate_email

from . import registry
from .bookings import Booking, BookingStatus, Contact
from .consent import is_plain_address
from .errors import ImportFileError
from .headers import header_problem
from .planning import EARLIEST_DAY, LATEST_DAY
from .store import Database, Store, UpsertCounts

T = TypeVar("T")

CONTACT_COLUMNS = ("ref", "agency", "name", "email", "locale", "email_confirmed", "email_opt_out")
BOOKING_COLUMNS = (
    "ref",
    "agency",
    "contact_ref",
    "property",
    "status",
    "option_expires_on",
    "balance_due_on",
    "balance_outstanding",
    "currency",
    "arrival_on",
    "departure_on",
)
_CHUNK = 500
#: After how many chunks the database's statistics are refreshed (a table growing
#: from empty is planned as empty otherwise): a few times, ever further apart.
_ANALYZE_AFTER_CHUNKS = frozenset({2, 8, 32, 128, 512})
#: Invalid rows listed one by one; more are counted.
_LISTED_PROBLEMS = 1000
#: Digits an amount may have before the decimal point. Amounts are stored in the
#: currency's minor unit in a 64-bit integer column (at most 9.2e18): 13 digits leave
#: room for four decimal places (the most any currency has) and catch typos long before.
MAX_AMOUNT_DIGITS = 13


class Entity(StrEnum):
    CONTACTS = "contacts"
    BOOKINGS = "bookings"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    line: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed(Generic[T]):
    """Valid values (with their line numbers) and the problems of the other rows."""

    values: list[tuple[int, T]]
    problems: list[Problem]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    entity: Entity
    rows: int
    created: int
    updated: int
    unchanged: int
    #: the invalid rows skipped (the first `_LISTED_PROBLEMS` of them)
    skipped: list[Problem]
    #: how many rows were invalid
    invalid: int = 0
    #: consent flags recorded in the registry as `import` events
    consent_changes: int = 0


def cell_problem(value: str) -> str | None:
    """Say why no column accepts `value` (it holds a control character), or None.

    One rule for every cell of both files, checked before anything else reads the
    row: a control character may end in an email header or on a terminal, and
    PostgreSQL refuses NUL in any text, even in a look-up.
    """
    return header_problem(value)


#: A row whose cells, joined, hold no control character and no encoded word is clean:
#: one search a row instead of one a cell.
_SUSPECT = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]|=\\?")


def _plain_row(cells: Iterable[str]) -> bool:
    return _SUSPECT.search(" ".join(cells)) is None


class _Row:
    """One CSV row being validated: collects every problem instead of stopping at one."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = {k: (v or "").strip() for k, v in values.items()}
        self.problems: list[str] = []
        #: columns whose cell holds a control character: reported first, then read as empty
        self.refused: set[str] = set()
        if _plain_row(self.values.values()):
            return
        for column, value in self.values.items():
            problem = cell_problem(value)
            if problem:
                self.problems.append(
                    f"{column} {value!r} {problem}: remove it from the file and import it again"
                )
                self.refused.add(column)
        for column in self.refused:
            self.values[column] = ""

    def text(self, column: str, *, required: bool = True, max_length: int = 200) -> str:
        value = self.values.get(column, "")
        if column in self.refused:
            return value
        if required and not value:
            self.problems.append(f"{column} is empty: give a value")
        elif len(value) > max_length:
            self.problems.append(f"{column} is longer than {max_length} characters")
        return value

    def choice(
        self, column: str, allowed: Collection[str], hint: str = "", *, any_case: bool = False
    ) -> str:
        """Return the cell, checked to be one of `allowed` (listed in its order if not)."""
        value = self.values.get(column, "")
        if column in self.refused:
            return value
        if any_case:
            value = value.lower()
        if value not in allowed:
            self.problems.append(
                f"{column} {value!r} is not allowed: use {', '.join(allowed)}{hint}"
            )
        return value

    def day(self, column: str) -> date | None:
        value = self.values.get(column, "")
        if not value:
            return None
        try:
            if len(value) != 10:
                raise ValueError
            day = date.fromisoformat(value)
        except ValueError:
            self.problems.append(f"{column} {value!r} is not a date: write YYYY-MM-DD")
            return None
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            self.problems.append(
                f"{column} {value!r} is out of range: write a date from "
                f"{EARLIEST_DAY.isoformat()} to {LATEST_DAY.isoformat()}, or leave the cell empty"
            )
            return None
        return day

    def flag(self, column: str) -> bool:
        value = self.values.get(column, "").lower()
        if value in ("", "false"):
            return False
        if value == "true":
            return True
        self.problems.append(
            f"{column} {self.values[column]!r} is not a boolean: write true or false"
        )
        return False


class _CsvFile:
    """A CSV file read row by row, and how far into it the reading is (in bytes).

    The header is checked on opening; rows come as (line number, cells), a row
    with the wrong number of cells as {"__columns__": "bad"}.
    """

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        try:
            self._binary = path.open("rb")
        except FileNotFoundError:
            raise ImportFileError(f"file '{path}' not found: check the path") from None
        except OSError as error:
            raise ImportFileError(f"cannot read '{path}': {error.strerror}") from None
        self.size = os.fstat(self._binary.fileno()).st_size
        self._text = io.TextIOWrapper(self._binary, encoding="utf-8-sig", newline="")
        try:
            self._reader = csv.reader(self._text, strict=True)
            with self._errors():
                found = next(self._reader, None)
            self._header = self._check_header(found, columns)
        except BaseException:
            self.close()
            raise

    def _check_header(self, found: Sequence[str] | None, columns: tuple[str, ...]) -> list[str]:
        path = self.path
        if not found:
            raise ImportFileError(f"{path.name}: the file is empty: it needs a header row")
        header = [h.strip() for h in found]
        if len(header) == 1 and ";" in header[0]:
            raise ImportFileError(
                f"{path.name} line 1: the columns are separated by ';': save the file as "
                "CSV with commas (the header must be " + ",".join(columns) + ")"
            )
        missing = [c for c in columns if c not in header]
        unknown = [c for c in header if c not in columns]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown column(s) {', '.join(repr(c) for c in unknown)}")
            raise ImportFileError(
                f"{path.name} line 1: {' and '.join(parts)}: the header must be {','.join(columns)}"
            )
        return header

    @property
    def position(self) -> int:
        """Bytes read so far (to a buffer's size)."""
        return self._binary.tell()

    def chunks(self, size: int) -> Iterator[list[tuple[int, dict[str, str]]]]:
        """Yield the rows `size` at a time: memory stays flat whatever the file's size."""
        chunk: list[tuple[int, dict[str, str]]] = []
        header, width, reader = self._header, len(self._header), self._reader
        with self._errors():
            for cells in reader:
                if not cells:
                    continue  # a blank line, skipped as csv.DictReader did
                if len(cells) != width:
                    chunk.append((reader.line_num, {"__columns__": "bad"}))
                else:
                    chunk.append((reader.line_num, dict(zip(header, cells, strict=True))))
                if len(chunk) == size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except UnicodeDecodeError as error:
            raise ImportFileError(
                f"{self.path.name}: not UTF-8 text (byte {error.start}): save the file as UTF-8 CSV"
            ) from None
        except csv.Error as error:
            raise ImportFileError(f"{self.path.name}: not a readable CSV file: {error}") from None

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> _CsvFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def parse_contacts(
    rows: Iterable[tuple[int, dict[str, str]]],
    agencies: Sequence[str],
    first_line: dict[str, int] | None = None,
) -> Parsed[Contact]:
    """Validate contact rows; return the valid contacts and every problem.

    `first_line` is where each ref of an earlier chunk of the file first appears; the
    refs of these rows are added to it as they are read.
    """
    values: list[tuple[int, Contact]] = []
    problems: list[Problem] = []
    first_line = {} if first_line is None else first_line
    # Looked up once a row: a dict finds a code at once and keeps the order for messages.
    known_agencies = dict.fromkeys(agencies)
    for line, raw in rows:
        if "__columns__" in raw:
            problems.append(Problem(line=line, message=_WRONG_WIDTH))
            continue
        row = _Row(raw)
        ref = row.text("ref", max_length=100)
        agency = row.choice("agency", known_agencies, " (agencies are declared in the TOML file)")
        name = row.text("name")
        email = row.text("email", required=False, max_length=320)
        if email and not is_plain_address(email):
            try:
                validate_email(email, check_deliverability=False)
            except EmailNotValidError as error:
                row.problems.append(f"email {email!r} is not a valid address: {error}")
        locale = row.text("locale", required=False, max_length=20)
        if locale:
            _check_locale(row, locale)
        confirmed = row.flag("email_confirmed")
        opted_out = row.flag("email_opt_out")
        _check_duplicate(row, ref, line, first_line)
        if row.problems:
            problems.append(Problem(line=line, message="; ".join(row.problems)))
            continue
        values.append(
            (
                line,
                Contact(
                    ref=ref,
                    agency=agency,
                    name=name,
                    email=email or None,
                    locale=locale or None,
                    email_confirmed=confirmed,
                    email_opt_out=opted_out,
                ),
            )
        )
    return Parsed(values=values, problems=problems)


def parse_bookings(
    rows: Iterable[tuple[int, dict[str, str]]],
    agencies: Sequence[str],
    is_known_contact: Callable[[str], bool],
    first_line: dict[str, int] | None = None,
) -> Parsed[Booking]:
    """Validate booking rows; return the valid bookings and every problem.

    `first_line` is where each ref of an earlier chunk of the file first appears; the
    refs of these rows are added to it as they are read.
    """
    values: list[tuple[int, Booking]] = []
    problems: list[Problem] = []
    first_line = {} if first_line is None else first_line
    currencies = list_currencies()
    # Looked up once a row: a dict finds a code at once and keeps the order for messages.
    known_agencies = dict.fromkeys(agencies)
    for line, raw in rows:
        if "__columns__" in raw:
            problems.append(Problem(line=line, message=_WRONG_WIDTH))
            continue
        row = _Row(raw)
        ref = row.text("ref", max_length=100)
        agency = row.choice("agency", known_agencies, " (agencies are declared in the TOML file)")
        contact_ref = row.text("contact_ref", max_length=100)
        if contact_ref and not is_known_contact(contact_ref):
            row.problems.append(
                f"unknown contact {contact_ref!r}: import it with 'reminders import contacts' first"
            )
        property_ = row.text("property", required=False)
        status = row.choice("status", [s.value for s in BookingStatus], any_case=True)
        dates = {
            column: row.day(column)
            for column in ("option_expires_on", "balance_due_on", "arrival_on", "departure_on")
        }
        currency = row.values.get("currency", "").upper() or "EUR"
        if currency not in currencies:
            row.problems.append(
                f"currency {row.values['currency']!r} is not an ISO 4217 code: write e.g. EUR"
            )
        amount = _amount(row, currency if currency in currencies else "EUR")
        arrival, departure = dates["arrival_on"], dates["departure_on"]
        if arrival and departure and departure < arrival:
            row.problems.append(
                f"departure_on {departure.isoformat()} is before arrival_on {arrival.isoformat()}: "
                "correct one of the dates"
            )
        _check_duplicate(row, ref, line, first_line)
        if row.problems:
            problems.append(Problem(line=line, message="; ".join(row.problems)))
            continue
        values.append(
            (
                line,
                Booking(
                    ref=ref,
                    agency=agency,
                    contact_ref=contact_ref,
                    property=property_,
                    status=BookingStatus(status),
                    balance_outstanding=amount,
                    currency=currency,
                    **dates,
                ),
            )
        )
    return Parsed(values=values, problems=problems)


_WRONG_WIDTH = "wrong number of cells: every row needs one cell per header column"


def _amount(row: _Row, currency: str) -> Decimal:
    value = row.values.get("balance_outstanding", "")
    if not value:
        return Decimal(0)
    try:
        amount = Decimal(value)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        row.problems.append(
            f"balance_outstanding {value!r} is not an amount: write e.g. 1250.00 (dot as separator)"
        )
        return Decimal(0)
    # Only comparisons and the digits themselves from here: arithmetic on a value such
    # as 1e30 or 1e999999999 would overflow the decimal context (InvalidOperation).
    places = get_currency_precision(currency)
    if amount < 0:
        row.problems.append(f"balance_outstanding {value!r} is negative: write 0 when paid")
    elif amount and amount.adjusted() >= MAX_AMOUNT_DIGITS:
        row.problems.append(
            f"balance_outstanding {value!r} is too large: write at most {MAX_AMOUNT_DIGITS} "
            "digits before the decimal point, and check the amount"
        )
    elif _decimal_places(amount) > places:
        row.problems.append(
            f"balance_outstanding {value!r} has more than {places} decimal places for {currency}: "
            f"write at most {places}"
        )
    else:
        return amount
    return Decimal(0)


def _decimal_places(amount: Decimal) -> int:
    """Return how many decimal places `amount` needs (trailing zeros do not count)."""
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # a finite amount
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant:
        return 0
    return max(0, -(exponent + len(digits) - len(significant)))


def _check_locale(row: _Row, locale: str) -> None:
    if not _is_known_locale(locale):
        row.problems.append(f"locale {locale!r} is unknown: write a code such as fr or en")


@functools.lru_cache(maxsize=1024)
def _is_known_locale(locale: str) -> bool:
    """Tell whether Babel knows `locale` (a file holds a few locales, on many rows)."""
    try:
        Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return False
    return True


def _check_duplicate(row: _Row, ref: str, line: int, first_line: dict[str, int]) -> None:
    if not ref:
        return
    if ref in first_line:
        row.problems.append(
            f"ref {ref!r} already appears on line {first_line[ref]}: keep one row per ref"
        )
    else:
        first_line[ref] = line


def describe(path: Path, problem: Problem) -> str:
    """Return one line naming the file, the line and what is wrong."""
    return f"{path.name} line {problem.line}: {problem.message}"


def import_file(
    database: Database,
    entity: Entity,
    path: Path,
    agencies: Sequence[str],
    *,
    skip_invalid: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Validate every row of `path` and upsert the valid ones by `ref`, in one transaction.

    The file is read and written `_CHUNK` rows at a time. Raises `ImportFileError`
    listing the bad rows, with nothing written, when a row is invalid and
    `skip_invalid` is false. `on_progress(bytes read, file size)` follows the reading.
    """
    columns = CONTACT_COLUMNS if entity is Entity.CONTACTS else BOOKING_COLUMNS
    problems: list[Problem] = []
    invalid = rows = 0
    totals = UpsertCounts(created=0, updated=0, unchanged=0)
    consent_changes = 0
    chunks_written = 0
    # Immediate: SQLite's write lock is held from the start, as it would be from the
    # first chunk's writes; no other writer slips in between the reads and the writes.
    with _CsvFile(path, columns) as source, database.transaction(immediate=True) as store:
        store.begin_ref_check()
        for chunk in source.chunks(_CHUNK):
            rows += len(chunk)
            parsed = _parse(store, entity, chunk, agencies)
            invalid += len(parsed.problems)
            problems.extend(parsed.problems[: max(0, _LISTED_PROBLEMS - len(problems))])
            if invalid and not skip_invalid:
                continue  # nothing will be kept: only find the other bad rows
            values = [v for _, v in parsed.values]
            if entity is Entity.CONTACTS:
                contacts: list[Contact] = values  # type: ignore[assignment]
                counts, changes = registry.import_contacts(store, contacts, database.clock.now())
                consent_changes += changes
            else:
                counts = store.upsert_bookings(values)  # type: ignore[arg-type]
            totals = UpsertCounts(
                created=totals.created + counts.created,
                updated=totals.updated + counts.updated,
                unchanged=totals.unchanged + counts.unchanged,
            )
            chunks_written += 1
            if chunks_written in _ANALYZE_AFTER_CHUNKS:
                store.refresh_statistics()
            if on_progress:
                on_progress(source.position, source.size)
        store.end_ref_check()
        if invalid and not skip_invalid:
            lines = [describe(path, p) for p in problems]
            if invalid > len(problems):
                lines.append(f"... and {invalid - len(problems)} more invalid rows")
            lines.append(
                f"nothing imported: {invalid} of {rows} rows are invalid; "
                "fix them, or pass --skip-invalid to import the valid rows"
            )
            raise ImportFileError("\n".join(lines))
    return ImportReport(
        entity=entity,
        rows=rows,
        created=totals.created,
        updated=totals.updated,
        unchanged=totals.unchanged,
        skipped=problems,
        invalid=invalid,
        consent_changes=consent_changes,
    )


def _parse(
    store: Store,
    entity: Entity,
    chunk: list[tuple[int, dict[str, str]]],
    agencies: Sequence[str],
) -> Parsed[Contact] | Parsed[Booking]:
    # Where each ref of the chunk first appears; the refs of earlier chunks come from
    # the store, so memory does not grow with the file.
    in_chunk: dict[str, int] = {}
    for line, raw in chunk:
        ref = (raw.get("ref") or "").strip()
        if ref and ref not in in_chunk and cell_problem(ref) is None:
            in_chunk[ref] = line
    first_line = store.note_refs(in_chunk)
    if entity is Entity.CONTACTS:
        return parse_contacts(chunk, agencies, first_line)
    # Only cells that can be valid are looked up: the others are reported.
    referenced = {r.get("contact_ref", "").strip() for _, r in chunk}
    known = store.existing_contact_refs(ref for ref in referenced if cell_problem(ref) is None)
    return parse_bookings(chunk, agencies, known.__contains__, first_line)
