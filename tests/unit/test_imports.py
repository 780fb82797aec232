"""Validating CSV rows of contacts and bookings: every problem, on its line, says what to write."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from factories import day
from reminders.bookings import Booking, BookingStatus, Contact
from reminders.imports import Parsed, Problem, parse_bookings, parse_contacts

AGENCIES = ("annecy", "chamonix")
KNOWN_CONTACTS = frozenset({"C-1", "C-2"})

CONTACT_ROW = {
    "ref": "C-1",
    "agency": "annecy",
    "name": "Jeanne Martin",
    "email": "jeanne@example.com",
    "locale": "fr_FR",
    "email_confirmed": "true",
    "email_opt_out": "false",
}
BOOKING_ROW = {
    "ref": "B-1001",
    "agency": "annecy",
    "contact_ref": "C-1",
    "property": "Chalet des Aravis",
    "status": "confirmed",
    "option_expires_on": "",
    "balance_due_on": "2026-06-10",
    "balance_outstanding": "1250.00",
    "currency": "EUR",
    "arrival_on": "2026-07-10",
    "departure_on": "2026-07-17",
}


def contacts(*rows: dict[str, str], first_line: int = 2) -> Parsed[Contact]:
    """Parse contact rows numbered from `first_line` (line 1 is the header)."""
    return parse_contacts(list(enumerate(rows, start=first_line)), AGENCIES)


def bookings(*rows: dict[str, str], first_line: int = 2) -> Parsed[Booking]:
    """Parse booking rows numbered from `first_line` (line 1 is the header)."""
    numbered = list(enumerate(rows, start=first_line))
    return parse_bookings(numbered, AGENCIES, KNOWN_CONTACTS.__contains__)


def contact_row(**overrides: str) -> dict[str, str]:
    return {**CONTACT_ROW, **overrides}


def booking_row(**overrides: str) -> dict[str, str]:
    return {**BOOKING_ROW, **overrides}


def only_problem(parsed: Parsed[Contact] | Parsed[Booking]) -> Problem:
    assert parsed.values == []
    assert len(parsed.problems) == 1
    return parsed.problems[0]


# -- bad values: one problem, on its line, quoting the value, saying what to write ----


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        pytest.param({"arrival_on": "2026-13-01"},
                     ["arrival_on '2026-13-01' is not a date", "write YYYY-MM-DD"],
                     id="date-month-13"),
        pytest.param({"arrival_on": "01/12/2026"},
                     ["arrival_on '01/12/2026' is not a date", "write YYYY-MM-DD"],
                     id="date-day-first-with-slashes"),
        pytest.param({"arrival_on": "2026-1-5"},
                     ["arrival_on '2026-1-5' is not a date", "write YYYY-MM-DD"],
                     id="date-without-leading-zeros"),
        pytest.param({"departure_on": "20260717"},
                     ["departure_on '20260717' is not a date", "write YYYY-MM-DD"],
                     id="date-basic-iso-without-dashes"),
        pytest.param({"balance_due_on": "2026-02-29"},
                     ["balance_due_on '2026-02-29' is not a date", "write YYYY-MM-DD"],
                     id="date-feb-29-not-a-leap-year"),
        pytest.param({"option_expires_on": "2026-06-10T12:00"},
                     ["option_expires_on '2026-06-10T12:00' is not a date", "write YYYY-MM-DD"],
                     id="date-with-a-time"),
        pytest.param({"departure_on": "9999-12-31"},
                     ["departure_on '9999-12-31' is out of range",
                      "write a date from 1900-01-01 to 2999-12-31, or leave the cell empty"],
                     id="date-at-the-end-of-the-calendar"),
        pytest.param({"balance_due_on": "0001-01-01"},
                     ["balance_due_on '0001-01-01' is out of range"],
                     id="date-at-the-start-of-the-calendar"),
        pytest.param({"arrival_on": "1899-12-31", "departure_on": ""},
                     ["arrival_on '1899-12-31' is out of range"], id="date-just-before-range"),
        pytest.param({"option_expires_on": "3000-01-01"},
                     ["option_expires_on '3000-01-01' is out of range"],
                     id="date-just-after-range"),
        pytest.param({"agency": "anecy"},
                     ["agency 'anecy' is not allowed", "use annecy, chamonix"],
                     id="unknown-agency"),
        pytest.param({"agency": ""},
                     ["agency '' is not allowed", "use annecy, chamonix"], id="empty-agency"),
        pytest.param({"status": "booked"},
                     ["status 'booked' is not allowed", "use option, confirmed, cancelled"],
                     id="unknown-status"),
        pytest.param({"contact_ref": "C-404"},
                     ["unknown contact 'C-404'", "reminders import contacts"],
                     id="unknown-contact"),
        pytest.param({"contact_ref": ""},
                     ["contact_ref is empty", "give a value"], id="empty-contact-ref"),
        pytest.param({"balance_outstanding": "-5.00"},
                     ["balance_outstanding '-5.00' is negative", "write 0 when paid"],
                     id="negative-amount"),
        pytest.param({"balance_outstanding": "12,50"},
                     ["balance_outstanding '12,50' is not an amount", "write e.g. 1250.00"],
                     id="comma-decimal-separator"),
        pytest.param({"balance_outstanding": "1 250.00"},
                     ["balance_outstanding '1 250.00' is not an amount", "write e.g. 1250.00"],
                     id="thousands-separator"),
        pytest.param({"balance_outstanding": "€1250"},
                     ["balance_outstanding '€1250' is not an amount", "write e.g. 1250.00"],
                     id="currency-sign-in-amount"),
        pytest.param({"balance_outstanding": "NaN"},
                     ["balance_outstanding 'NaN' is not an amount", "write e.g. 1250.00"],
                     id="not-a-number"),
        pytest.param({"balance_outstanding": "Infinity"},
                     ["balance_outstanding 'Infinity' is not an amount", "write e.g. 1250.00"],
                     id="infinity"),
        pytest.param({"balance_outstanding": "12.505"},
                     ["balance_outstanding '12.505'", "more than 2 decimal places for EUR"],
                     id="eur-3-decimal-places"),
        pytest.param({"balance_outstanding": "1250.5", "currency": "JPY"},
                     ["balance_outstanding '1250.5'", "more than 0 decimal places for JPY"],
                     id="jpy-1-decimal-place"),
        pytest.param({"balance_outstanding": "1e20"},
                     ["balance_outstanding '1e20' is too large"], id="amount-too-large"),
        # Beyond the 28 digits of the decimal context: arithmetic on them overflows.
        pytest.param({"balance_outstanding": "1e30"},
                     ["balance_outstanding '1e30' is too large", "at most 13 digits"],
                     id="amount-1e30"),
        pytest.param({"balance_outstanding": "9" * 29},
                     [f"balance_outstanding '{'9' * 29}' is too large"], id="amount-29-digits"),
        pytest.param({"balance_outstanding": "1e999999999"},
                     ["balance_outstanding '1e999999999' is too large"],
                     id="amount-largest-exponent"),
        pytest.param({"balance_outstanding": "10000000000000"},
                     ["balance_outstanding '10000000000000' is too large"],
                     id="amount-14-digits"),
        pytest.param({"balance_outstanding": "1e-30"},
                     ["balance_outstanding '1e-30'", "more than 2 decimal places for EUR"],
                     id="amount-tiny"),
        pytest.param({"balance_outstanding": "-1e30"},
                     ["balance_outstanding '-1e30' is negative"], id="amount-large-negative"),
        pytest.param({"balance_outstanding": "-Infinity"},
                     ["balance_outstanding '-Infinity' is not an amount"],
                     id="negative-infinity"),
        pytest.param({"balance_outstanding": "sNaN"},
                     ["balance_outstanding 'sNaN' is not an amount"], id="signalling-nan"),
        pytest.param({"currency": "EURO"},
                     ["currency 'EURO' is not an ISO 4217 code", "write e.g. EUR"],
                     id="unknown-currency"),
        pytest.param({"currency": "€"},
                     ["currency '€' is not an ISO 4217 code", "write e.g. EUR"],
                     id="currency-sign-instead-of-code"),
        pytest.param({"departure_on": "2026-07-09"},
                     ["departure_on 2026-07-09 is before arrival_on 2026-07-10"],
                     id="departure-before-arrival"),
        pytest.param({"ref": ""}, ["ref is empty", "give a value"], id="empty-ref"),
        pytest.param({"ref": "   "}, ["ref is empty", "give a value"], id="blank-ref"),
        pytest.param({"ref": "B" * 101}, ["ref is longer than 100 characters"],
                     id="ref-too-long"),
    ],
)  # fmt: skip
def test_a_bad_booking_value_is_one_problem_on_its_line(
    overrides: dict[str, str], fragments: list[str]
) -> None:
    problem = only_problem(bookings(booking_row(**overrides), first_line=12))

    assert problem.line == 12
    for fragment in fragments:
        assert fragment in problem.message
    assert ";" not in problem.message  # nothing else was reported


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        pytest.param({"email": "jeanne.example.com"},
                     ["email 'jeanne.example.com' is not a valid address", "@-sign"],
                     id="email-without-at"),
        pytest.param({"email": "jeanne@"},
                     ["email 'jeanne@' is not a valid address"], id="email-without-domain"),
        pytest.param({"email": "Jeanne <jeanne@example.com>"},
                     ["email 'Jeanne <jeanne@example.com>' is not a valid address"],
                     id="email-with-display-name"),
        pytest.param({"locale": "xx_YY"},
                     ["locale 'xx_YY' is unknown", "write a code such as fr or en"],
                     id="unknown-locale"),
        pytest.param({"locale": "french"},
                     ["locale 'french' is unknown", "write a code such as fr or en"],
                     id="language-name-as-locale"),
        pytest.param({"email_confirmed": "yes"},
                     ["email_confirmed 'yes' is not a boolean", "write true or false"],
                     id="boolean-yes"),
        pytest.param({"email_opt_out": "1"},
                     ["email_opt_out '1' is not a boolean", "write true or false"],
                     id="boolean-1"),
        pytest.param({"email_confirmed": "Oui"},
                     ["email_confirmed 'Oui' is not a boolean", "write true or false"],
                     id="boolean-quoted-as-written"),
        pytest.param({"agency": "Annecy"},
                     ["agency 'Annecy' is not allowed", "use annecy, chamonix"],
                     id="agency-code-is-case-sensitive"),
        pytest.param({"name": ""}, ["name is empty", "give a value"], id="empty-name"),
        pytest.param({"ref": ""}, ["ref is empty", "give a value"], id="empty-ref"),
    ],
)  # fmt: skip
def test_a_bad_contact_value_is_one_problem_on_its_line(
    overrides: dict[str, str], fragments: list[str]
) -> None:
    problem = only_problem(contacts(contact_row(**overrides), first_line=7))

    assert problem.line == 7
    for fragment in fragments:
        assert fragment in problem.message
    assert ";" not in problem.message


#: Words that start an instruction in the messages that do give one.
INSTRUCTIONS = (
    "write",
    "use ",
    "give",
    "import",
    "remove",
    "change",
    "merge",
    "keep",
    "check",
    "correct",
)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"arrival_on": "01/12/2026"}, id="bad-date"),
        pytest.param({"agency": "anecy"}, id="unknown-agency"),
        pytest.param({"status": "booked"}, id="unknown-status"),
        pytest.param({"contact_ref": "C-404"}, id="unknown-contact"),
        pytest.param({"balance_outstanding": "-5"}, id="negative-amount"),
        pytest.param({"balance_outstanding": "12,50"}, id="comma-decimal"),
        pytest.param({"currency": "EURO"}, id="unknown-currency"),
        pytest.param({"ref": ""}, id="empty-ref"),
        pytest.param({"balance_outstanding": "12.505"}, id="eur-3-decimal-places"),
        pytest.param({"balance_outstanding": "1250.5", "currency": "JPY"},
                     id="jpy-1-decimal-place"),
        pytest.param({"balance_outstanding": "1e20"}, id="amount-too-large"),
        pytest.param({"departure_on": "2026-07-09"}, id="departure-before-arrival"),
    ],
)  # fmt: skip
def test_every_booking_problem_says_what_to_do(overrides: dict[str, str]) -> None:
    message = only_problem(bookings(booking_row(**overrides))).message
    assert any(word in message for word in INSTRUCTIONS), message


def test_a_duplicate_ref_says_what_to_do() -> None:
    message = bookings(booking_row(), booking_row()).problems[0].message
    assert any(word in message for word in INSTRUCTIONS), message


# -- control characters: refused in every cell, plain or in an encoded word --------------

AGAIN = "remove it from the file and import it again"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"name": "Marie\r\nBcc: x"},
                     f"name 'Marie\\r\\nBcc: x' holds a control character (CR): {AGAIN}",
                     id="name-CRLF"),
        pytest.param({"name": "Marie\nBcc: x"},
                     f"name 'Marie\\nBcc: x' holds a control character (LF): {AGAIN}",
                     id="name-LF"),
        pytest.param({"name": "Marie\0Dupont"},
                     f"name 'Marie\\x00Dupont' holds a control character (NUL): {AGAIN}",
                     id="name-NUL"),
        pytest.param({"name": "Marie\tDupont"},
                     f"name 'Marie\\tDupont' holds a control character (TAB): {AGAIN}",
                     id="name-TAB"),
        pytest.param({"name": "Marie\u2028Dupont"},
                     f"name 'Marie\\u2028Dupont' holds a control character (U+2028): {AGAIN}",
                     id="name-U+2028"),
        pytest.param({"name": "=?utf-8?q?Marie=0D=0ABcc:_evil@evil.example?="},
                     "name '=?utf-8?q?Marie=0D=0ABcc:_evil@evil.example?=' is an encoded word "
                     f"holding a control character (CR): {AGAIN}",
                     id="name-encoded-word-CRLF"),
        pytest.param({"email": "jeanne@example.com\nBcc: evil@evil.example"},
                     "email 'jeanne@example.com\\nBcc: evil@evil.example' holds a control "
                     f"character (LF): {AGAIN}",
                     id="email-LF-no-second-problem"),
        pytest.param({"ref": "C-\x1b[2J1"},
                     f"ref 'C-\\x1b[2J1' holds a control character (ESC): {AGAIN}",
                     id="ref-ESC"),
        pytest.param({"agency": "annecy\x7f"},
                     f"agency 'annecy\\x7f' holds a control character (U+007F): {AGAIN}",
                     id="agency-DEL-no-second-problem"),
        pytest.param({"locale": "f\x85r"},
                     f"locale 'f\\x85r' holds a control character (U+0085): {AGAIN}",
                     id="locale-C1-NEL"),
        pytest.param({"email_confirmed": "tr\0ue"},
                     f"email_confirmed 'tr\\x00ue' holds a control character (NUL): {AGAIN}",
                     id="flag-NUL"),
    ],
)  # fmt: skip
def test_a_contact_cell_with_a_control_character_is_one_problem(
    overrides: dict[str, str], message: str
) -> None:
    problem = only_problem(contacts(contact_row(**overrides), first_line=3))

    assert problem == Problem(line=3, message=message)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        pytest.param({"ref": "B-1\r\n001"}, "ref 'B-1\\r\\n001' holds a control character (CR)",
                     id="ref-CRLF"),
        pytest.param({"agency": "\0annecy"}, "agency '\\x00annecy' holds a control character (NUL)",
                     id="agency-NUL"),
        pytest.param({"contact_ref": "C-1\x1b"},
                     "contact_ref 'C-1\\x1b' holds a control character (ESC)",
                     id="contact-ref-ESC-not-looked-up"),
        pytest.param({"property": "Chalet\u2029des Aravis"},
                     "property 'Chalet\\u2029des Aravis' holds a control character (U+2029)",
                     id="property-U+2029"),
        pytest.param({"property": "=?utf-8?b?Q2hhbGV0DQpYLUZvbzogYmFy?="},
                     "property '=?utf-8?b?Q2hhbGV0DQpYLUZvbzogYmFy?=' is an encoded word "
                     "holding a control character (CR)",
                     id="property-encoded-word-base64-CRLF"),
        pytest.param({"currency": "EUR\x9b"},
                     "currency 'EUR\\x9b' holds a control character (U+009B)", id="currency-C1"),
        pytest.param({"status": "con\tfirmed"},
                     "status 'con\\tfirmed' holds a control character (TAB)", id="status-TAB"),
        pytest.param({"arrival_on": "2026\x00-07-10"},
                     "arrival_on '2026\\x00-07-10' holds a control character (NUL)",
                     id="date-NUL"),
        pytest.param({"balance_outstanding": "12\x0b50"},
                     "balance_outstanding '12\\x0b50' holds a control character (U+000B)",
                     id="amount-vertical-tab"),
    ],
)  # fmt: skip
def test_a_booking_cell_with_a_control_character_is_one_problem(
    overrides: dict[str, str], fragment: str
) -> None:
    problem = only_problem(bookings(booking_row(**overrides), first_line=4))

    assert problem.line == 4
    assert problem.message == f"{fragment}: {AGAIN}"


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        pytest.param({"name": "=?utf-8?q?Ren=C3=A9_Dupont?="}, "name",
                     "=?utf-8?q?Ren=C3=A9_Dupont?=", id="benign-encoded-word-kept-as-written"),
        pytest.param({"name": "=1+2"}, "name", "=1+2", id="formula-prefix"),
        pytest.param({"name": "Chloé 🏔️ Øberg"}, "name", "Chloé 🏔️ Øberg", id="accents-and-emoji"),
        pytest.param({"name": "Marie Dupont\r\n"}, "name", "Marie Dupont",
                     id="trailing-line-break-trimmed-like-spaces"),
    ],
)  # fmt: skip
def test_text_without_a_control_character_is_kept(
    overrides: dict[str, str], field: str, expected: str
) -> None:
    parsed = contacts(contact_row(**overrides))

    assert parsed.problems == []
    [(_, value)] = parsed.values
    assert getattr(value, field) == expected


def test_control_characters_are_reported_before_the_other_problems_of_the_row() -> None:
    row = contact_row(agency="lyon", name="Marie\0", email="nope", locale="fr\r\nX")

    problem = only_problem(contacts(row))

    assert problem.message.split("; ") == [
        f"name 'Marie\\x00' holds a control character (NUL): {AGAIN}",
        f"locale 'fr\\r\\nX' holds a control character (CR): {AGAIN}",
        "agency 'lyon' is not allowed: use annecy, chamonix "
        "(agencies are declared in the TOML file)",
        "email 'nope' is not a valid address: An email address must have an @-sign.",
    ]


def test_a_row_with_a_control_character_leaves_the_other_rows_valid() -> None:
    parsed = contacts(
        contact_row(ref="C-1"),
        contact_row(ref="C-2", name="Marie\r\nBcc: x"),
        contact_row(ref="C-3"),
    )

    assert [(line, value.ref) for line, value in parsed.values] == [(2, "C-1"), (4, "C-3")]
    assert [problem.line for problem in parsed.problems] == [3]


# -- several problems, several rows -----------------------------------------------------


def test_several_problems_of_one_row_are_one_problem_in_column_order() -> None:
    row = booking_row(agency="anecy", status="booked", arrival_on="10/07/2026", currency="EURO")

    problem = only_problem(bookings(row, first_line=5))

    assert problem.line == 5
    assert problem.message.split("; ") == [
        "agency 'anecy' is not allowed: use annecy, chamonix "
        "(agencies are declared in the TOML file)",
        "status 'booked' is not allowed: use option, confirmed, cancelled",
        "arrival_on '10/07/2026' is not a date: write YYYY-MM-DD",
        "currency 'EURO' is not an ISO 4217 code: write e.g. EUR",
    ]


def test_several_problems_of_one_contact_row_are_one_problem() -> None:
    row = contact_row(email="nope", locale="xx_YY", email_opt_out="yes")

    problem = only_problem(contacts(row))

    assert problem.message.count("; ") == 2
    assert "email 'nope'" in problem.message
    assert "locale 'xx_YY'" in problem.message
    assert "email_opt_out 'yes'" in problem.message


def test_valid_rows_are_kept_and_bad_rows_reported_by_line() -> None:
    parsed = bookings(
        booking_row(ref="B-1"),
        booking_row(ref="B-2", status="booked"),
        booking_row(ref="B-3"),
        booking_row(ref="B-4", arrival_on="2026-13-01"),
    )

    assert [(line, value.ref) for line, value in parsed.values] == [(2, "B-1"), (4, "B-3")]
    assert [problem.line for problem in parsed.problems] == [3, 5]


@pytest.mark.parametrize(
    ("parse", "row"),
    [
        pytest.param(contacts, CONTACT_ROW, id="contacts"),
        pytest.param(bookings, BOOKING_ROW, id="bookings"),
    ],
)
def test_a_duplicate_ref_is_reported_on_its_second_occurrence(
    parse: Callable[..., Parsed[Any]], row: dict[str, str]
) -> None:
    other = {**row, "ref": "other"}
    parsed = parse(row, other, row, row)

    assert [line for line, _ in parsed.values] == [2, 3]
    assert parsed.problems == [
        Problem(
            line=4, message=f"ref {row['ref']!r} already appears on line 2: keep one row per ref"
        ),
        Problem(
            line=5, message=f"ref {row['ref']!r} already appears on line 2: keep one row per ref"
        ),
    ]


def test_a_row_of_the_wrong_width_is_a_problem() -> None:
    parsed = parse_contacts([(2, CONTACT_ROW), (3, {"__columns__": "bad"})], AGENCIES)

    assert len(parsed.values) == 1
    assert parsed.problems[0].line == 3
    assert "one cell per header column" in parsed.problems[0].message


# -- valid rows -------------------------------------------------------------------------


def test_a_valid_booking_row_gives_typed_values() -> None:
    parsed = bookings(booking_row(), first_line=9)

    assert parsed.problems == []
    assert parsed.values == [
        (
            9,
            Booking(
                ref="B-1001",
                agency="annecy",
                contact_ref="C-1",
                property="Chalet des Aravis",
                status=BookingStatus.CONFIRMED,
                option_expires_on=None,
                balance_due_on=day("2026-06-10"),
                balance_outstanding=Decimal("1250.00"),
                currency="EUR",
                arrival_on=day("2026-07-10"),
                departure_on=day("2026-07-17"),
            ),
        )
    ]


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        pytest.param({"balance_outstanding": ""}, "balance_outstanding", Decimal(0),
                     id="empty-balance-is-0"),
        pytest.param({"balance_outstanding": "0"}, "balance_outstanding", Decimal(0),
                     id="zero-balance"),
        pytest.param({"balance_outstanding": " 450.5 "}, "balance_outstanding",
                     Decimal("450.50"), id="balance-with-spaces-and-one-decimal"),
        pytest.param({"balance_outstanding": "1250.00", "currency": "JPY"},
                     "balance_outstanding", Decimal(1250), id="jpy-trailing-zeros-are-whole"),
        pytest.param({"balance_outstanding": "9999999999999.99"}, "balance_outstanding",
                     Decimal("9999999999999.99"), id="largest-amount"),
        pytest.param({"balance_outstanding": "1.25E+3"}, "balance_outstanding",
                     Decimal(1250), id="exponent-notation-of-a-spreadsheet"),
        pytest.param({"balance_outstanding": "0E+30"}, "balance_outstanding", Decimal(0),
                     id="zero-with-a-large-exponent"),
        pytest.param({"currency": "eur"}, "currency", "EUR", id="currency-upper-cased"),
        pytest.param({"currency": " cad "}, "currency", "CAD", id="currency-trimmed"),
        pytest.param({"currency": ""}, "currency", "EUR", id="empty-currency-is-eur"),
        pytest.param({"status": "option", "option_expires_on": "2026-05-20"},
                     "option_expires_on", day("2026-05-20"), id="option-date"),
        pytest.param({"arrival_on": "", "departure_on": ""}, "arrival_on", None,
                     id="empty-dates-allowed"),
        pytest.param({"balance_due_on": "1900-01-01"}, "balance_due_on", day("1900-01-01"),
                     id="first-day-of-the-range"),
        pytest.param({"departure_on": "2999-12-31"}, "departure_on", day("2999-12-31"),
                     id="last-day-of-the-range"),
        pytest.param({"departure_on": "2026-07-10"}, "departure_on", day("2026-07-10"),
                     id="departure-on-arrival-day"),
        pytest.param({"status": "cancelled"}, "status", BookingStatus.CANCELLED,
                     id="status-cancelled"),
        pytest.param({"status": "Confirmed"}, "status", BookingStatus.CONFIRMED,
                     id="status-in-any-case"),
        pytest.param({"property": ""}, "property", "", id="property-optional"),
        pytest.param({"ref": "  B-9  "}, "ref", "B-9", id="ref-trimmed"),
        pytest.param({"agency": "chamonix"}, "agency", "chamonix", id="second-agency"),
    ],
)  # fmt: skip
def test_valid_booking_values(overrides: dict[str, str], field: str, expected: object) -> None:
    parsed = bookings(booking_row(**overrides))

    assert parsed.problems == []
    [(_, value)] = parsed.values
    assert getattr(value, field) == expected


def test_a_valid_contact_row_gives_typed_values() -> None:
    parsed = contacts(contact_row(), first_line=3)

    assert parsed.problems == []
    assert parsed.values == [
        (
            3,
            Contact(
                ref="C-1",
                agency="annecy",
                name="Jeanne Martin",
                email="jeanne@example.com",
                locale="fr_FR",
                email_confirmed=True,
                email_opt_out=False,
            ),
        )
    ]


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        pytest.param({"email_confirmed": ""}, "email_confirmed", False,
                     id="empty-confirmed-is-false"),
        pytest.param({"email_opt_out": ""}, "email_opt_out", False,
                     id="empty-opt-out-is-false"),
        pytest.param({"email_opt_out": "TRUE"}, "email_opt_out", True,
                     id="boolean-upper-case"),
        pytest.param({"email_confirmed": " False "}, "email_confirmed", False,
                     id="boolean-mixed-case-with-spaces"),
        pytest.param({"email": ""}, "email", None, id="empty-email-is-none"),
        pytest.param({"locale": ""}, "locale", None, id="empty-locale-is-none"),
        pytest.param({"locale": "en-GB"}, "locale", "en-GB", id="locale-with-hyphen"),
        pytest.param({"locale": "fr"}, "locale", "fr", id="language-only-locale"),
    ],
)  # fmt: skip
def test_valid_contact_values(overrides: dict[str, str], field: str, expected: object) -> None:
    parsed = contacts(contact_row(**overrides))

    assert parsed.problems == []
    [(_, value)] = parsed.values
    assert getattr(value, field) == expected


def test_the_contact_check_is_asked_only_about_given_refs() -> None:
    asked: list[str] = []

    def is_known(ref: str) -> bool:
        asked.append(ref)
        return True

    parse_bookings(
        [(2, booking_row(contact_ref="C-7")), (3, booking_row(ref="B-2", contact_ref=""))],
        AGENCIES,
        is_known,
    )

    assert asked == ["C-7"]
