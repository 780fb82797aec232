"""Bad command lines: exit code 2 and one line on stderr that says what to do."""

from __future__ import annotations

import pytest

from acceptance.workspace import Workspace, assert_fails


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(("plan", "--date", "2026-02-30"), ["'2026-02-30'", "YYYY-MM-DD"], id="date"),
        pytest.param(("plan", "--date", "9999-12-31"),
                     ["'9999-12-31' is out of range", "1900-01-01", "2999-12-31"],
                     id="date-at-the-end-of-the-calendar"),
        pytest.param(("plan", "--date", "0001-01-01"), ["'0001-01-01' is out of range"],
                     id="date-at-the-start-of-the-calendar"),
        pytest.param(("queue", "--status", "sent-ish"), ["'sent-ish'", "pending"], id="status"),
        pytest.param(("show", "first"), ["'first'"], id="item-id"),
    ],
)  # fmt: skip
def test_usage_error_is_one_prefixed_line(
    cli: Workspace, args: tuple[str, ...], fragments: list[str]
) -> None:
    result = cli.run(*args)

    message = assert_fails(result, 2, *fragments)
    assert "--help" in message
