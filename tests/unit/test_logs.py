"""The daemon's event lines: `key=value` text for people, one JSON object a line for tools."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from reminders.clock import FixedClock
from reminders.logs import EventLog
from reminders.queue import Status

AT = datetime(2026, 7, 3, 4, 30, 5, 123456, tzinfo=UTC)
STAMP = "2026-07-03T04:30:05.123+00:00"


def text_lines(**fields: Any) -> list[str]:
    stream = io.StringIO()
    EventLog(FixedClock(AT), stream=stream).info("mail.sent", **fields)
    return stream.getvalue().splitlines()


def json_objects(level: str, event: str, **fields: Any) -> list[dict[str, Any]]:
    stream = io.StringIO()
    log = EventLog(FixedClock(AT), json_lines=True, stream=stream)
    getattr(log, level)(event, **fields)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# -- text mode ---------------------------------------------------------------------------------


def test_a_text_line_starts_with_instant_level_and_event() -> None:
    assert text_lines() == [f"at={STAMP} level=info event=mail.sent"]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        pytest.param("annecy", "annecy", id="word-bare"),
        pytest.param("jean@example.com", "jean@example.com", id="address-bare"),
        pytest.param(42, "42", id="int"),
        pytest.param(0.5, "0.5", id="float"),
        pytest.param(True, "True", id="bool"),
        pytest.param(date(2026, 7, 3), "2026-07-03", id="date-iso"),
        pytest.param(datetime(2026, 7, 3, 6, 30, tzinfo=timezone(timedelta(hours=2))),
                     "2026-07-03T06:30:00+02:00", id="datetime-iso"),
        pytest.param(Status.SENT, "sent", id="enum-value"),
        pytest.param("Agence du Lac", '"Agence du Lac"', id="spaces-quoted"),
        pytest.param('said "no"', '"said \\"no\\""', id="quotes-escaped"),
        pytest.param('x"y', '"x\\"y"', id="quote-without-space-quoted"),
        pytest.param("a=b", '"a=b"', id="equals-sign-quoted"),
        pytest.param("", '""', id="empty-quoted"),
        pytest.param("one\ntwo", '"one\\ntwo"', id="newline-escaped-on-one-line"),
        pytest.param("a\tb", '"a\\tb"', id="tab-escaped"),
        pytest.param("Agence Élan", '"Agence Élan"', id="non-ascii-kept-readable"),
        pytest.param("été", "été", id="non-ascii-word-bare"),
    ],
)  # fmt: skip
def test_text_values(value: Any, written: str) -> None:
    [line] = text_lines(field=value)

    assert line == f"at={STAMP} level=info event=mail.sent field={written}"


def test_text_fields_keep_their_order_and_none_is_dropped() -> None:
    [line] = text_lines(item=7, to="jean@example.com", detail=None, attempt=2)

    assert line == f"at={STAMP} level=info event=mail.sent item=7 to=jean@example.com attempt=2"


@pytest.mark.parametrize(
    ("level", "event", "written"),
    [
        pytest.param("info", "plan.done", "level=info event=plan.done", id="info"),
        pytest.param("warning", "mail.retry", "level=warning event=mail.retry", id="warning"),
        pytest.param("error", "plan failed", 'level=error event="plan failed"',
                     id="error-event-with-a-space-quoted"),
    ],
)  # fmt: skip
def test_each_level(level: str, event: str, written: str) -> None:
    stream = io.StringIO()
    log = EventLog(FixedClock(AT), stream=stream)

    getattr(log, level)(event)

    assert stream.getvalue() == f"at={STAMP} {written}\n"


def test_one_line_per_event() -> None:
    stream = io.StringIO()
    log = EventLog(FixedClock(AT), stream=stream)

    log.info("plan.done", agency="annecy", created=3)
    log.warning("mail.retry", item=7, detail="451 4.3.0\ntry later")
    log.error("mail.failed", item=8)

    assert stream.getvalue().count("\n") == 3
    assert [line.split(" ")[2] for line in stream.getvalue().splitlines()] == [
        "event=plan.done",
        "event=mail.retry",
        "event=mail.failed",
    ]


def test_the_instant_is_the_clocks_in_its_own_offset() -> None:
    paris = datetime(2026, 7, 3, 6, 30, tzinfo=timezone(timedelta(hours=2)))
    stream = io.StringIO()

    EventLog(FixedClock(paris), stream=stream).info("tick")

    assert stream.getvalue() == "at=2026-07-03T06:30:00.000+02:00 level=info event=tick\n"


# -- JSON mode --------------------------------------------------------------------------------


def test_a_json_line_is_one_object_with_instant_level_and_event() -> None:
    assert json_objects("info", "plan.done", agency="annecy", created=3) == [
        {"at": STAMP, "level": "info", "event": "plan.done", "agency": "annecy", "created": 3}
    ]


@pytest.mark.parametrize("level", ["info", "warning", "error"])
def test_json_level(level: str) -> None:
    [record] = json_objects(level, "mail.sent")

    assert record["level"] == level


def test_json_drops_none_fields() -> None:
    [record] = json_objects("info", "mail.sent", item=7, detail=None, next_attempt_at=None)

    assert record == {"at": STAMP, "level": "info", "event": "mail.sent", "item": 7}


def test_json_keeps_types_and_writes_dates_and_enums_as_strings() -> None:
    [record] = json_objects(
        "info",
        "mail.sent",
        item=7,
        ok=True,
        ratio=0.5,
        day=date(2026, 7, 3),
        status=Status.SENT,
        subject='Votre séjour "au lac"\nà Annecy',
        ids=[1, 2],
    )

    assert record["item"] == 7
    assert record["ok"] is True
    assert record["ratio"] == 0.5
    assert record["day"] == "2026-07-03"
    assert record["status"] == "sent"
    assert record["subject"] == 'Votre séjour "au lac"\nà Annecy'
    assert record["ids"] == [1, 2]


def test_json_lines_are_one_per_event_and_readable_utf8() -> None:
    stream = io.StringIO()
    log = EventLog(FixedClock(AT), json_lines=True, stream=stream)

    log.info("plan.done", agency="Agence Élan")
    log.error("mail.failed", detail="line one\nline two")

    written = stream.getvalue().splitlines()
    assert len(written) == 2
    assert "Agence Élan" in written[0]
    assert [json.loads(line)["event"] for line in written] == ["plan.done", "mail.failed"]


# -- library warnings come through the same lines --------------------------------------------


@pytest.fixture
def library_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("reminders-test-library")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        yield logger
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


def test_a_library_warning_becomes_a_library_event(library_logger: logging.Logger) -> None:
    stream = io.StringIO()
    log = EventLog(FixedClock(AT), json_lines=True, stream=stream)
    log.capture_library_logs(library_logger.name)

    library_logger.info("not shown")
    library_logger.warning("job %s missed", "plan-annecy")
    library_logger.error("scheduler stopped")

    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [
        {"at": STAMP, "level": "warning", "event": "library",
         "logger": "reminders-test-library", "message": "job plan-annecy missed"},
        {"at": STAMP, "level": "error", "event": "library",
         "logger": "reminders-test-library", "message": "scheduler stopped"},
    ]  # fmt: skip
