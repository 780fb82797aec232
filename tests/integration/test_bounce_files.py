"""Reading bounce files: an .eml, an mbox and a Maildir, where one bad message is not fatal."""

from __future__ import annotations

import mailbox
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from reminders import bounces
from reminders.bounces import BounceSourceError, Finding, Outcome, Unreadable, read_path
from reminders.errors import ReminderError

SAMPLES = Path(__file__).parents[1] / "samples" / "bounces"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def summary(
    results: list[tuple[str, list[Finding] | Unreadable]],
) -> list[tuple[str, str]]:
    """Return (where, what) pairs: the outcome and address of each finding, or 'unreadable'."""
    return [
        (
            where,
            "unreadable"
            if isinstance(read, Unreadable)
            else ", ".join(f"{f.outcome} {f.address}" for f in read),
        )
        for where, read in results
    ]


def test_one_eml_file(tmp_path: Path) -> None:
    path = tmp_path / "bounce.eml"
    shutil.copy(SAMPLES / "postfix-user-unknown.eml", path)
    [(where, findings)] = list(read_path(path))
    assert where == "bounce.eml"
    assert findings == [
        Finding(
            address="jean.martin@example.org",
            outcome=Outcome.FAILED,
            status="5.1.1",
            diagnostic="550 5.1.1 <jmartin@mailstore.example.org>: Recipient address rejected:"
            " User unknown in local recipient table",
            reporter="mx1.example.org",
            message_id="<r17.1.4f65ad26fc280dbf@agence-du-lac.example>",
            arrived_at=datetime(2026, 3, 3, 9, 41, 16, tzinfo=timezone(timedelta(hours=1))),
        )
    ]


def test_an_eml_file_that_is_no_report_is_listed_as_unreadable() -> None:
    [(where, read)] = list(read_path(SAMPLES / "out-of-office.eml"))
    assert where == "out-of-office.eml"
    assert isinstance(read, Unreadable)
    assert read.where == "out-of-office.eml"
    assert read.reason == "an automatic reply (out of office), not a bounce; skipped"


def test_an_mbox(tmp_path: Path) -> None:
    path = tmp_path / "inbox.mbox"
    box = mailbox.mbox(path, create=True)
    for name in [
        "postfix-user-unknown.eml",
        "out-of-office.eml",
        "gmail-no-such-user.eml",
        "corrupt-truncated-dsn.eml",
        "postfix-relayed-success.eml",
        "arf-abuse-complaint.eml",
    ]:
        box.add(sample(name))
    box.close()

    results = list(read_path(path))

    assert summary(results) == [
        ("inbox.mbox message 1", "failed jean.martin@example.org"),
        ("inbox.mbox message 2", "unreadable"),
        ("inbox.mbox message 3", "failed julie.roy@example.net"),
        ("inbox.mbox message 4", "unreadable"),
        ("inbox.mbox message 5", ""),
        ("inbox.mbox message 6", "complaint claire.bernard@example.net"),
    ]
    unreadable = [read for _, read in results if isinstance(read, Unreadable)]
    assert [u.where for u in unreadable] == ["inbox.mbox message 2", "inbox.mbox message 4"]
    assert "automatic reply" in unreadable[0].reason
    assert "damaged" in unreadable[1].reason
    assert all(u.reason.endswith("; skipped") and "\n" not in u.reason for u in unreadable)


def test_a_maildir_is_read_cur_then_new_in_file_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "Maildir"
    mailbox.Maildir(folder, create=True).close()
    files = {
        "new/1773069605.M512880P3817Q2.mail.agence-du-lac.example": "exim-text-bounce.eml",
        "new/1772611333.M100412P3817Q1.mail.agence-du-lac.example": "postfix-delayed.eml",
        "cur/1772527278.M48113P2201Q1.mail.agence-du-lac.example:2,S": "qmail-no-mailbox.eml",
        "cur/1772745270.M93C2P2201Q4.mail.agence-du-lac.example:2,": "guest-reply.eml",
    }
    for name, source in files.items():
        (folder / name).write_bytes(sample(source))

    results = list(read_path(folder))

    assert summary(results) == [
        ("Maildir/cur/1772527278.M48113P2201Q1.mail.agence-du-lac.example:2,S",
         "failed luc.petit@example.net"),
        ("Maildir/cur/1772745270.M93C2P2201Q4.mail.agence-du-lac.example:2,", "unreadable"),
        ("Maildir/new/1772611333.M100412P3817Q1.mail.agence-du-lac.example",
         "delayed paul.girard@example.net"),
        ("Maildir/new/1773069605.M512880P3817Q2.mail.agence-du-lac.example",
         "failed sylvie.morel@example.com"),
    ]  # fmt: skip
    unreadable = results[1][1]
    assert isinstance(unreadable, Unreadable)
    assert unreadable.reason.startswith("an ordinary message")


def test_a_message_the_email_package_fails_on_is_listed_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The email package's header parsers raise IndexError on some malformed headers;
    # read_message reads the headers it needs defensively, so the failure is simulated here.
    real_read_message = bounces.read_message

    def failing_on_delays(message: bounces.EmailMessage) -> list[Finding]:
        if "Delayed" in str(message["Subject"]):
            raise IndexError("string index out of range")
        return real_read_message(message)

    monkeypatch.setattr(bounces, "read_message", failing_on_delays)
    folder = tmp_path / "Maildir"
    mailbox.Maildir(folder, create=True).close()
    (folder / "new" / "1.host").write_bytes(sample("postfix-delayed.eml"))
    (folder / "new" / "2.host").write_bytes(sample("postfix-user-unknown.eml"))

    results = list(read_path(folder))

    assert summary(results) == [
        ("Maildir/new/1.host", "unreadable"),
        ("Maildir/new/2.host", "failed jean.martin@example.org"),
    ]
    unreadable = results[0][1]
    assert isinstance(unreadable, Unreadable)
    assert unreadable.reason == (
        "the email package could not read it (IndexError: string index out of range); skipped"
    )


def test_an_emptied_mbox_has_no_messages(tmp_path: Path) -> None:
    path = tmp_path / "bounces"
    box = mailbox.mbox(path, create=True)
    box.add(sample("qmail-no-mailbox.eml"))
    box.remove(next(iter(box.keys())))
    box.close()
    assert path.stat().st_size == 0
    assert list(read_path(path)) == []


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        pytest.param("missing.mbox", lambda path: None, "no such file or folder", id="missing"),
        pytest.param("Documents", lambda path: path.mkdir(), "is a folder but not a Maildir",
                     id="folder-not-a-maildir"),
    ],
)  # fmt: skip
def test_a_path_that_is_none_of_the_three(
    tmp_path: Path, name: str, make: object, message: str
) -> None:
    path = tmp_path / name
    assert callable(make)
    make(path)
    with pytest.raises(BounceSourceError) as raised:
        read_path(path)  # at once, before any message is read
    text = str(raised.value)
    assert message in text
    assert str(path) in text
    assert "give an .eml file, an mbox file or a Maildir folder" in text
    assert "\n" not in text
    assert isinstance(raised.value, ReminderError)
