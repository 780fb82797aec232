"""The staff's morning (issue 11): restore, stale edits, forecast, explain and the frictions.

Commands that depend on "today" run in process on a fixed clock (as in
test_local_day); the others drive the installed command.
"""

from __future__ import annotations

import os
import shlex
import sys
from datetime import UTC, datetime
from typing import Any

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


# -- forecast -----------------------------------------------------------------------------

#: Bookings imported after the planned day's pass: known today, not yet queued.
LATER_BOOKINGS = [
    # balance 2026-12-25 (listed 11-25..12-25), arrival 12-12 (12-05..12-12),
    # departure 12-19 (12-26..)
    "F-1,annecy,C-1,Chalet Neige,confirmed,,2026-12-25,300.00,EUR,2026-12-12,2026-12-19",
    # an option expiring on 12-06: listed 12-04..12-06
    "F-2,annecy,C-2,Studio Lac,option,2026-12-06,,0.00,EUR,2027-02-01,2027-02-08",
    # cancelled: nothing
    "F-3,annecy,C-2,Studio Port,cancelled,,2026-12-20,100.00,EUR,2026-12-07,2026-12-14",
    # montreal: departure 12-03, +5: listed 12-08..12-22
    "F-4,montreal,C-5,Chalet Ski,confirmed,,,0.00,CAD,2026-11-26,2026-12-03",
    # auckland: arrival 12-06, delay 3: listed 12-03..12-06
    "F-5,auckland,C-6,Bach Raglan,confirmed,,,0.00,NZD,2026-12-06,2026-12-13",
    # B-1's balance is paid since: its pending email is withdrawn at the next pass
    "B-1,annecy,C-1,Chalet Les Aravis,confirmed,,2026-12-20,0.00,EUR,2027-01-19,2027-01-26",
]


def test_forecast_matches_the_plans_of_the_following_days(
    planned: Workspace, planned_ids: Ids
) -> None:
    planned.ok("import", "bookings", str(planned.write_bookings(LATER_BOOKINGS)))
    planned.ok("discard", str(planned_ids[("B-4", "post_departure")]))  # never comes back
    noon = on("2026-12-01")  # 13:00 in annecy, 07:00 in montreal, 01:00 on 12-02 in auckland

    rows = invoke(planned, "forecast", "--days", "8", "--json", clock=noon).json()

    assert {tuple(sorted(r)) for r in rows} >= {("agency", "count", "day", "kind", "tab")}
    by_agency: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_agency.setdefault(row["agency"], []).append(row)
    assert sorted(by_agency) == ["annecy", "auckland", "montreal"]
    assert min(r["day"] for r in by_agency["annecy"]) == "2026-12-02"
    assert min(r["day"] for r in by_agency["auckland"]) == "2026-12-03"  # its own tomorrow
    assert len({r["day"] for r in by_agency["montreal"]}) == 8
    assert sum(r["count"] for r in rows) > 0
    for code, mine in by_agency.items():
        for day in sorted({r["day"] for r in mine}):
            planned.ok("plan", "--agency", code, "--date", day)
            pending = planned.queue("--agency", code)
            for row in (r for r in mine if r["day"] == day):
                actual = sum(1 for i in pending if i["kind"] == row["kind"])
                assert actual == row["count"], (code, day, row["kind"], row["count"], actual)


def test_forecast_text_is_a_table_per_agency_with_the_tab_labels(planned: Workspace) -> None:
    result = invoke(planned, "forecast", "--days", "3", "--agency", "annecy")

    assert result.code == 0, result.describe()
    lines = result.stdout.splitlines()
    assert lines[0] == "annecy — Agence du Lac: emails each tab will hold"
    assert "Rappel solde" in lines[1] and "Après départ" in lines[1]
    assert lines[2].split()[0] == "2026-12-02"
    assert len(lines) == 5


# -- explain ------------------------------------------------------------------------------


