"""`reminders import contacts|bookings FILE.csv`: upsert by ref, all or nothing."""

from __future__ import annotations

import pytest

from acceptance.workspace import (
    BOOKINGS,
    BOOKINGS_HEADER,
    CONTACTS,
    CONTACTS_HEADER,
    EXPECTED_ON_PLAN_DAY,
    PLAN_DAY,
    Snapshot,
    Workspace,
    assert_fails,
    by_ref,
    csv_text,
    import_counts,
    reported_lines,
)


def test_import_reports_what_it_created(snapshots: dict[str, Snapshot]) -> None:
    # The `loaded` database was made by importing CONTACTS, then BOOKINGS, into an empty one.
    contacts, bookings = snapshots["loaded"].runs

    assert (contacts.args[:2], bookings.args[:2]) == (
        ("import", "contacts"),
        ("import", "bookings"),
    )
    assert import_counts(contacts) == {"created": 6, "updated": 0, "unchanged": 0}
    assert import_counts(bookings) == {"created": 7, "updated": 0, "unchanged": 0}


def test_reimport_updates_by_ref_and_creates_no_duplicate(loaded: Workspace) -> None:
    contacts = [row.replace("marie.dupont@example.fr", "marie@dupont.example") for row in CONTACTS]
    bookings = [row.replace("Bach Piha", "Bach Karekare") for row in BOOKINGS]
    # B-8's dates are far away: a new booking, but no item on PLAN_DAY.
    extra = "B-8,annecy,C-1,Gîte,confirmed,,2027-05-01,90.00,EUR,2027-06-01,2027-06-08"

    contacts_run = loaded.ok("import", "contacts", str(loaded.write_contacts(contacts)))
    bookings_run = loaded.ok("import", "bookings", str(loaded.write_bookings([*bookings, extra])))
    plan = loaded.json("plan", "--date", PLAN_DAY)
    items = loaded.queue()

    assert import_counts(contacts_run) == {"created": 0, "updated": 1, "unchanged": 5}
    assert import_counts(bookings_run) == {"created": 1, "updated": 1, "unchanged": 6}
    assert {p["agency"]: sum(p["created"].values()) for p in plan} == {
        "annecy": 4,
        "montreal": 1,
        "auckland": 1,
    }
    assert sorted((i["booking_ref"], i["kind"]) for i in items) == sorted(
        (ref, kind) for _, kind, ref, _ in EXPECTED_ON_PLAN_DAY
    )
    assert by_ref(items)[("B-1", "balance_due")]["to"] == "marie@dupont.example"


def test_next_plan_renders_again_the_pending_emails_of_changed_bookings(
    planned: Workspace, planned_ids: dict[tuple[str, str], int]
) -> None:
    contacts = [row.replace("Olivia Tremblay", "Olivia Tremblay-Roy") for row in CONTACTS]
    bookings = [row.replace("Chalet Mont-Tremblant", "Chalet Lac-Supérieur") for row in BOOKINGS]
    item = planned_ids[("B-5", "arrival")]

    planned.ok("import", "contacts", str(planned.write_contacts(contacts)))
    planned.ok("import", "bookings", str(planned.write_bookings(bookings)))
    planned.ok("plan", "--date", PLAN_DAY)
    after = planned.ok("show", str(item)).stdout

    assert "Chalet Lac-Supérieur" in after
    assert "Chalet Mont-Tremblant" not in after
    assert "To: Olivia Tremblay-Roy <olivia.tremblay@example.ca>" in after


