"""Bad command lines: exit code 2 and one line on stderr that says what to do."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest

from acceptance.workspace import Workspace, assert_fails, clean_environment


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


def test_python_dash_m_reminders_is_the_same_command(cli: Workspace) -> None:
    run = functools.partial(
        subprocess.run,
        cwd=cli.folder,
        env=clean_environment(None),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    version = run([sys.executable, "-m", "reminders", "--version"])
    bad = run([sys.executable, "-m", "reminders", "plan", "--date", "2026-02-30"])

    assert (version.returncode, version.stderr) == (0, ""), version
    assert version.stdout == cli.ok("--version").stdout
    assert bad.returncode == 2, bad
    assert bad.stderr == cli.run("plan", "--date", "2026-02-30").stderr
    assert "YYYY-MM-DD" in bad.stderr
