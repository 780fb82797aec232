"""The staff's morning (issue 11): restore, stale edits, forecast, explain and the frictions.

Commands that depend on "today" run in process on a fixed clock (as in
test_local_day); the others drive the installed command.
"""

from __future__ import annotations

import os
import shlex
import sys
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from acceptance.workspace import PREFIX, Result, Workspace, assert_fails, by_ref
from reminders.cli import App, cli
from reminders.clock import FixedClock

Ids = dict[tuple[str, str], int]

#: 09:00 in annecy on the planned day (2026-12-01)
MORNING = FixedClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in [v for v in os.environ if v.startswith("REMINDERS_")]:
        monkeypatch.delenv(variable)


def invoke(workspace: Workspace, *args: str, clock: FixedClock = MORNING) -> Result:
    """Run `reminders --config FILE ARGS` in process on `clock`."""
    app = App(clock=clock)
    try:
        outcome = CliRunner().invoke(
            cli, ["--config", str(workspace.config), *args], obj=app, catch_exceptions=False
        )
    finally:
        if "database" in vars(app):
            app.database.engine.dispose()
    result = Result(args, outcome.exit_code, outcome.stdout, outcome.stderr)
    assert "Traceback" not in result.stderr, result.describe()
    assert all(line.startswith(PREFIX) for line in result.stderr.splitlines()), result.describe()
    return result


def on(iso: str) -> FixedClock:
    """Noon UTC of a day: the same calendar day in annecy and montreal."""
    return FixedClock(datetime.fromisoformat(f"{iso}T12:00:00+00:00"))


# -- restore ------------------------------------------------------------------------------


def test_restore_brings_a_discarded_email_back_and_planning_does_not_recreate_it(
    planned: Workspace, planned_ids: Ids
) -> None:
    item_id = planned_ids[("B-1", "balance_due")]
    planned.ok("discard", str(item_id))
    invoke(planned, "plan")  # a later pass must not queue a second email for it
    assert ("B-1", "balance_due") not in by_ref(planned.queue())

    restored = invoke(planned, "restore", str(item_id))

    assert restored.code == 0, restored.describe()
    assert f"item {item_id} restored to pending" in restored.stdout
    item = by_ref(planned.queue())[("B-1", "balance_due")]
    assert (item["id"], item["status"]) == (item_id, "pending")
    assert [i["id"] for i in planned.queue("--status", "all") if i["booking_ref"] == "B-1"] == [
        item_id
    ]


def test_restore_refuses_a_pending_item_in_one_line_naming_it(
    planned: Workspace, planned_ids: Ids
) -> None:
    item_id = planned_ids[("B-1", "balance_due")]

    result = invoke(planned, "restore", str(item_id))

    assert result.code == 1
    assert result.errors == [
        f"item {item_id} is pending, not discarded: only discarded items can be restored "
        f"(see 'reminders show {item_id}')"
    ]


def test_restore_refuses_once_the_window_closed(planned: Workspace, planned_ids: Ids) -> None:
    item_id = planned_ids[("B-3", "option_expiry")]  # listed 2026-11-30..2026-12-02
    planned.ok("discard", str(item_id))

    result = invoke(planned, "restore", str(item_id), clock=on("2026-12-03"))

    assert result.code == 1
    [line] = result.errors
    assert line.startswith(f"item {item_id} cannot be restored: its window ")
    assert "2026-11-30..2026-12-02 closed (today is 2026-12-03 in annecy)" in line
    assert planned.queue("--status", "discarded")[0]["id"] == item_id


# -- two staff editing one email ----------------------------------------------------------

#: An $EDITOR for staff A: while A's file is open, staff B edits and saves the same
#: email (with the editor of test_queue_cli), then A saves a change of their own.
SLOW_EDITOR = """\
import os
import subprocess
import sys
from pathlib import Path

path = Path(sys.argv[-1])
env = dict(os.environ, LOGNAME="bob", USER="bob", EDITOR=os.environ["OTHER_EDITOR"])
command = [os.environ["REMINDERS"], "edit", os.environ["ITEM"]]
subprocess.run(command, env=env, check=True, capture_output=True)
text = path.read_text(encoding="utf-8")
path.write_text(text.replace("Subject: ", "Subject: [A] ", 1), encoding="utf-8")
later = path.stat().st_mtime + 10
os.utime(path, (later, later))
"""


def test_a_stale_save_is_refused_and_names_who_changed_the_email(
    planned: Workspace, planned_ids: Ids
) -> None:
    from acceptance.test_queue_cli import editor
    from acceptance.workspace import REMINDERS

    item_id = planned_ids[("B-1", "balance_due")]
    other = editor(planned)["EDITOR"]
    slow = planned.write("slow_editor.py", SLOW_EDITOR)
    env: dict[str, str | None] = {
        "EDITOR": f"{shlex.quote(sys.executable)} {shlex.quote(str(slow))}",
        "OTHER_EDITOR": other,
        "REMINDERS": str(REMINDERS),
        "ITEM": str(item_id),
        "LOGNAME": "alice",
        "USER": "alice",
    }

    result = planned.run("edit", str(item_id), env=env)

    message = assert_fails(result, 1, f"item {item_id} was changed by bob at ")
    assert "your version was not saved" in message
    # bob's save is kept, alice's did not overwrite it
    item = by_ref(planned.queue())[("B-1", "balance_due")]
    assert item["subject"] == "Votre solde, Marie"
    # the time is annecy's (CET in December), not UTC
    assert " CET, after you opened it" in message