def replace_all(row: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        row = row.replace(old, new)
    return row


def test_next_plan_withdraws_items_of_moved_cancelled_or_paid_bookings(
    planned: Workspace,
) -> None:
    changes = {
        "2026-12-05,2026-12-12": "2026-12-06,2026-12-13",  # B-2 arrives a day later
        "2026-12-20,1250.00": "2026-12-20,0.00",  # B-1's balance is paid
        "Chalet Le Semnoz,confirmed": "Chalet Le Semnoz,cancelled",  # B-4 is cancelled
    }
    changed = [replace_all(row, changes) for row in BOOKINGS]

    imported = planned.ok("import", "bookings", str(planned.write_bookings(changed)))
    plan = planned.json("plan", "--date", "2026-12-02", "--agency", "annecy")
    items = planned.queue("--status", "all")

    assert import_counts(imported) == {"created": 0, "updated": 3, "unchanged": 4}
    states = sorted(
        (i["booking_ref"], i["kind"], i["anchor_on"], i["status"])
        for i in items
        if i["booking_ref"] in ("B-1", "B-2", "B-4")
    )
    assert states == [
        ("B-1", "balance_due", "2026-12-20", "withdrawn"),
        ("B-2", "arrival", "2026-12-05", "withdrawn"),
        ("B-2", "arrival", "2026-12-06", "pending"),
        ("B-4", "post_departure", "2026-11-20", "withdrawn"),
    ]
    assert plan[0]["withdrawn"] == {
        "arrival": {"date_moved": 1},
        "balance_due": {"balance_paid": 1},
        "post_departure": {"cancelled": 1},
    }
    # The new B-2 arrival, and B-7 whose window opens on 2026-12-02.
    assert plan[0]["created"]["arrival"] == 2


BAD_BOOKINGS = [
    "B-10,annecy,C-1,Chalet,confirmed,,2026-12-20,100.00,EUR,2026-13-40,2027-01-16",
    "B-11,anecy,C-1,Chalet,confirmed,,2026-12-20,100.00,EUR,2027-01-09,2027-01-16",
    "B-12,annecy,C-1,Chalet,booked,,2026-12-20,100.00,EUR,2027-01-09,2027-01-16",
    "B-13,annecy,C-404,Chalet,confirmed,,2026-12-20,100.00,EUR,2027-01-09,2027-01-16",
    "B-14,annecy,C-1,Chalet,confirmed,,2026-12-20,-5.00,EUR,2027-01-09,2027-01-16",
    "B-15,annecy,C-1,Chalet,confirmed,,2026-12-20,100.00,EUR,2027-01-09,2027-01-16",
    "B-15,annecy,C-2,Studio,confirmed,,2026-12-20,100.00,EUR,2027-01-09,2027-01-16",
    "B-17,annecy,C-1,Chalet",
    "B-18,montreal,C-5,Chalet,confirmed,,2026-12-20,100.00,CAD,2027-01-09,2027-01-16",
]
#: file line number (the header is line 1) -> what its message must quote
BAD_LINES = {
    2: "'2026-13-40'",
    3: "'anecy'",
    4: "'booked'",
    5: "'C-404'",
    6: "'-5.00'",
    8: "'B-15'",
    9: "cell",
}


def test_invalid_rows_are_all_reported_and_nothing_is_imported(loaded: Workspace) -> None:
    fixed = [
        "B-10,annecy,C-1,Chalet,confirmed,,2026-12-20,100.00,EUR,2026-12-30,2027-01-16",
        "B-11,annecy,C-1,Chalet,confirmed,,2026-12-20,100.00,EUR,2027-01-09,2027-01-16",
        "B-12,annecy,C-1,Chalet,option,2026-12-20,,100.00,EUR,2027-01-09,2027-01-16",
        "B-13,annecy,C-2,Chalet,confirmed,,2026-12-20,100.00,EUR,2027-01-09,2027-01-16",
        "B-14,annecy,C-1,Chalet,confirmed,,2026-12-20,5.00,EUR,2027-01-09,2027-01-16",
        "B-15,annecy,C-1,Chalet,confirmed,,2026-12-20,100.00,EUR,2027-01-09,2027-01-16",
        "B-16,annecy,C-2,Studio,confirmed,,2026-12-20,100.00,EUR,2027-01-09,2027-01-16",
        "B-17,annecy,C-1,Chalet,confirmed,,,0,EUR,,",
        "B-18,montreal,C-5,Chalet,confirmed,,2026-12-20,100.00,CAD,2027-01-09,2027-01-16",
    ]

    failed = loaded.run("import", "bookings", str(loaded.write_bookings(BAD_BOOKINGS, "bad.csv")))
    again = loaded.ok("import", "bookings", str(loaded.write_bookings(fixed, "fixed.csv")))

    assert failed.code == 1, failed.describe()
    assert failed.stdout == ""
    reported = reported_lines(failed, "bad.csv")
    assert set(reported) == set(BAD_LINES), failed.describe()
    for line, fragment in BAD_LINES.items():
        assert fragment in reported[line], failed.describe()
    assert "line 7" in reported[8]  # the duplicate names the first occurrence
    assert "nothing imported" in failed.stderr
    # Every row of the corrected file is new: the failed import wrote nothing.
    assert import_counts(again) == {"created": 9, "updated": 0, "unchanged": 0}


#: file line number -> an absurd amount: each is an invalid row, never a traceback
ABSURD_AMOUNTS = {
    2: "1e30",
    3: "NaN",
    4: "Infinity",
    5: "-5",
    6: "9" * 29,  # more digits than the decimal context holds
    7: "12345678901234",  # more than the 13 digits the column holds
}


def test_absurd_amounts_are_invalid_rows_and_nothing_is_imported(loaded: Workspace) -> None:
    rows = [
        f"B-2{line},annecy,C-1,Chalet,confirmed,,2026-12-20,{amount},EUR,2027-01-09,2027-01-16"
        for line, amount in ABSURD_AMOUNTS.items()
    ]
    fixed = [row.replace(f",{amount},", ",100.00,") for row, amount in
             zip(rows, ABSURD_AMOUNTS.values(), strict=True)]  # fmt: skip

    failed = loaded.run("import", "bookings", str(loaded.write_bookings(rows, "amounts.csv")))
    again = loaded.ok("import", "bookings", str(loaded.write_bookings(fixed, "fixed.csv")))

    assert failed.code == 1, failed.describe()
    assert failed.stdout == "", failed.describe()
    reported = reported_lines(failed, "amounts.csv")
    assert set(reported) == set(ABSURD_AMOUNTS), failed.describe()
    for line, amount in ABSURD_AMOUNTS.items():
        assert f"balance_outstanding '{amount}' is" in reported[line], failed.describe()
    assert failed.errors[-1].startswith("nothing imported: 6 of 6 rows are invalid")
    assert import_counts(again) == {"created": 6, "updated": 0, "unchanged": 0}


def test_invalid_contacts_are_all_reported(cli: Workspace) -> None:
    rows = [
        "C-10,annecy,Valid Person,valid@example.com,fr,true,false",
        "C-11,annecy,Bad Email,not-an-email,fr,true,false",
        "C-12,annecy,Bad Flag,flag@example.com,fr,yes,false",
        "C-13,annecy,Bad Locale,locale@example.com,xx_QQ_bogus,true,false",
        "C-14,lyon,Bad Agency,agency@example.com,fr,true,false",
    ]

    failed = cli.run("import", "contacts", str(cli.write_contacts(rows, "people.csv")))
    valid = cli.ok("import", "contacts", str(cli.write_contacts(rows[:1], "valid.csv")))

    assert failed.code == 1, failed.describe()
    reported = reported_lines(failed, "people.csv")
    expected = {3: "'not-an-email'", 4: "'yes'", 5: "'xx_QQ_bogus'", 6: "'lyon'"}
    assert set(reported) == set(expected), failed.describe()
    for line, fragment in expected.items():
        assert fragment in reported[line], failed.describe()
    assert import_counts(valid) == {"created": 1, "updated": 0, "unchanged": 0}


@pytest.mark.parametrize(
    ("bad_row", "line", "problem"),
    [
        pytest.param(
            # Quoted, so the cell really holds CR LF; the row ends on line 4 of the file.
            'C-21,annecy,"Marie\r\nBcc: evil@evil.example",marie@example.fr,fr,true,false',
            4,
            "name 'Marie\\r\\nBcc: evil@evil.example' holds a control character (CR): "
            "remove it from the file and import it again",
            id="CRLF-in-a-name",
        ),
        pytest.param(
            "C-21,annecy,Marie\0Dupont,marie@example.fr,fr,true,false",
            3,
            "name 'Marie\\x00Dupont' holds a control character (NUL): "
            "remove it from the file and import it again",
            id="NUL-in-a-name",
        ),
    ],
)
def test_a_control_character_in_a_cell_is_reported_and_nothing_is_imported(
    cli: Workspace, bad_row: str, line: int, problem: str
) -> None:
    valid = [
        "C-20,annecy,Jeanne Martin,jeanne@example.fr,fr,true,false",
        "C-22,annecy,Paul Roux,paul@example.fr,fr,true,false",
    ]

    failed = cli.run("import", "contacts", str(cli.write_contacts([valid[0], bad_row, valid[1]])))
    again = cli.ok("import", "contacts", str(cli.write_contacts(valid, "valid.csv")))

    assert failed.code == 1, failed.describe()
    assert failed.stdout == "", failed.describe()
    assert reported_lines(failed, "contacts.csv") == {
        line: f"contacts.csv line {line}: {problem}"
    }, failed.describe()
    assert failed.errors[1:] == [
        "nothing imported: 1 of 3 rows are invalid; "
        "fix them, or pass --skip-invalid to import the valid rows"
    ], failed.describe()
    # Both valid rows are new: the failed import wrote nothing.
    assert import_counts(again) == {"created": 2, "updated": 0, "unchanged": 0}


def with_nul_in_each_cell(header: str, valid: str, ref: str) -> tuple[list[str], list[str]]:
    """Return, for each column, a copy of `valid` holding a NUL in that cell; and the columns."""
    columns = header.split(",")
    rows = []
    for index in range(len(columns)):
        cells = valid.split(",")
        cells[0] = f"{ref}{index}"
        cells[index] = cells[index][:1] + "\0" + cells[index][1:]
        rows.append(",".join(cells))
    return rows, columns


@pytest.mark.parametrize(
    ("entity", "header", "valid"),
    [
        pytest.param(
            "contacts",
            CONTACTS_HEADER,
            "C-x,annecy,Marie Dupont,marie@example.fr,fr,true,false",
            id="contacts",
        ),
        pytest.param(
            "bookings",
            BOOKINGS_HEADER,
            "B-x,annecy,C-1,Chalet,option,2026-12-20,2026-12-20,100.00,EUR,2027-01-09,2027-01-16",
            id="bookings",
        ),
    ],
)
def test_a_nul_in_any_cell_is_an_invalid_row_on_every_database(
    loaded_on: Workspace, entity: str, header: str, valid: str
) -> None:
    # PostgreSQL refuses NUL in text: a cell that reached it, even in a look-up, broke the import.
    rows, columns = with_nul_in_each_cell(header, valid, f"{entity[0].upper()}-9")
    path = loaded_on.write(f"nul-{entity}.csv", csv_text(header, rows))
    before = loaded_on.json("queue", "--status", "all")

    failed = loaded_on.run("import", entity, str(path))

    assert failed.code == 1, failed.describe()
    assert failed.stdout == "", failed.describe()
    reported = reported_lines(failed, path.name)
    assert sorted(reported) == list(range(2, 2 + len(columns))), failed.describe()
    for line, column in enumerate(columns, start=2):
        assert f": {column} '" in reported[line], failed.describe()
        assert "holds a control character (NUL)" in reported[line], failed.describe()
    assert failed.errors[-1].startswith(f"nothing imported: {len(rows)} of {len(rows)} rows")
    fixed = [row.replace("\0", "") for row in rows]
    again = loaded_on.ok("import", entity, str(loaded_on.write(path.name, csv_text(header, fixed))))
    assert import_counts(again) == {"created": len(rows), "updated": 0, "unchanged": 0}
    assert loaded_on.json("queue", "--status", "all") == before


def test_a_ref_repeated_far_down_a_long_file_is_reported_on_every_database(
    loaded_on: Workspace,
) -> None:
    # The file is read a chunk at a time: the refs of earlier chunks are kept in the
    # database, not in memory. 1,200 rows: the repeats are two chunks after their first.
    contacts = [f"C-L{n},annecy,Guest {n},guest{n}@example.fr,fr,true,false" for n in range(1200)]
    contacts.append("C-L7,annecy,Guest again,again@example.fr,fr,true,false")
    bookings = [
        f"B-L{n},annecy,C-L{n},Chalet,confirmed,,2026-11-01,0.00,EUR,2027-03-01,2027-03-08"
        for n in range(1200)
    ]
    bookings.insert(
        1100, "B-L3,annecy,C-L3,Chalet,cancelled,,2026-11-01,0.00,EUR,2027-03-01,2027-03-08"
    )

    failed_contacts = loaded_on.run("import", "contacts", str(loaded_on.write_contacts(contacts)))
    loaded_on.ok("import", "contacts", str(loaded_on.write_contacts(contacts[:-1])))
    failed_bookings = loaded_on.run("import", "bookings", str(loaded_on.write_bookings(bookings)))
    # The same file again, fixed: what the failed imports noted is gone with them.
    del bookings[1100]
    again = loaded_on.ok("import", "bookings", str(loaded_on.write_bookings(bookings)))

    assert failed_contacts.code == 1, failed_contacts.describe()
    assert reported_lines(failed_contacts, "contacts.csv") == {
        1202: "contacts.csv line 1202: ref 'C-L7' already appears on line 9: keep one row per ref"
    }, failed_contacts.describe()
    assert failed_bookings.code == 1, failed_bookings.describe()
    assert reported_lines(failed_bookings, "bookings.csv") == {
        1102: "bookings.csv line 1102: ref 'B-L3' already appears on line 5: keep one row per ref"
    }, failed_bookings.describe()
    assert import_counts(again) == {"created": 1200, "updated": 0, "unchanged": 0}
    assert import_counts(
        loaded_on.ok("import", "bookings", str(loaded_on.write_bookings(bookings)))
    ) == {
        "created": 0,
        "updated": 0,
        "unchanged": 1200,
    }


def test_skip_invalid_imports_the_valid_rows_and_lists_the_others(loaded: Workspace) -> None:
    rows = [
        # arrival 2026-12-04: listed from 2026-11-27, so queued on PLAN_DAY
        "B-20,annecy,C-1,Chalet,confirmed,,2026-11-01,0.00,EUR,2026-12-04,2026-12-11",
        "B-21,annecy,C-1,Chalet,confirmed,,2026-11-01,0.00,EUR,04/12/2026,2026-12-11",
        "B-22,annecy,C-404,Chalet,confirmed,,2026-11-01,0.00,EUR,2026-12-04,2026-12-11",
    ]

    imported = loaded.run(
        "import", "bookings", str(loaded.write_bookings(rows, "mixed.csv")), "--skip-invalid"
    )
    plan = loaded.json("plan", "--date", PLAN_DAY, "--agency", "annecy")

    assert import_counts(imported) == {"created": 1, "updated": 0, "unchanged": 0}
    reported = reported_lines(imported, "mixed.csv")
    assert set(reported) == {3, 4}, imported.describe()
    assert "'04/12/2026'" in reported[3]
    assert "'C-404'" in reported[4]
    assert plan[0]["created"]["arrival"] == 2  # B-2, and B-20


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param(
            b"ref,agency,name,email,locale,email_confirmed\nC-1,annecy,A,a@example.com,fr,true\n",
            "email_opt_out",
            id="missing-column",
        ),
        pytest.param(b"", "empty", id="empty-file"),
        pytest.param(
            b"ref;agency;name;email;locale;email_confirmed;email_opt_out\n"
            b"C-1;annecy;A;a@example.com;fr;true;false\n",
            "separated by ';'",
            id="semicolon-separated",
        ),
        pytest.param(
            "ref,agency,name,email,locale,email_confirmed,email_opt_out\n"
            "C-1,annecy,René,rene@example.com,fr,true,false\n".encode("latin-1"),
            "UTF-8",
            id="not-utf8",
        ),
    ],
)
def test_unreadable_file_fails_in_one_line(cli: Workspace, content: bytes, fragment: str) -> None:
    path = cli.write("contacts.csv", content)

    result = cli.run("import", "contacts", str(path))

    assert_fails(result, 1, "contacts.csv", fragment)


def test_missing_file_fails_in_one_line(cli: Workspace) -> None:
    result = cli.run("import", "bookings", "no-such-file.csv")

    assert_fails(result, 1, "no-such-file.csv")