def test_explain_json_says_for_each_kind_why_or_why_not(
    planned: Workspace, planned_ids: Ids
) -> None:
    found = {e["kind"]: e for e in invoke(planned, "explain", "B-2", "--json").json()}

    assert sorted(found) == ["arrival", "balance_due", "option_expiry", "post_departure"]
    for e in found.values():
        assert {
            "kind", "anchor_on", "visible_from", "visible_until", "eligible", "reason", "item",
            "status", "consent",
        } <= set(e)  # fmt: skip
    arrival = found["arrival"]
    assert (arrival["anchor_on"], arrival["visible_from"], arrival["visible_until"]) == (
        "2026-12-05",
        "2026-11-28",
        "2026-12-05",
    )
    assert (arrival["eligible"], arrival["reason"]) == (True, None)
    assert (arrival["item"], arrival["status"]) == (planned_ids[("B-2", "arrival")], "pending")
    assert arrival["consent"] == "unconfirmed"
    balance = found["balance_due"]
    assert (balance["eligible"], balance["item"], balance["status"]) == (False, None, None)
    assert "balance is paid" in balance["reason"]
    option = found["option_expiry"]
    assert option["eligible"] is False
    assert "has no option_expires_on date" in option["reason"]
    assert option["visible_from"] is None
    departure = found["post_departure"]  # departure 12-12: listed 12-19..01-02
    assert (departure["eligible"], departure["item"]) == (True, None)
    assert departure["visible_from"] == "2026-12-19"
    assert "the planning pass of 2026-12-19 queues it" in departure["next"]


def test_explain_text_says_what_happens_next(planned: Workspace, planned_ids: Ids) -> None:
    planned.ok("discard", str(planned_ids[("B-1", "balance_due")]))

    result = invoke(planned, "explain", "B-1")

    assert result.code == 0, result.describe()
    text = result.stdout
    assert "booking B-1 (annecy), contact consent: ok" in text
    assert "Rappel solde (balance_due): anchor 2026-12-20, listed 2026-11-20..2026-12-20" in text
    item = planned_ids[("B-1", "balance_due")]
    assert f"next: item {item} was discarded: 'reminders restore {item}' until 2026-12-20" in text


def test_explain_an_unknown_booking_is_one_line_naming_it(planned: Workspace) -> None:
    result = planned.run("explain", "NOPE-9")

    assert_fails(result, 1, "no booking 'NOPE-9'")


# -- frictions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "label",
    [
        pytest.param("Rappel solde", id="french-tab"),
        pytest.param("balance reminders", id="english-tab-any-case"),
        pytest.param("balance_due", id="kind-name"),
    ],
)
def test_kind_accepts_a_tab_label(planned: Workspace, label: str) -> None:
    items = planned.queue("--kind", label)

    assert [(i["booking_ref"], i["kind"]) for i in items] == [("B-1", "balance_due")]


def test_an_unknown_kind_names_the_kinds_and_the_labels(planned: Workspace) -> None:
    result = planned.run("queue", "--kind", "Rappel soldes")

    assert_fails(result, 2, "unknown kind 'Rappel soldes'", "balance_due", "Rappel solde")


LONG_SUBJECT = "Votre solde " + "très " * 25 + "fin"


def test_queue_subjects_use_the_whole_terminal_width(planned: Workspace, planned_ids: Ids) -> None:
    script = planned.write(
        "long.py",
        "import sys, os\nfrom pathlib import Path\np = Path(sys.argv[-1])\n"
        "rest = p.read_text(encoding='utf-8').split('\\n', 1)[1]\n"
        f"p.write_text('Subject: {LONG_SUBJECT}\\n' + rest, encoding='utf-8')\n"
        "later = p.stat().st_mtime + 10\nos.utime(p, (later, later))\n",
    )
    planned.ok(
        "edit",
        str(planned_ids[("B-1", "balance_due")]),
        env={"EDITOR": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"},
    )

    wide = planned.ok("queue", "--kind", "balance_due", env={"COLUMNS": "300"}).stdout
    narrow = planned.ok("queue", "--kind", "balance_due", env={"COLUMNS": "160"}).stdout
    piped = planned.ok("queue", "--kind", "balance_due").stdout

    assert f"(edited) {LONG_SUBJECT}" in wide
    assert all(len(line) <= 160 for line in narrow.splitlines()), narrow
    assert "(edited) Votre solde très" in narrow and "…" in narrow
    assert LONG_SUBJECT in piped  # a pipe gets whole subjects
