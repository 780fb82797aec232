"""What staff do with the list: `queue`, `show`, `edit`, `discard`."""

from __future__ import annotations

import shlex
import sys

from acceptance.workspace import (
    BOOKINGS,
    EXPECTED_ON_PLAN_DAY,
    PLAN_DAY,
    QUEUE_FIELDS,
    Workspace,
    assert_fails,
    by_ref,
)

Ids = dict[tuple[str, str], int]

#: An $EDITOR that rewrites the subject and the text body, and leaves the HTML part alone.
EDITOR_SCRIPT = """\
import os
import sys
from pathlib import Path

path = Path(sys.argv[-1])
_subject, rest = path.read_text(encoding="utf-8").split("\\n", 1)
_text, marker, html = rest.partition("-----8<-----")
path.write_text(
    "Subject: Votre solde, Marie\\n\\nBonjour Marie,\\n\\nMerci de régler le solde.\\n\\n"
    + marker
    + html,
    encoding="utf-8",
)
# The caller keeps the file only if its modification time moved: make sure it did.
later = path.stat().st_mtime + 10
os.utime(path, (later, later))
"""


def editor(workspace: Workspace) -> dict[str, str | None]:
    script = workspace.write("editor.py", EDITOR_SCRIPT)
    return {"EDITOR": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"}


def test_queue_json_has_the_spec_fields_and_consent(planned: Workspace) -> None:
    items = planned.queue()

    for item in items:
        assert not QUEUE_FIELDS - set(item), sorted(QUEUE_FIELDS - set(item))
        assert item["status"] == "pending"
    listed = [(i["agency"], i["kind"], i["booking_ref"], i["consent"]) for i in items]
    assert sorted(listed) == sorted(EXPECTED_ON_PLAN_DAY)
    balance = by_ref(items)[("B-1", "balance_due")]
    assert balance["contact_ref"] == "C-1"
    assert balance["to"] == "marie.dupont@example.fr"
    assert "20 décembre 2026" in balance["subject"]
    assert (balance["anchor_on"], balance["visible_from"], balance["visible_until"]) == (
        "2026-12-20",
        "2026-11-20",
        "2026-12-20",
    )
    after_departure = by_ref(items)[("B-4", "post_departure")]
    assert after_departure["to"] is None
    assert (after_departure["visible_from"], after_departure["visible_until"]) == (
        "2026-11-27",
        "2026-12-11",
    )


def test_queue_text_is_grouped_by_agency_and_tab_with_consent(planned: Workspace) -> None:
    out = planned.ok("queue").stdout
    lines = out.splitlines()

    def first(fragment: str) -> int:
        return next(n for n, line in enumerate(lines) if fragment in line)

    agencies = [first("annecy"), first("montreal"), first("auckland")]
    assert agencies == sorted(agencies)
    tabs = ["Rappel solde", "Rappel arrivées", "Expiration Options", "Après départ"]
    assert all(agencies[0] < first(tab) < agencies[1] for tab in tabs), out
    assert agencies[1] < first("Arrival reminders") < agencies[2], out
    assert "CONSENT" in out
    consent = {"B-1": "ok", "B-2": "unconfirmed", "B-3": "opted_out", "B-4": "no_address"}
    for ref, reason in consent.items():
        assert reason in lines[first(f" {ref} ")].split(), out


def test_queue_filters_by_kind_and_agency(planned: Workspace) -> None:
    arrivals = planned.queue("--kind", "arrival")
    montreal = planned.queue("--agency", "montreal")

    assert sorted(i["booking_ref"] for i in arrivals) == ["B-2", "B-5", "B-6"]
    assert {i["kind"] for i in arrivals} == {"arrival"}
    assert [(i["agency"], i["booking_ref"]) for i in montreal] == [("montreal", "B-5")]


def test_queue_unknown_kind_is_a_usage_error(planned: Workspace) -> None:
    result = planned.run("queue", "--kind", "arival")

    assert_fails(result, 2, "'arival'", "arrival")


def test_show_prints_headers_and_body(planned: Workspace, planned_ids: Ids) -> None:
    result = planned.ok("show", str(planned_ids[("B-1", "balance_due")]))

    lines = result.stdout.splitlines()
    assert "From: Agence du Lac <reservations@agence-du-lac.example>" in lines
    assert "To: Marie Dupont <marie.dupont@example.fr>" in lines
    subject = next(line for line in lines if line.startswith("Subject: "))
    assert "20 décembre 2026" in subject
    body = result.stdout.split("\n\n", 1)[1]
    assert "Bonjour Marie Dupont" in body
    assert "B-1" in body and "Chalet Les Aravis" in body


def test_show_unknown_item_fails_in_one_line(planned: Workspace) -> None:
    result = planned.run("show", "9999")

    assert_fails(result, 1, "9999")


def test_edit_saves_subject_and_body_and_planning_keeps_them(
    planned: Workspace, planned_ids: Ids
) -> None:
    item = str(planned_ids[("B-1", "balance_due")])
    changed = [row.replace("Chalet Les Aravis", "Chalet Le Semnoz") for row in BOOKINGS]

    edited = planned.run("edit", item, env=editor(planned))
    queued = by_ref(planned.queue())[("B-1", "balance_due")]
    # The booking changes: an unedited email would be rendered again by the next pass.
    planned.ok("import", "bookings", str(planned.write_bookings(changed)))
    planned.ok("plan", "--date", PLAN_DAY)
    shown = planned.ok("show", item).stdout

    assert edited.code == 0, edited.describe()
    assert (queued["subject"], queued["edited"]) == ("Votre solde, Marie", True)
    assert "Subject: Votre solde, Marie" in shown.splitlines()
    assert "Merci de régler le solde." in shown
    assert "Chalet Le Semnoz" not in shown


def test_discard_removes_items_from_the_list_all_or_nothing(
    planned: Workspace, planned_ids: Ids
) -> None:
    first, second = planned_ids[("B-1", "balance_due")], planned_ids[("B-2", "arrival")]
    third = planned_ids[("B-5", "arrival")]

    discarded = planned.ok("discard", str(first), str(second))
    twice = planned.run("discard", str(first))
    with_unknown = planned.run("discard", str(third), "9999")
    edit_discarded = planned.run("edit", str(first), env=editor(planned))
    statuses = {i["id"]: i["status"] for i in planned.queue("--status", "all")}

    assert len(discarded.stdout.splitlines()) == 2
    assert statuses[first] == statuses[second] == "discarded"
    assert_fails(twice, 1, str(first), "discarded")
    assert_fails(with_unknown, 1, "9999")
    assert statuses[third] == "pending"  # nothing was discarded by the failed command
    assert edit_discarded.code != 0
    assert_fails(edit_discarded, edit_discarded.code, str(first), "discarded")
