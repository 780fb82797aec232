"""The SMTP transport against real servers on loopback: TLS, login, SMTPUTF8, reconnects.

Batches go to a server that offers PIPELINING and to one that does not.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from mail_server import MailServer
from reminders.mailer import (
    DeliveryError,
    MaildirMailer,
    PermanentFailure,
    SmtpMailer,
    TransientFailure,
    UncertainDelivery,
)
from reminders.messages import Draft, Envelope, build, mailbox, new_message_id, parse_mailbox

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
USER, PASSWORD = "agence", "s3cret-password"


def envelope(to: str = "marie@example.fr", subject: str = "Rappel") -> Envelope:
    draft = Draft(
        sender=parse_mailbox("Agence du Lac <reservations@agence-du-lac.example>"),
        recipient=mailbox(to, "Marie"),
        subject=subject,
        text="Bonjour,\n",
        html="<p>Bonjour,</p>\n",
        language="fr",
    )
    return build(draft, now=NOW, message_id=new_message_id("t", "agence-du-lac.example"))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def check_login(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def starttls_server(ca: trustme.CA) -> Iterator[MailServer]:
    server = MailServer(
        tls_context=server_context(ca),
        require_starttls=True,
        auth_required=True,
        authenticator=check_login,
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[MailServer]:
    server = MailServer(ssl_context=server_context(ca)).start()
    try:
        yield server
    finally:
        server.stop()


def test_starttls_and_login_deliver(starttls_server: MailServer, ca_file: Path) -> None:
    mailer = SmtpMailer(
        starttls_server.host, starttls_server.port, security="starttls",
        username=USER, password=PASSWORD, timeout_s=5, ca_file=ca_file,
    )  # fmt: skip

    mailer.send(envelope())
    mailer.close()

    [received] = starttls_server.messages()
    assert received.rcpt_to == ("marie@example.fr",)


def test_a_refused_login_says_which_settings_to_check(
    starttls_server: MailServer, ca_file: Path
) -> None:
    mailer = SmtpMailer(
        starttls_server.host, starttls_server.port, security="starttls",
        username=USER, password="wrong", timeout_s=5, ca_file=ca_file,
    )  # fmt: skip

    with pytest.raises(TransientFailure) as raised:
        mailer.send(envelope())

    assert raised.value.stops_batch
    assert "smtp.username" in str(raised.value)
    assert "REMINDERS_SMTP__PASSWORD" in str(raised.value)
    assert starttls_server.messages() == []


def test_without_starttls_a_server_that_requires_it_refuses(starttls_server: MailServer) -> None:
    mailer = SmtpMailer(starttls_server.host, starttls_server.port, timeout_s=5)

    with pytest.raises(TransientFailure) as raised:
        mailer.send(envelope())
    mailer.close()

    assert raised.value.code is not None and 500 <= raised.value.code < 600
    assert starttls_server.messages() == []


def test_implicit_tls_delivers(tls_server: MailServer, ca_file: Path) -> None:
    mailer = SmtpMailer(
        tls_server.host, tls_server.port, security="tls", timeout_s=5, ca_file=ca_file
    )

    mailer.send(envelope())
    mailer.close()

    assert len(tls_server.messages()) == 1


def test_an_untrusted_certificate_is_refused(tls_server: MailServer) -> None:
    mailer = SmtpMailer(tls_server.host, tls_server.port, security="tls", timeout_s=5)

    with pytest.raises(TransientFailure) as raised:
        mailer.send(envelope())

    assert "TLS" in str(raised.value) and raised.value.stops_batch
    assert tls_server.messages() == []


def test_a_missing_ca_file_is_named(tls_server: MailServer, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    mailer = SmtpMailer(tls_server.host, tls_server.port, security="tls", ca_file=missing)

    with pytest.raises(TransientFailure, match=r"smtp\.ca_file"):
        mailer.send(envelope())


def test_nothing_listening_is_a_transient_failure_that_stops_the_batch() -> None:
    down = MailServer()  # never started: its port refuses connections
    mailer = SmtpMailer(down.host, down.port, timeout_s=5)

    with pytest.raises(TransientFailure) as raised:
        mailer.send(envelope())

    assert raised.value.stops_batch
    assert f"cannot reach the mail server 127.0.0.1:{down.port}" in str(raised.value)


@pytest.fixture(params=[True, False], ids=["pipelining", "one-by-one"])
def any_server(request: pytest.FixtureRequest) -> Iterator[MailServer]:
    server = MailServer(pipelining=request.param).start()
    try:
        yield server
    finally:
        server.stop()


def outcomes(
    mailer: SmtpMailer, envelopes: list[Envelope]
) -> list[tuple[int, type[DeliveryError] | None]]:
    return [
        (n, None if error is None else type(error))
        for n, error in mailer.send_batch(enumerate(envelopes))
    ]


def test_a_batch_goes_in_order_on_one_session_with_refusals_in_between(
    any_server: MailServer,
) -> None:
    any_server.refuse_rcpt("nobody@example.fr", "550 5.1.1 no such mailbox")
    mailer = SmtpMailer(any_server.host, any_server.port, timeout_s=5)
    batch = [
        envelope(subject="one"),
        envelope(to="nobody@example.fr", subject="refused"),
        envelope(subject="three"),
        envelope(to="zoë@münchen.example", subject="four"),
    ]

    got = outcomes(mailer, batch)
    mailer.close()

    assert got == [(0, None), (1, PermanentFailure), (2, None), (3, None)]
    received = any_server.messages()
    assert [m.message["Subject"] for m in received] == ["one", "three", "four"]
    assert len({m.session for m in received}) == 1
    assert received[0].part("plain") == "Bonjour,\n"


def test_a_message_refused_after_data_does_not_stop_the_batch(any_server: MailServer) -> None:
    any_server.data_replies.append("554 5.6.0 rejected")
    mailer = SmtpMailer(any_server.host, any_server.port, timeout_s=5)

    got = outcomes(mailer, [envelope(subject="one"), envelope(subject="two")])
    mailer.close()

    assert got == [(0, PermanentFailure), (1, None)]
    assert [m.message["Subject"] for m in any_server.messages()] == ["two"]


def test_each_lost_final_reply_is_uncertain_and_the_next_message_takes_a_new_connection(
    any_server: MailServer,
) -> None:
    any_server.stall_s = 2
    mailer = SmtpMailer(any_server.host, any_server.port, timeout_s=0.5)

    got = outcomes(mailer, [envelope(subject="one"), envelope(subject="two")])
    any_server.stall_s = 0
    third = outcomes(mailer, [envelope(subject="three")])
    mailer.close()

    assert got == [(0, UncertainDelivery), (1, UncertainDelivery)]
    assert third == [(0, None)]


@pytest.mark.parametrize(
    ("pipelining", "possible"),
    [
        # The first message's commands are answered around the time the server goes:
        # either it was never handed over, or its body went out and its final reply
        # never came (uncertain), and the second was never handed over.
        pytest.param(
            True,
            [[(0, TransientFailure)], [(0, UncertainDelivery), (1, TransientFailure)]],
            id="pipelining",
        ),
        pytest.param(False, [[(0, None), (1, TransientFailure)]], id="one-by-one"),
    ],
)
def test_a_server_gone_mid_batch_stops_it_and_what_was_not_handed_over_is_not_reported(
    pipelining: bool, possible: list[list[tuple[int, type[DeliveryError] | None]]]
) -> None:
    server = MailServer(pipelining=pipelining).start()
    mailer = SmtpMailer(server.host, server.port, timeout_s=2)

    def batch() -> Iterator[tuple[int, Envelope]]:
        yield 0, envelope(subject="one")
        server.stop()
        yield 1, envelope(subject="two")
        yield 2, envelope(subject="three")

    got = outcomes_of(mailer, batch())
    mailer.close()

    assert got in possible
    error = next(error for _, error in mailer.send_batch([(9, envelope())]))
    assert isinstance(error, TransientFailure) and error.stops_batch


def outcomes_of(
    mailer: SmtpMailer, batch: Iterator[tuple[int, Envelope]]
) -> list[tuple[int, type[DeliveryError] | None]]:
    return [(n, None if error is None else type(error)) for n, error in mailer.send_batch(batch)]


def test_one_connection_serves_a_batch_and_a_dropped_one_is_reopened(
    any_server: MailServer,
) -> None:
    mail_server = any_server
    mailer = SmtpMailer(mail_server.host, mail_server.port, timeout_s=5)

    mailer.send(envelope(subject="one"))
    mailer.send(envelope(subject="two"))
    mail_server.stop()  # drops the idle connection
    mail_server.start()
    mailer.send(envelope(subject="three"))
    mailer.close()

    sessions = [m.session for m in mail_server.messages()]
    assert [m.message["Subject"] for m in mail_server.messages()] == ["one", "two", "three"]
    assert sessions[0] == sessions[1] != sessions[2]


def test_a_non_ascii_mailbox_goes_with_smtputf8(mail_server: MailServer) -> None:
    mailer = SmtpMailer(mail_server.host, mail_server.port, timeout_s=5)

    mailer.send(envelope(to="zoë@münchen.example"))
    mailer.close()

    [received] = mail_server.messages()
    assert received.rcpt_to == ("zoë@xn--mnchen-3ya.example",)
    assert "SMTPUTF8" in received.mail_options
    assert received.message["To"].addresses[0].username == "zoë"


def test_a_non_ascii_mailbox_is_refused_for_good_without_smtputf8() -> None:
    server = MailServer(enable_SMTPUTF8=False).start()
    try:
        mailer = SmtpMailer(server.host, server.port, timeout_s=5)
        with pytest.raises(PermanentFailure, match="SMTPUTF8"):
            mailer.send(envelope(to="zoë@münchen.example"))
        mailer.send(envelope(to="zoe@xn--mnchen-3ya.example"))  # an IDN domain alone is fine
        mailer.close()
        assert [m.rcpt_to for m in server.messages()] == [("zoe@xn--mnchen-3ya.example",)]
    finally:
        server.stop()


def test_the_maildir_transport_writes_one_file_per_email(tmp_path: Path) -> None:
    mailer = MaildirMailer(tmp_path / "outbox")

    mailer.send(envelope(subject="one"))
    mailer.send(envelope(subject="two"))

    files = sorted((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 2
    assert all(b"Subject: " in f.read_bytes() for f in files)


def test_an_unwritable_maildir_is_a_transient_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be", encoding="utf-8")

    with pytest.raises(TransientFailure, match="cannot write to the maildir"):
        MaildirMailer(blocker).send(envelope())
