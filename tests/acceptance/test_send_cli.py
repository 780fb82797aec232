"""`send`, `send-all`, `resend`, `mark-sent` against a real SMTP server on loopback.

Every message the server receives is parsed and compared with what the queue says
was sent: recipient, subject, both parts, Message-ID.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from typing import Any

import pytest

from acceptance.workspace import REMINDERS, Workspace, assert_fails, by_ref, clean_environment
from mail_server import MailServer
from reminders.messages import SETTINGS_URL_PLACEHOLDER, UNSUBSCRIBE_URL_PLACEHOLDER

Ids = dict[tuple[str, str], int]
MARIE_OPTED_OUT = "C-1,annecy,Marie Dupont,marie.dupont@example.fr,fr,true,true"
SECRET = "acceptance-tests-signing-key-0123456789"


def smtp_env(server: MailServer, **more: str) -> dict[str, str | None]:
    """The environment that points the command at `server` (no file change needed)."""
    return {
        "REMINDERS_MAIL__TRANSPORT": "smtp",
        "REMINDERS_SMTP__HOST": server.host,
        "REMINDERS_SMTP__PORT": str(server.port),
        "REMINDERS_SMTP__TIMEOUT_S": "5",
        "REMINDERS_WEB__SECRET_KEY": SECRET,
        "REMINDERS_WEB__BASE_URL": "https://links.agence.example",
        **more,
    }


def show(workspace: Workspace, item_id: int) -> dict[str, Any]:
    shown: dict[str, Any] = workspace.json("show", str(item_id))
    return shown


def assert_delivered_as_queued(workspace: Workspace, server: MailServer, item_id: int) -> None:
    """The one message received for the item is what `show` says was sent."""
    item = show(workspace, item_id)
    assert item["status"] == "sent", item
    received = [m for m in server.messages() if m.message["Message-ID"] == item["message_id"]]
    assert len(received) == 1, [m.message["Message-ID"] for m in server.messages()]
    message = received[0].message
    assert received[0].rcpt_to == (item["to"],)
    assert message["Subject"] == item["subject"]
    assert message["To"].addresses[0].addr_spec == item["to"]
    assert message.get_content_type() == "multipart/alternative"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://links.agence.example/unsubscribe/"), unsubscribe
    # As queued, with the footer's placeholders filled in: the header's unsubscribe
    # link, and the address's settings link (an opaque token made when sending).
    link = unsubscribe.split(">")[0].removeprefix("<")
    plain = received[0].part("plain")
    [settings] = set(re.findall(r"https://links\.agence\.example/settings/[\w=-]+", plain))

    def as_sent(queued: str) -> str:
        return queued.replace(UNSUBSCRIBE_URL_PLACEHOLDER, link).replace(
            SETTINGS_URL_PLACEHOLDER, settings
        )

    assert plain == as_sent(item["text"])
    assert received[0].part("html") == as_sent(item["html"])
    assert "<mailto:" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_send_delivers_the_queued_email_and_marks_it_sent(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer
) -> None:
    item_id = planned_ids[("B-1", "balance_due")]

    result = planned.ok("send", str(item_id), env=smtp_env(mail_server))

    assert f"item {item_id} sent to marie.dupont@example.fr" in result.stdout
    assert len(mail_server.messages()) == 1
    assert_delivered_as_queued(planned, mail_server, item_id)
    message = mail_server.messages()[0].message
    assert message["From"] == "Agence du Lac <reservations@agence-du-lac.example>"
    assert planned.queue("--status", "sent")[0]["id"] == item_id


def test_an_edited_email_goes_out_as_edited(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer
) -> None:
    item_id = planned_ids[("B-5", "arrival")]
    script = planned.write(
        "editor.py",
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[-1])\n"
        "text = p.read_text(encoding='utf-8')\n"
        "p.write_text(text.replace('Subject: ', 'Subject: [Edited] ', 1)"
        ".replace('\\n\\n', '\\n\\nSee you Tuesday!\\n\\n', 1), encoding='utf-8')\n",
    )
    planned.ok("edit", str(item_id), env={"EDITOR": f"python3 {script}"})

    planned.ok("send", str(item_id), env=smtp_env(mail_server))

    assert_delivered_as_queued(planned, mail_server, item_id)
    received = mail_server.messages()[0]
    assert received.message["Subject"].startswith("[Edited] ")
    assert "See you Tuesday!" in received.part("plain")
    assert "See you Tuesday!" in received.part("html")


def test_without_consent_nothing_is_sent_and_the_item_stays_pending(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer
) -> None:
    unconfirmed = planned_ids[("B-2", "arrival")]
    opted_out = planned_ids[("B-3", "option_expiry")]
    no_address = planned_ids[("B-4", "post_departure")]

    result = planned.run(
        "send", str(unconfirmed), str(opted_out), str(no_address), env=smtp_env(mail_server)
    )

    assert_fails_with_lines(result, "3 of 3 emails not sent")
    assert "no consent (unconfirmed)" in result.stdout
    assert "no consent (opted_out)" in result.stdout
    assert "no consent (no_address)" in result.stdout
    assert mail_server.messages() == []
    items = by_ref(planned.queue())
    assert items[("B-2", "arrival")]["status"] == "pending"
    assert items[("B-3", "option_expiry")]["reason"] == "opted_out"


def test_consent_withdrawn_after_queueing_is_checked_again_when_sending(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer
) -> None:
    item_id = planned_ids[("B-1", "balance_due")]
    planned.ok(
        "import",
        "contacts",
        str(
            planned.write_contacts(["C-1,annecy,Marie Dupont,marie.dupont@example.fr,fr,true,true"])
        ),
    )

    result = planned.run("send", str(item_id), env=smtp_env(mail_server))

    assert_fails_with_lines(result, "1 of 1 email not sent")
    assert mail_server.messages() == []
    assert show(planned, item_id)["status"] == "pending"
    assert show(planned, item_id)["consent"] == "opted_out"


def test_send_all_sends_a_tab_once_and_twice_sends_nothing_twice(
    planned: Workspace, mail_server: MailServer
) -> None:
    planned.ok(
        "import",
        "contacts",
        str(
            planned.write_contacts(
                [
                    "C-7,montreal,Liam Johnson,Liam.Johnson@Example.com,en,true,false",
                    "C-8,montreal,Noah Smith,noah@example.com,en,false,false",
                ]
            )
        ),
    )
    planned.ok(
        "import",
        "bookings",
        str(
            planned.write_bookings(
                [
                    "B-8,montreal,C-7,Chalet Ouest,confirmed,,,0,CAD,2026-12-06,2026-12-09",
                    "B-9,montreal,C-8,Chalet Est,confirmed,,,0,CAD,2026-12-07,2026-12-09",
                ]
            )
        ),
    )
    planned.ok("plan", "--date", "2026-12-01", "--agency", "montreal")
    env = smtp_env(mail_server)

    first = planned.ok("send-all", "--agency", "montreal", "--kind", "arrival", "--yes", env=env)
    second = planned.ok("send-all", "--agency", "montreal", "--kind", "arrival", "--yes", env=env)

    assert "2 sent, 1 held for consent" in first.stdout
    assert "nothing to send" in second.stdout
    received = sorted(r for m in mail_server.messages() for r in m.rcpt_to)
    # Sent to each address as written, so what arrived reads as the queue says.
    assert received == ["Liam.Johnson@Example.com", "olivia.tremblay@example.ca"]
    for item in planned.queue("--status", "sent"):
        assert_delivered_as_queued(planned, mail_server, item["id"])
    assert [i["booking_ref"] for i in planned.queue("--agency", "montreal")] == ["B-9"]


def test_send_all_asks_first_and_sends_nothing_when_not_confirmed(
    planned: Workspace, mail_server: MailServer
) -> None:
    env = smtp_env(mail_server)
    refused = planned.run(
        "send-all", "--agency", "annecy", "--kind", "balance_due", input="n\n", env=env
    )
    accepted = planned.run(
        "send-all", "--agency", "annecy", "--kind", "balance_due", input="y\n", env=env
    )

    assert refused.code == 1, refused.describe()
    assert "Send 1 email of Rappel solde (balance_due) for annecy?" in refused.stdout
    # Few recipients: they are listed before the question.
    assert "  - Marie Dupont <marie.dupont@example.fr> (booking B-1)" in refused.stdout
    assert refused.errors == ["aborted"]
    assert accepted.code == 0, accepted.describe()
    assert len(mail_server.messages()) == 1


def test_server_down_then_back_loses_nothing_and_sends_once(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer
) -> None:
    ids = [planned_ids[("B-1", "balance_due")], planned_ids[("B-5", "arrival")]]
    mail_server.stop()

    down = planned.run("send", *map(str, ids), env=smtp_env(mail_server))

    assert_fails_with_lines(down, "cannot reach the mail server")
    assert f"127.0.0.1:{mail_server.port}" in down.stderr and "nothing lost" in down.stderr
    assert planned.queue("--status", "sent") == []
    assert sorted(i["id"] for i in planned.queue("--status", "approved")) == sorted(ids)

    mail_server.start()
    back = planned.ok("send", *map(str, ids), env=smtp_env(mail_server))

    assert "2 sent" in back.stdout
    assert len(mail_server.messages()) == 2
    for item_id in ids:
        assert_delivered_as_queued(planned, mail_server, item_id)
        assert show(planned, item_id)["attempts"] >= 1


def test_a_permanent_refusal_fails_the_item_and_opts_the_address_out(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer
) -> None:
    item_id = planned_ids[("B-6", "arrival")]
    mail_server.refuse_rcpt(
        "aroha.ngata@example.nz", "550 5.1.1 <aroha.ngata@example.nz>: User unknown"
    )

    result = planned.run("send", str(item_id), env=smtp_env(mail_server))

    assert_fails_with_lines(result, "1 of 1 email not sent")
    assert "550 5.1.1" in result.stdout
    item = show(planned, item_id)
    assert item["status"] == "failed"
    assert "5.1.1" in item["last_error"]
    assert item["consent"] == "opted_out"
    assert mail_server.messages() == []


def test_a_temporary_refusal_keeps_the_item_for_a_retry(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer
) -> None:
    item_id = planned_ids[("B-6", "arrival")]
    mail_server.refuse_rcpt("aroha.ngata@example.nz", "451 4.3.0 Try again later")

    first = planned.run("send", str(item_id), env=smtp_env(mail_server))
    again = planned.ok("send", str(item_id), env=smtp_env(mail_server))

    assert_fails_with_lines(first, "1 of 1 email not sent")
    assert "451 4.3.0" in first.stdout and "retried from" in first.stdout
    assert f"item {item_id} sent" in again.stdout
    assert_delivered_as_queued(planned, mail_server, item_id)
    assert show(planned, item_id)["attempts"] == 2


def test_a_process_killed_mid_send_leaves_unknown_never_resent_without_a_person(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer
) -> None:
    item_id = planned_ids[("B-1", "balance_due")]
    other = planned_ids[("B-5", "arrival")]
    env = smtp_env(mail_server)
    mail_server.stall_s = 30  # the server holds its final reply

    sender = subprocess.Popen(
        [str(REMINDERS), "send", str(item_id)],
        cwd=planned.folder,
        env=clean_environment(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert mail_server.data_started.wait(20), "the message never reached the server"
        assert show(planned, item_id)["status"] == "sending"
    finally:
        os.kill(sender.pid, signal.SIGKILL)
        sender.wait(10)
    mail_server.stall_s = 0

    after = planned.ok("send", str(other), env=env)

    assert f"item {item_id} was left in sending" in after.stdout
    assert show(planned, item_id)["status"] == "unknown"
    # Until a person decides, the health check says so.
    health = planned.run("health", "--json", env=env)
    assert health.code == 1, health.describe()
    assert "1 email in state unknown wait for a person" in health.stderr
    assert [row["unknown"] for row in json.loads(health.stdout) if row["agency"] == "annecy"] == [1]
    planned.ok("send-all", "--agency", "annecy", "--kind", "balance_due", "--yes", env=env)
    refused = planned.run("send", str(item_id), env=env)
    assert "reminders resend" in refused.stdout
    assert mail_server.to("marie.dupont@example.fr") == []

    planned.ok("resend", str(item_id), env=env)

    assert len(mail_server.to("marie.dupont@example.fr")) == 1
    assert_delivered_as_queued(planned, mail_server, item_id)


def test_mark_sent_settles_an_unknown_item_without_sending(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer
) -> None:
    item_id = planned_ids[("B-5", "arrival")]
    mail_server.stall_s = 3
    env = smtp_env(mail_server, REMINDERS_SMTP__TIMEOUT_S="1")

    lost = planned.run("send", str(item_id), env=env)
    marked = planned.ok("mark-sent", str(item_id), env=env)
    again = planned.run("mark-sent", str(item_id), env=env)

    assert "unknown" in lost.stdout and "mark-sent" in lost.stdout
    assert lost.code == 1
    assert f"item {item_id} marked sent" in marked.stdout
    assert show(planned, item_id)["status"] == "sent"
    assert_fails(again, 1, f"item {item_id} is sent")


def test_sending_needs_the_signing_key_and_changes_nothing_without_it(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer
) -> None:
    item_id = planned_ids[("B-1", "balance_due")]
    env = smtp_env(mail_server, REMINDERS_WEB__SECRET_KEY=None)  # type: ignore[arg-type]

    result = planned.run("send", str(item_id), env=env)

    assert_fails(result, 2, "REMINDERS_WEB__SECRET_KEY", "secrets.token_urlsafe")
    assert show(planned, item_id)["status"] == "pending"
    assert mail_server.messages() == []


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(("send", "9999"), ("no item 9999", "reminders queue"), id="unknown-id"),
        pytest.param(
            ("send-all", "--agency", "anecy", "--kind", "arrival", "--yes"),
            ("unknown agency 'anecy'", "annecy"),
            id="unknown-agency",
        ),
        pytest.param(
            ("send-all", "--agency", "auckland", "--kind", "balance_due", "--yes"),
            ("kind 'balance_due' is not enabled", "arrival"),
            id="kind-off-for-agency",
        ),
        pytest.param(("mark-sent", "1"), ("is pending", "only"), id="mark-sent-pending"),
    ],
)
def test_bad_requests_get_one_line_and_send_nothing(
    planned: Workspace, mail_server: MailServer, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    result = planned.run(*args, env=smtp_env(mail_server))

    assert result.code in (1, 2), result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.describe()
    for fragment in fragments:
        assert fragment in result.stderr + result.stdout, result.describe()
    assert mail_server.messages() == []


def test_a_discarded_item_cannot_be_sent(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer
) -> None:
    item_id = planned_ids[("B-1", "balance_due")]
    planned.ok("discard", str(item_id))

    result = planned.run("send", str(item_id), env=smtp_env(mail_server))

    assert_fails_with_lines(result, "1 of 1 email not sent")
    assert f"item {item_id} is discarded" in result.stdout
    assert mail_server.messages() == []


def test_the_maildir_transport_writes_each_email_as_a_file(
    planned: Workspace, planned_ids: Ids
) -> None:
    item_id = planned_ids[("B-1", "balance_due")]
    env = {"REMINDERS_MAIL__TRANSPORT": "maildir", "REMINDERS_WEB__SECRET_KEY": SECRET}

    planned.ok("send", str(item_id), env=env)

    files = list((planned.folder / "outbox" / "new").iterdir())
    assert len(files) == 1
    assert show(planned, item_id)["message_id"] in files[0].read_text(encoding="utf-8")


def assert_fails_with_lines(result: Any, fragment: str) -> None:
    """Exit 1 with exactly one stderr line holding `fragment`."""
    assert result.code == 1, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.describe()
