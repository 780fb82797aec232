"""`reminders plan [--date D] [--agency CODE] [--dry-run]`: one planning pass."""

from __future__ import annotations

import json
from typing import Any

from acceptance.workspace import PLAN_DAY, Workspace, assert_fails, by_ref

#: created counts a first pass on PLAN_DAY reports, per agency and kind
CREATED_ON_PLAN_DAY = {
    "annecy": {"balance_due": 1, "arrival": 1, "option_expiry": 1, "post_departure": 1},
    "montreal": {"arrival": 1, "post_departure": 0},
    "auckland": {"arrival": 1},
}


def created(plan: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {p["agency"]: p["created"] for p in plan}


def test_plan_json_reports_what_each_agency_queued(loaded: Workspace) -> None:
    plan = loaded.json("plan", "--date", PLAN_DAY)

    assert [p["agency"] for p in plan] == ["annecy", "montreal", "auckland"]
    assert {p["date"] for p in plan} == {PLAN_DAY}
    assert created(plan) == CREATED_ON_PLAN_DAY
    assert all(p["missed"] == [] for p in plan)


def test_dry_run_reports_the_same_and_changes_nothing(loaded: Workspace) -> None:
    dry = loaded.json("plan", "--date", PLAN_DAY, "--dry-run")
    after_dry = loaded.queue("--status", "all")
    real = loaded.json("plan", "--date", PLAN_DAY)

    assert created(dry) == CREATED_ON_PLAN_DAY
    assert after_dry == []
    # The dry run recorded no pass either: the real one is still the first.
    assert created(real) == CREATED_ON_PLAN_DAY
    assert all(p["first_pass"] for p in real)


def test_planning_again_creates_nothing_twice(planned: Workspace) -> None:
    again = planned.json("plan", "--date", PLAN_DAY)
    items = planned.queue("--status", "all")

    assert all(sum(p["created"].values()) == 0 for p in again), again
    assert len(items) == 6
    by_ref(items)  # one item per booking and kind


def test_a_same_day_pass_skips_an_agency_until_its_data_or_kinds_change(
    planned: Workspace,
) -> None:
    again = planned.json("plan", "--date", PLAN_DAY)
    # A new montreal booking (arrival 2026-12-06, delay 10: listed today).
    planned.ok(
        "import",
        "bookings",
        str(
            planned.write_bookings(
                ["B-70,montreal,C-5,Chalet Lac-Beauport,confirmed,,,0,CAD,2026-12-06,2026-12-13"],
                name="new.csv",
            )
        ),
    )
    after_import = planned.json("plan", "--date", PLAN_DAY)
    # Annecy's arrival delay goes from 7 to 10 days: B-1 (arrival 2027-01-19) is not in,
    # but the pass must run again to know it.
    config = planned.folder / "reminders.toml"
    config.write_text(config.read_text().replace("arrival = 7", "arrival = 10", 1))
    after_config = planned.json("plan", "--date", PLAN_DAY)
    text = planned.ok("plan", "--date", PLAN_DAY).stdout

    assert [p["unchanged"] for p in again] == [True, True, True]
    assert {p["agency"]: p["unchanged"] for p in after_import} == {
        "annecy": True,
        "montreal": False,
        "auckland": True,
    }
    assert created(after_import)["montreal"] == {"arrival": 1, "post_departure": 0}
    assert {p["agency"]: p["unchanged"] for p in after_config} == {
        "annecy": False,
        "montreal": True,
        "auckland": True,
    }
    assert "annecy 2026-12-01: unchanged since today's pass" in text
    # Another day is planned in full, whatever changed.
    tomorrow = planned.json("plan", "--date", "2026-12-02")
    assert not any(p["unchanged"] for p in tomorrow)


def test_agency_option_plans_only_that_agency(loaded: Workspace) -> None:
    plan = loaded.json("plan", "--date", PLAN_DAY, "--agency", "montreal")
    items = loaded.queue("--status", "all")

    assert [p["agency"] for p in plan] == ["montreal"]
    assert [(i["agency"], i["booking_ref"]) for i in items] == [("montreal", "B-5")]


def test_unknown_agency_is_a_usage_error_naming_the_known_ones(planned: Workspace) -> None:
    result = planned.run("plan", "--agency", "anecy")

    assert_fails(result, 2, "'anecy'", "annecy", "montreal", "auckland")


def test_windows_that_went_by_unplanned_are_reported_missed(planned: Workspace) -> None:
    # Nothing ran from 2026-12-02 to 2026-12-10: B-7's arrival window (12-02..12-09) is lost.
    plan = planned.json("plan", "--date", "2026-12-11")
    missed = planned.queue("--status", "missed")

    reported = {p["agency"]: p["missed"] for p in plan}
    assert reported["montreal"] == reported["auckland"] == []
    assert [(m["kind"], m["booking_ref"]) for m in reported["annecy"]] == [("arrival", "B-7")]
    [item] = missed
    assert (item["agency"], item["kind"], item["booking_ref"]) == ("annecy", "arrival", "B-7")
    assert (item["anchor_on"], item["visible_from"], item["visible_until"]) == (
        "2026-12-09",
        "2026-12-02",
        "2026-12-09",
    )
    assert reported["annecy"][0]["id"] == item["id"]
    assert "B-7" not in {i["booking_ref"] for i in planned.queue()}


def test_plan_text_names_each_agency_day_and_the_missed_items(planned: Workspace) -> None:
    result = planned.ok("plan", "--date", "2026-12-11")

    lines = result.stdout.splitlines()
    heads = {line.split()[0]: line for line in lines if not line.startswith(" ")}
    assert set(heads) == {"annecy", "montreal", "auckland"}
    assert all("2026-12-11" in head for head in heads.values()), result.stdout
    assert "1 missed" in heads["annecy"]
    assert "0 missed" in heads["montreal"]
    missed_lines = [line for line in lines if line.startswith(" ") and "missed" in line]
    assert any("B-7" in line and "2026-12-02..2026-12-09" in line for line in missed_lines), (
        result.stdout
    )


def test_first_pass_misses_nothing(loaded: Workspace) -> None:
    plan = loaded.json("plan", "--date", "2026-12-11")

    assert all(p["missed"] == [] for p in plan)


def test_expired_items_leave_the_list_but_stay_in_history(planned: Workspace) -> None:
    planned.ok("plan", "--date", "2026-12-06")
    items = by_ref(planned.queue("--status", "all"))

    # B-2's arrival (listed until 12-05) and B-3's option (until 12-02) have expired.
    assert items[("B-2", "arrival")]["status"] == "expired"
    assert items[("B-3", "option_expiry")]["status"] == "expired"
    assert items[("B-1", "balance_due")]["status"] == "pending"
    assert items[("B-7", "arrival")]["status"] == "pending"


def test_planning_at_the_ends_of_the_accepted_range_works(loaded: Workspace) -> None:
    # Bookings on the first and last days a file may hold, with the longest delays.
    config = loaded.config.read_text(encoding="utf-8")
    loaded.write(
        "reminders.toml", config.replace("arrival = 3", "arrival = 3650\npost_departure = 3650")
    )
    edges = [
        "B-30,auckland,C-6,Bach,confirmed,,,0,NZD,1900-01-01,1900-01-01",
        "B-31,auckland,C-6,Bach,confirmed,,,0,NZD,2999-12-31,2999-12-31",
    ]
    loaded.ok("import", "bookings", str(loaded.write_bookings(edges, "edges.csv")))

    first = loaded.json("plan", "--date", "1900-01-01", "--agency", "auckland")
    last = loaded.json("plan", "--date", "2999-12-31", "--agency", "auckland")

    # Each arrival is listed ten years ahead, up to its day; no departure window is open.
    assert first[0]["created"] == {"arrival": 1, "post_departure": 0}
    assert last[0]["created"] == {"arrival": 1, "post_departure": 0}
    # Between the two passes B-6's windows and B-30's departure window went by: missed.
    assert sorted((m["booking_ref"], m["kind"]) for m in last[0]["missed"]) == [
        ("B-30", "post_departure"),
        ("B-6", "arrival"),
        ("B-6", "post_departure"),
    ]
    queued = {(i["booking_ref"], i["anchor_on"]) for i in loaded.queue("--agency", "auckland")}
    assert queued == {("B-31", "2999-12-31")}  # B-30's item expired on the second pass


def test_an_email_whose_template_renders_too_much_is_skipped_and_the_rest_planned(
    loaded: Workspace,
) -> None:
    loaded.override_template(
        "annecy",
        "arrival/body.fr.txt",
        "Bonjour,\n{% if booking.ref == 'B-2' %}{{ 'x' * 20000000 }}{% endif %}\n",
    )

    result = loaded.run("plan", "--date", PLAN_DAY, "--json")

    assert result.code == 1, result.describe()
    plans = {p["agency"]: p for p in json.loads(result.stdout)}
    assert plans["annecy"]["skipped"] == 1
    assert created(list(plans.values())) == {
        **CREATED_ON_PLAN_DAY,
        "annecy": {**CREATED_ON_PLAN_DAY["annecy"], "arrival": 0},
    }
    assert result.errors == [
        f"template {loaded.folder / 'agency-templates/annecy/arrival/body.fr.txt'} line 2 "
        "repeats a value to more than 1000000 characters, the cap of one part: make it print "
        "or loop less, then run 'reminders config check'",
        "annecy: 1 email(s) skipped because of the template error(s) above; the others were "
        "planned: fix the templates, then run plan again",
    ]
    assert ("B-2", "arrival") not in by_ref(loaded.queue())
