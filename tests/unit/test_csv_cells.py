"""CSV cells a spreadsheet shows as text and never runs as a formula (OWASP CSV injection)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from reminders.views import csv_cell


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("=1+2@example.fr", "'=1+2@example.fr", id="equals"),
        pytest.param("+33 4 50 00 00 00", "'+33 4 50 00 00 00", id="plus"),
        pytest.param("-2+3", "'-2+3", id="minus"),
        pytest.param("@SUM(A1:A9)", "'@SUM(A1:A9)", id="at"),
        pytest.param("\t=1+1", "'\t=1+1", id="tab"),
        pytest.param("\r=1+1", "'\r=1+1", id="carriage-return"),
        pytest.param('=HYPERLINK("https://evil.example")', "'=HYPERLINK(\"https://evil.example\")",
                     id="hyperlink"),
        pytest.param("jean@example.org", "jean@example.org", id="address-kept"),
        pytest.param("550 5.1.1 user unknown", "550 5.1.1 user unknown", id="diagnostic-kept"),
        pytest.param("a=b", "a=b", id="equals-inside-kept"),
        pytest.param("'quoted", "'quoted", id="quote-kept"),
        pytest.param("", "", id="empty"),
        pytest.param(None, "", id="none"),
        pytest.param(date(2026, 11, 20), "2026-11-20", id="date"),
        pytest.param(datetime(2026, 11, 20, 9, 30, tzinfo=UTC), "2026-11-20T09:30:00+00:00",
                     id="datetime-with-offset"),
    ],
)  # fmt: skip
def test_csv_cell(value: object, expected: str) -> None:
    assert csv_cell(value) == expected
