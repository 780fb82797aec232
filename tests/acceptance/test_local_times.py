"""Staff read and type times in their agency's zone; JSON keeps ISO 8601 with the offset.

An address shared by several agencies is in the zone of the agency that last wrote to
it (the last email sent to it), else in that of its first contact. The commands run in
process on a `FixedClock` (see test_local_day), sending into a maildir.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest

from acceptance.test_local_day import invoke, invoke_json
from acceptance.workspace import Result, Workspace
from reminders.clock import FixedClock

#: 11:00 in Paris, 05:00 in Toronto, 23:00 in Auckland, all on 2026-12-01.
MORNING = FixedClock(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
#: 16:00 in Paris, 10:00 in Toronto.
AFTERNOON = FixedClock(datetime(2026, 12, 1, 15, 0, tzinfo=UTC))
#: 17:00 in Paris, 11:00 in Toronto.
EVENING = FixedClock(datetime(2026, 12, 1, 16, 0, tzinfo=UTC))

MARIE = "marie.dupont@example.fr"
#: A second contact, of the Montreal agency, using Marie's address in other letter cases.
MARIE_IN_MONTREAL = "C-9,montreal,Marie Dupont (Montréal),Marie.Dupont@EXAMPLE.fr,fr,true,false"
MARIE_BOOKING = "B-9,montreal,C-9,Chalet Lac-Beauport,confirmed,,,0,CAD,2026-12-05,2026-12-12"


@pytest.fixture(autouse=True)
def _maildir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send into the workspace's maildir, with a link key; nothing else from the environment."""
    for variable in [v for v in os.environ if v.startswith("REMINDERS_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("REMINDERS_MAIL__TRANSPORT", "maildir")
    monkeypatch.setenv("REMINDERS_WEB__SECRET_KEY", "a-throwaway-key-for-the-local-time-tests")


def ok(workspace: Workspace, *args: str, clock: FixedClock = MORNING) -> Result:
    result = invoke(workspace, *args, clock=clock)
    assert result.code == 0, result.describe()
    return result


def status_line(text: str, action: str) -> str:
    """The history line of `consent status` for `action`."""
    lines = [line for line in text.splitlines() if f" {action} " in line]
    assert len(lines) == 1, text
    return lines[0]


def staff_events(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The history events staff recorded (imports run on the real clock)."""
    return [h for h in found["history"] if h["source"] == "agent"]


def share_marie_with_montreal(workspace: Workspace) -> dict[str, int]:
    """Give Marie's address a Montreal contact and booking; return the item ids by booking."""
    ok(workspace, "import", "contacts", str(workspace.write_contacts([MARIE_IN_MONTREAL])))
    ok(workspace, "import", "bookings", str(workspace.write_bookings([MARIE_BOOKING])))
    ok(workspace, "plan", "--date", "2026-12-01", "--agency", "montreal")
    items = invoke_json(workspace, "queue", "--status", "all", clock=MORNING)
    return {i["booking_ref"]: i["id"] for i in items}


def test_an_opt_out_at_a_bare_local_time_is_shown_in_that_time(planned: Workspace) -> None:
    ok(planned, "consent", "opt-out", MARIE, "--method", "phone", "--at", "09:15")

    text = ok(planned, "consent", "status", MARIE).stdout
    found = invoke_json(planned, "consent", "status", MARIE, clock=MORNING)
    report = ok(planned, "consent", "report").stdout
    rows = invoke_json(planned, "consent", "report", clock=MORNING)

    assert "2026-12-01 09:15 CET" in status_line(text, "opt_out")
    assert "since 2026-12-01 09:15 CET" in text
    assert "+00:00" not in text and "T08:15" not in text
    [opt_out] = staff_events(found)
    assert opt_out["occurred_at"] == "2026-12-01T08:15:00+00:00"
    assert opt_out["recorded_at"] == "2026-12-01T10:00:00+00:00"
    assert found["timezone"] == "Europe/Paris"
    [line] = [r for r in report.splitlines() if MARIE in r]
    assert line.split()[3:6] == ["2026-12-01", "09:15", "CET"]
    assert {r["address"]: r["occurred_at"] for r in rows}[MARIE] == "2026-12-01T08:15:00+00:00"


def test_a_bare_time_is_today_in_the_agencys_zone_not_in_utc(planned: Workspace) -> None:
    # 00:30 on 2026-12-01 in Paris, still 2026-11-30 in UTC.
    just_past_midnight = FixedClock(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))

    ok(planned, "consent", "opt-out", MARIE, "--method", "phone", "--at", "00:15",
       clock=just_past_midnight)  # fmt: skip

    found = invoke_json(planned, "consent", "status", MARIE, clock=MORNING)
    assert [h["occurred_at"] for h in staff_events(found)] == ["2026-11-30T23:15:00+00:00"]


@pytest.mark.parametrize(
    "at",
    ["11:01", "2026-12-01T11:01", "2026-12-02"],
    ids=["bare-time-later-today", "local-time-later-today", "tomorrow"],
)
def test_a_time_still_to_come_is_refused_in_local_time(planned: Workspace, at: str) -> None:
    result = invoke(planned, "consent", "opt-out", MARIE, "--method", "phone", "--at", at,
                    clock=MORNING)  # fmt: skip

    assert result.code == 2, result.describe()
    assert "is in the future (it is 2026-12-01 11:00 CET)" in result.stderr
    assert invoke_json(planned, "consent", "status", MARIE, clock=MORNING)["consent"] == "ok"


def test_a_shared_address_is_in_the_zone_of_the_agency_that_last_wrote_to_it(
    planned: Workspace,
) -> None:
    ids = share_marie_with_montreal(planned)

    # Nothing sent yet: the zone of its first contact, Annecy's.
    ok(planned, "consent", "opt-out", MARIE, "--method", "phone", "--at", "09:15")
    ok(planned, "consent", "opt-in", MARIE, "--method", "phone", "--at", "09:30")
    # Montreal writes to it: its times are now Toronto's, what staff type too.
    ok(planned, "send", str(ids["B-9"]), clock=AFTERNOON)
    ok(planned, "consent", "opt-out", MARIE, "--method", "letter", "--at", "09:45",
       clock=AFTERNOON)  # fmt: skip
    in_montreal = ok(planned, "consent", "status", MARIE, clock=AFTERNOON).stdout
    ok(planned, "consent", "opt-in", MARIE, "--method", "letter", clock=AFTERNOON)
    # Annecy writes to it last: Paris again.
    ok(planned, "send", str(ids["B-1"]), clock=EVENING)
    in_annecy = ok(planned, "consent", "status", MARIE, clock=EVENING).stdout
    found = invoke_json(planned, "consent", "status", MARIE, clock=EVENING)

    assert [h["occurred_at"] for h in staff_events(found)] == [
        "2026-12-01T08:15:00+00:00",  # 09:15 in Paris
        "2026-12-01T08:30:00+00:00",  # 09:30 in Paris
        "2026-12-01T14:45:00+00:00",  # 09:45 in Toronto
        "2026-12-01T15:00:00+00:00",
    ]
    assert "since 2026-12-01 09:45 EST" in in_montreal
    assert "2026-12-01 03:15 EST" in in_montreal  # Paris's 09:15, read in Toronto
    assert "2026-12-01 15:45 CET" in in_annecy  # Toronto's 09:45, read in Paris
    assert found["timezone"] == "Europe/Paris"


def test_sent_times_are_the_agencys_in_show_and_in_the_refusal(planned: Workspace) -> None:
    ids = share_marie_with_montreal(planned)
    ok(planned, "send", str(ids["B-9"]), clock=AFTERNOON)

    again = invoke(planned, "send", str(ids["B-9"]), clock=EVENING)
    shown = ok(planned, "show", str(ids["B-9"]), clock=EVENING).stdout
    as_json = invoke_json(planned, "show", str(ids["B-9"]), clock=EVENING)

    assert again.code == 1, again.describe()
    assert f"item {ids['B-9']} was already sent on 2026-12-01 10:00 EST" in again.stdout
    attempts = shown.split("Delivery attempts:\n")[1].splitlines()
    assert attempts[1].split()[:5] == ["1", "2026-12-01", "10:00", "EST", "sent"]
    assert as_json["deliveries"][0]["started_at"] == "2026-12-01T15:00:00+00:00"
    assert as_json["sent_at"] == "2026-12-01T15:00:00+00:00"


def test_a_second_confirmation_email_is_refused_naming_the_first_in_local_time(
    planned: Workspace,
) -> None:
    sophie = "sophie.lefevre@example.fr"
    ok(planned, "consent", "send-confirmation", sophie)

    again = invoke(planned, "consent", "send-confirmation", sophie, clock=EVENING)

    assert again.code == 1, again.describe()
    assert "already sent the confirmation email to sophie.lefevre@example.fr on " \
           "2026-12-01 11:00 CET" in again.stderr  # fmt: skip


def test_health_shows_each_agencys_last_run_in_its_zone(planned: Workspace) -> None:
    ok(planned, "plan")

    text = invoke(planned, "health", clock=MORNING).stdout
    rows = invoke(planned, "health", "--json", clock=MORNING)

    last_runs = {line.split()[0]: " ".join(line.split()[3:6]) for line in text.splitlines()[1:]}
    assert last_runs == {
        "annecy": "2026-12-01 11:00 CET",
        "montreal": "2026-12-01 05:00 EST",
        "auckland": "2026-12-01 23:00 NZDT",
    }
    assert "2026-12-01T10:00:00+00:00" in rows.stdout
