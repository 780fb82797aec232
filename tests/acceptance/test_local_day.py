"""`plan` and `today` without a date: "today" is the clock's day in each agency's zone.

A subprocess cannot be given a clock, so these run the same command group in
process, with Click's CliRunner, on the same configuration and database file: the
clock is frozen with freezegun (the real `SystemClock`, patched) or replaced by a
`FixedClock`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from acceptance.workspace import PREFIX, Result, Workspace
from reminders.cli import App, cli
from reminders.clock import Clock, FixedClock

#: Arrival reminders whose window starts or ends on the days around 2026-12-01.
BOOKINGS = [
    # annecy, delay 7: listed 2026-12-01..2026-12-08
    "T-A,annecy,C-1,Chalet,confirmed,,2026-10-01,0.00,EUR,2026-12-08,2026-12-15",
    # montreal, delay 10: listed 2026-11-20..2026-11-30
    "T-M,montreal,C-5,Chalet,confirmed,,2026-10-01,0.00,CAD,2026-11-30,2026-12-07",
    # auckland, delay 3: listed 2026-12-01..2026-12-04
    "T-K,auckland,C-6,Bach,confirmed,,2026-10-01,0.00,NZD,2026-12-04,2026-12-11",
]
CONTACTS = [
    "C-1,annecy,Marie Dupont,marie.dupont@example.fr,fr,true,false",
    "C-5,montreal,Olivia Tremblay,olivia.tremblay@example.ca,en,true,false",
    "C-6,auckland,Aroha Ngata,aroha.ngata@example.nz,en,true,false",
]
#: on which local day each agency's booking above is queued by a first pass
QUEUED_ON = {"annecy": "2026-12-01", "montreal": "2026-11-30", "auckland": "2026-12-01"}


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in [v for v in os.environ if v.startswith("REMINDERS_")]:
        monkeypatch.delenv(variable)


def invoke(workspace: Workspace, *args: str, clock: Clock | None = None) -> Result:
    """Run `reminders --config FILE ARGS` in process; the clock is the system's unless given."""
    app = App() if clock is None else App(clock=clock)
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


def invoke_json(workspace: Workspace, *args: str, clock: Clock | None = None) -> Any:
    return invoke(workspace, *args, "--json", clock=clock).json()


def load(workspace: Workspace) -> None:
    for entity, path in [
        ("contacts", workspace.write_contacts(CONTACTS)),
        ("bookings", workspace.write_bookings(BOOKINGS)),
    ]:
        result = invoke(workspace, "import", entity, str(path))
        assert result.code == 0, result.describe()


@pytest.mark.parametrize(
    ("instant", "days"),
    [
        # Auckland (UTC+13) reaches December one minute later.
        ("2026-11-30T10:59:00+00:00", ("2026-11-30", "2026-11-30", "2026-11-30")),
        ("2026-11-30T11:00:00+00:00", ("2026-11-30", "2026-11-30", "2026-12-01")),
        # 00:30 in Paris, 18:30 the day before in Toronto.
        ("2026-11-30T23:30:00+00:00", ("2026-12-01", "2026-11-30", "2026-12-01")),
        # Midnight in Toronto (UTC-5).
        ("2026-12-01T05:00:00+00:00", ("2026-12-01", "2026-12-01", "2026-12-01")),
    ],
    ids=["auckland-eve", "auckland-midnight", "paris-past-midnight", "toronto-midnight"],
)
def test_plan_without_date_uses_each_agencys_local_day(
    cli: Workspace, instant: str, days: tuple[str, str, str]
) -> None:
    load(cli)
    expected_days = dict(zip(["annecy", "montreal", "auckland"], days, strict=True))

    with freeze_time(instant):
        plan = invoke_json(cli, "plan")
        today = invoke_json(cli, "today")

    assert {p["agency"]: p["date"] for p in plan} == expected_days
    assert {p["agency"]: p["created"]["arrival"] for p in plan} == {
        agency: int(day == QUEUED_ON[agency]) for agency, day in expected_days.items()
    }
    assert {t["agency"]: t["date"] for t in today} == expected_days
    assert {t["agency"]: t["pending"] for t in today if t["kind"] == "arrival"} == {
        agency: int(day == QUEUED_ON[agency]) for agency, day in expected_days.items()
    }


def test_plan_at_the_same_instant_on_a_fixed_clock(cli: Workspace) -> None:
    load(cli)
    clock = FixedClock(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))

    plan = invoke_json(cli, "plan", clock=clock)
    queued = invoke_json(cli, "queue")

    assert {p["agency"]: p["date"] for p in plan} == {
        "annecy": "2026-12-01",
        "montreal": "2026-11-30",
        "auckland": "2026-12-01",
    }
    assert sorted(i["booking_ref"] for i in queued) == ["T-A", "T-K", "T-M"]


MORNING = FixedClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))  # 2026-12-01 in all three zones


def test_today_counts_per_agency_and_tab(planned: Workspace) -> None:
    summary = invoke_json(planned, "today", clock=MORNING)

    counts = {(s["agency"], s["kind"]): (s["tab"], s["pending"], s["ready"]) for s in summary}
    assert counts == {
        ("annecy", "balance_due"): ("Rappel solde", 1, 1),
        ("annecy", "arrival"): ("Rappel arrivées", 1, 0),  # unconfirmed address
        ("annecy", "option_expiry"): ("Expiration Options", 1, 0),  # opted out
        ("annecy", "post_departure"): ("Après départ", 1, 0),  # no address
        ("montreal", "arrival"): ("Arrival reminders", 1, 1),
        ("montreal", "post_departure"): ("After departure", 0, 0),
        ("auckland", "arrival"): ("Arrival reminders", 1, 1),
    }
    assert {s["date"] for s in summary} == {"2026-12-01"}


def test_today_text_shows_each_agency_with_its_day_and_tabs(planned: Workspace) -> None:
    result = invoke(planned, "today", clock=MORNING)

    assert result.code == 0, result.describe()
    lines = result.stdout.splitlines()
    heads = [line for line in lines if not line.startswith(" ")]
    assert [line.split()[0] for line in heads] == ["annecy", "montreal", "auckland"]
    assert all("2026-12-01" in line for line in heads), result.stdout
    assert " 4 " in heads[0], result.stdout
    solde = next(line for line in lines if "Rappel solde" in line)
    assert solde.split()[-3:] == ["1", "1", "0"], result.stdout
