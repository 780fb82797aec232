"""Reading bounces and complaints: one row per real sample in tests/samples/bounces/."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from reminders.bounces import Finding, NotAReport, Outcome, read_message
from reminders.errors import ReminderError

SAMPLES = Path(__file__).parents[1] / "samples" / "bounces"
CET = timezone(timedelta(hours=1))
PDT = timezone(timedelta(hours=-7))


def raw(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def parsed(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def only_finding(data: bytes) -> Finding:
    findings = read_message(parsed(data))
    assert len(findings) == 1, findings
    return findings[0]


@pytest.mark.parametrize(
    ("sample", "address", "outcome", "status", "diagnostic", "message_id"),
    [
        pytest.param(
            "postfix-user-unknown.eml", "jean.martin@example.org", Outcome.FAILED, "5.1.1",
            "550 5.1.1 <jmartin@mailstore.example.org>: Recipient address rejected: User unknown",
            "<r17.1.4f65ad26fc280dbf@agence-du-lac.example>",
            id="postfix-550-5.1.1",
        ),
        pytest.param(
            "postfix-delayed.eml", "paul.girard@example.net", Outcome.DELAYED, "4.4.1",
            "connect to mx.example.net[198.51.100.7]:25: Connection timed out",
            "<r23.1.f44cd623e0e0e9ea@agence-du-lac.example>",
            id="postfix-delayed-4.4.1",
        ),
        pytest.param(
            "exim-text-bounce.eml", "sylvie.morel@example.com", Outcome.FAILED, "5.1.1",
            "550 5.1.1 <sylvie.morel@example.com>: Recipient address rejected: User unknown",
            "<r31.2.182cea91e640f962@agence-du-lac.example>",
            id="exim-plain-text",
        ),
        pytest.param(
            "qmail-no-mailbox.eml", "luc.petit@example.net", Outcome.FAILED, "5.1.1",
            "Sorry, no mailbox here by that name. (#5.1.1)",
            "<r39.1.58a42be1925c8fe6@agence-du-lac.example>",
            id="qmail-plain-text",
        ),
        pytest.param(
            "gmail-no-such-user.eml", "julie.roy@example.net", Outcome.FAILED, "5.1.1",
            "550 5.1.1 The email account that you tried to reach does not exist.",
            "<r52.1.bf984900b17da12f@chalets-laurentides.example>",
            id="gmail-no-such-user",
        ),
        pytest.param(
            "exchange-online-recipient-not-found.eml", "sophie.tremblay@example.com",
            Outcome.FAILED, "5.1.10",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient sophie.tremblay@example.com",
            "<r44.1.bad61862220c37b8@agence-du-lac.example>",
            id="exchange-5.1.10",
        ),
        pytest.param(
            "postfix-smtputf8-user-unknown.eml", "chloé.durand@example.fr", Outcome.FAILED, "5.1.1",
            "550 5.1.1 <chloé.durand@example.fr>: Recipient address rejected",
            "<r72.1.6d0e5b3f91a2c847@agence-du-lac.example>",
            id="postfix-smtputf8-global-dsn",
        ),
        pytest.param(
            "arf-abuse-complaint.eml", "claire.bernard@example.net", Outcome.COMPLAINT, None,
            "complaint (abuse) from ExampleMail-FBL/3.2",
            "<r58.1.aafd07978714e6f4@agence-du-lac.example>",
            id="arf-abuse",
        ),
    ],
)  # fmt: skip
def test_read_message(
    sample: str,
    address: str,
    outcome: Outcome,
    status: str | None,
    diagnostic: str,
    message_id: str,
) -> None:
    finding = only_finding(raw(sample))
    assert finding.address == address
    assert finding.outcome is outcome
    assert finding.status == status
    assert diagnostic in finding.diagnostic
    assert finding.message_id == message_id


@pytest.mark.parametrize(
    ("sample", "reporter", "arrived_at"),
    [
        pytest.param("postfix-user-unknown.eml", "mx1.example.org",
                     datetime(2026, 3, 3, 9, 41, 16, tzinfo=CET), id="postfix-reporting-mta"),
        pytest.param("gmail-no-such-user.eml", "googlemail.com",
                     datetime(2026, 3, 9, 7, 20, 4, tzinfo=PDT), id="gmail-reporting-mta"),
        pytest.param("exchange-online-recipient-not-found.eml",
                     "DB9PR02MB7251.eurprd02.prod.outlook.com",
                     datetime(2026, 3, 6, 13, 7, 42, tzinfo=UTC), id="exchange-reporting-mta"),
        pytest.param("arf-abuse-complaint.eml", "ExampleMail-FBL/3.2",
                     datetime(2026, 3, 10, 7, 12, 44, tzinfo=UTC), id="arf-user-agent"),
        pytest.param("exim-text-bounce.eml", "mx.example.com", None, id="exim-bouncing-host"),
    ],
)  # fmt: skip
def test_reporter_and_arrival(sample: str, reporter: str, arrived_at: datetime | None) -> None:
    finding = only_finding(raw(sample))
    assert finding.reporter == reporter
    assert finding.arrived_at == arrived_at
    assert finding.arrived_at is None or finding.arrived_at.tzinfo is not None


def test_original_recipient_wins_over_the_final_one() -> None:
    # mx1.example.org expanded the alias the reminder went to into another mailbox.
    assert only_finding(raw("postfix-user-unknown.eml")).address == "jean.martin@example.org"


def test_a_multi_line_reply_is_one_line_with_its_codes_given_once() -> None:
    assert only_finding(raw("gmail-no-such-user.eml")).diagnostic == (
        "550 5.1.1 The email account that you tried to reach does not exist. Please try"
        " double-checking the recipient's email address for typos or unnecessary spaces."
        " For more information, go to https://support.google.com/mail/?p=NoSuchUser"
        " 6a1803df08f44-6f53a1b9d10si2712215d6.311 - gsmtp"
    )


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.eml")))
def test_every_diagnostic_is_one_non_empty_line(sample: str) -> None:
    try:
        findings = read_message(parsed(raw(sample)))
    except NotAReport:
        return
    for finding in findings:
        assert finding.diagnostic
        assert finding.diagnostic == " ".join(finding.diagnostic.split())


def test_a_report_of_relayed_mail_gives_nothing() -> None:
    assert read_message(parsed(raw("postfix-relayed-success.eml"))) == []


def test_a_message_given_up_on_after_temporary_failures_is_delayed() -> None:
    # What Postfix returns when the queue lifetime ends: Action failed, Status 4.x.x.
    given_up = (
        raw("postfix-delayed.eml")
        .replace(b"Action: delayed", b"Action: failed")
        .replace(b"Status: 4.4.1", b"Status: 4.4.7")
    )
    finding = only_finding(given_up)
    assert (finding.outcome, finding.status) == (Outcome.DELAYED, "4.4.7")


def test_a_failure_without_action_is_read_from_its_status() -> None:
    finding = only_finding(raw("postfix-user-unknown.eml").replace(b"Action: failed\n", b""))
    assert (finding.outcome, finding.status) == (Outcome.FAILED, "5.1.1")


def test_a_complaint_without_original_rcpt_to_names_the_original_to() -> None:
    data = raw("arf-abuse-complaint.eml").replace(
        b"Original-Rcpt-To: <claire.bernard@example.net>\n", b""
    )
    assert only_finding(data).address == "claire.bernard@example.net"


def test_a_complaint_naming_nobody_is_not_a_report() -> None:
    data = (
        raw("arf-abuse-complaint.eml")
        .replace(b"Original-Rcpt-To: <claire.bernard@example.net>\n", b"")
        .replace(
            b"To: Claire Bernard <claire.bernard@example.net>", b"To: undisclosed-recipients:;"
        )
    )
    with pytest.raises(NotAReport, match="does not say who complained"):
        read_message(parsed(data))


@pytest.mark.parametrize("feedback_type", [b"not-spam", b"auth-failure", b"virus"])
def test_feedback_that_is_no_complaint_gives_nothing(feedback_type: bytes) -> None:
    data = raw("arf-abuse-complaint.eml").replace(
        b"Feedback-Type: abuse", b"Feedback-Type: " + feedback_type
    )
    assert read_message(parsed(data)) == []


def test_a_report_cut_before_its_status_part_falls_back_on_the_text_reader() -> None:
    # Gmail, like Exim, also names the failed recipients in X-Failed-Recipients.
    finding = only_finding(raw("gmail-no-such-user.eml")[:3000])
    assert (finding.address, finding.outcome, finding.status) == (
        "julie.roy@example.net",
        Outcome.FAILED,
        None,
    )
    assert finding.diagnostic == "permanent failure reported by mailer-daemon@googlemail.com"


def test_a_malformed_original_message_id_is_read_as_written() -> None:
    # The email package's own Message-ID parser raises IndexError on this one.
    data = raw("postfix-user-unknown.eml").replace(
        b"Message-ID: <r17.1.4f65ad26fc280dbf@agence-du-lac.example>", b"Message-ID: <r17.1@"
    )
    assert only_finding(data).message_id == "<r17.1@"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(raw("out-of-office.eml"), "an automatic reply (out of office)",
                     id="out-of-office"),
        pytest.param(raw("out-of-office.eml").replace(b"Subject: Out of Office", b"Subject: Re: A"),
                     "an automatic reply that reports no failed delivery",
                     id="auto-replied-header-only"),
        pytest.param(raw("guest-reply.eml"), "an ordinary message", id="ordinary-mail"),
        pytest.param(raw("corrupt-truncated-dsn.eml"), "a damaged message", id="truncated-report"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01", "not an email message",
                     id="garbage"),
        pytest.param(b"", "not an email message", id="empty"),
    ],
)  # fmt: skip
def test_not_a_report(data: bytes, reason: str) -> None:
    with pytest.raises(NotAReport) as raised:
        read_message(parsed(data))
    assert reason in str(raised.value)
    assert "\n" not in str(raised.value)
    assert isinstance(raised.value, ReminderError)
