"""What the API reads from a request (`web.api_input`): values, or a problem naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from reminders.web import api_input
from reminders.web.problems import Problem

PARIS_WINTER = timezone(timedelta(hours=1))


AT_1330 = datetime(2026, 11, 20, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("written", "instant"),
    [
        pytest.param("2026-11-20T14:30:00+01:00", AT_1330, id="offset"),
        pytest.param("2026-11-20T13:30:00Z", AT_1330, id="z"),
        pytest.param("2026-11-20T14:30+01:00", AT_1330, id="no-seconds"),
        pytest.param(
            "2026-11-20T13:30:00.250+00:00", AT_1330 + timedelta(milliseconds=250), id="fraction"
        ),
    ],
)
def test_an_instant_with_its_offset_is_read(written: str, instant: datetime) -> None:
    assert api_input.instant(written, "body.at") == instant


@pytest.mark.parametrize(
    ("written", "words"),
    [
        pytest.param("2026-11-20T14:30", "add it, e.g. 2026-11-20T14:30+01:00", id="no-offset"),
        pytest.param("2026-11-20", "no UTC offset", id="a-date"),
        pytest.param("20/11/2026", "not an ISO 8601", id="french-date"),
        pytest.param("", "not an ISO 8601", id="empty"),
        pytest.param(1700000000, "must be a string", id="epoch-number"),
        pytest.param("0001-01-01T00:30+01:00", "out of range", id="calendar-start"),
        pytest.param("9999-12-31T23:59Z", "out of range", id="calendar-end"),
    ],
)
def test_an_instant_without_offset_or_invalid_is_refused(written: object, words: str) -> None:
    with pytest.raises(Problem) as refused:
        api_input.instant(written, "body.at")

    assert refused.value.status == 422
    assert words in refused.value.detail
    assert refused.value.extensions == {"field": "body.at"}


@pytest.mark.parametrize(
    ("since", "until", "bounds"),
    [
        pytest.param(None, None, (None, None), id="none"),
        pytest.param(
            "2026-11-01",
            "2026-11-30",
            (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
            id="dates-whole-days-utc",
        ),
        pytest.param(
            "2026-11-01T10:00+01:00",
            None,
            (datetime(2026, 11, 1, 10, tzinfo=PARIS_WINTER), None),
            id="instant",
        ),
    ],
)
def test_report_bounds(
    since: str | None, until: str | None, bounds: tuple[datetime | None, datetime | None]
) -> None:
    assert api_input.since_until(since, until) == bounds


@pytest.mark.parametrize(
    ("since", "until"),
    [("2026-11-30", "2026-11-01"), ("2026-11-01", "2026-13-01"), ("2026-11-01T10:00", None)],
)
def test_report_bounds_refused(since: str, until: str | None) -> None:
    with pytest.raises(Problem):
        api_input.since_until(since, until)


@pytest.mark.parametrize(("written", "limit"), [(None, 100), ("1", 1), ("1000", 1000), ("42", 42)])
def test_limit(written: str | None, limit: int) -> None:
    assert api_input.limit(written) == limit


@pytest.mark.parametrize("written", ["0", "1001", "-1", "1e3", " 5", "５", ""])
def test_limit_refused(written: str) -> None:
    with pytest.raises(Problem):
        api_input.limit(written)


@pytest.mark.parametrize("key", ["guest@example.com", "straße@example.de", "=1+2@example.com", "a"])
def test_a_cursor_carries_its_key_and_nothing_readable(key: str) -> None:
    cursor = api_input.cursor(key)

    assert api_input.after(cursor) == key
    assert "@" not in cursor and "=" not in cursor


@pytest.mark.parametrize("cursor", ["", "!!!", "Z3Vlc3Q=", "/w", "gA"])
def test_a_cursor_the_api_did_not_give_is_refused(cursor: str) -> None:
    with pytest.raises(Problem):
        api_input.after(cursor)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", None),
        (b"  ", None),
        (b"{}", None),
        (b'{"method": "phone"}', None),
        (b"{", 400),
        (b"\xff\xfe{", 400),
        (b"[" * 100_000, 400),
        (b"[]", 422),
        (b'"phone"', 422),
        (b"null", 422),
    ],
)
def test_json_object(body: bytes, status: int | None) -> None:
    if status is None:
        assert isinstance(api_input.json_object(body), dict)
        return
    with pytest.raises(Problem) as refused:
        api_input.json_object(body)
    assert refused.value.status == status


def test_fields_refuse_unknown_and_missing_ones_naming_them() -> None:
    with pytest.raises(Problem) as unknown:
        api_input.fields({"method": "x", "Method": "y"}, required=("method",))
    with pytest.raises(Problem) as missing:
        api_input.fields({"at": "x"}, required=("method",), optional=("at",))

    assert "unknown field 'Method'" in unknown.value.detail
    assert missing.value.extensions == {"field": "body.method"}


def test_query_refuses_unknown_and_repeated_parameters() -> None:
    assert api_input.query([("limit", "5")], ("limit",)) == {"limit": "5"}
    with pytest.raises(Problem):
        api_input.query([("limit", "5"), ("limit", "6")], ("limit",))
    with pytest.raises(Problem):
        api_input.query([("order", "x")], ("limit",))


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("phone", "phone"),
        ("  paper form ", "paper form"),
        ("=?utf-8?q?Bcc=3A_x?=", "=?utf-8?q?Bcc=3A_x?="),
        ("=SUM(A1)", "=SUM(A1)"),
        ("téléphone", "téléphone"),
    ],
)
def test_a_method_is_kept_as_written(written: str, kept: str) -> None:
    assert api_input.method(written) == kept


@pytest.mark.parametrize(
    "written", ["", "   ", "a\rb", "a\nb", "a\x00b", "a\tb", "a\u200bb", "a\u2029", "x" * 41]
)
def test_a_method_with_control_characters_or_too_long_is_refused(written: str) -> None:
    with pytest.raises(Problem):
        api_input.method(written)
