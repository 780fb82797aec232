"""Sending through a real SMTP server on loopback, on SQLite and PostgreSQL: what goes out.

Every message the server receives is parsed and compared with what the queue
recorded; consent is checked again at the moment of sending; auto_send, the rate
limit, the daily summary and two dispatchers at once. Failures are in
test_dispatch_failures.py.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from factories import day
from integration.dispatch_world import (
    BASE_URL,
    SENDER,
    START,
    SessionKeepingServer,
    World,
    address_of,
    results,
)
from mail_server import MailServer
from reminders import sending, service
from reminders.bookings import BookingStatus
from reminders.database import create_engine
from reminders.delivery import DispatchReport, Result
from reminders.mailer import TransientFailure
from reminders.messages import SETTINGS_URL_PLACEHOLDER, UNSUBSCRIBE_URL_PLACEHOLDER
from reminders.queue import Status
from reminders.sending import AUTO_SEND
from reminders.store import Database
from reminders.tokens import LinkSigner, Purpose


def recipients_of(world: World) -> list[str]:
    return [r for m in world.mail_server.messages() for r in m.rcpt_to]


def test_the_body_shows_the_unsubscribe_link_of_the_header_and_it_works(world: World) -> None:
    world.contact("C-1", "marie.dupont@example.com", name="Marie Dupont")
    world.booking("B-1", "C-1")
    world.plan()
    item = world.item_of("B-1")

    world.dispatcher().send([item.id])

    [received] = world.mail_server.messages()
    url, _mailto = re.findall(r"<([^>]+)>", str(received.message["List-Unsubscribe"]))
    text, html = received.part("plain"), received.part("html")
    assert url in text
    assert f'<a href="{url}"' in html
    assert "Se désinscrire" in text and "Se désinscrire" in html
    assert UNSUBSCRIBE_URL_PLACEHOLDER not in text + html
    token = url.removeprefix(f"{BASE_URL}/unsubscribe/")
    signer = LinkSigner(world.settings.link_secret(), world.clock)
    assert signer.address(Purpose.UNSUBSCRIBE, token, timedelta(days=1)) == (
        "marie.dupont@example.com"
    )


def test_send_delivers_one_message_exactly_as_queued(world: World) -> None:
    world.contact("C-1", "marie.dupont@example.com", name="Marie Dupont")
    world.booking("B-1", "C-1")
    world.plan()
    item = world.item_of("B-1")

    report = world.dispatcher().send([item.id])

    assert results(report) == [(item.id, Result.SENT)]
    assert report.ok and report.stopped is None
    [received] = world.mail_server.messages()
    after = world.item(item.id)
    message = received.message
    assert received.mail_from == "reservations@agence-du-lac.example"
    assert received.rcpt_to == ("marie.dupont@example.com",)
    [to] = message["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Marie Dupont", "marie.dupont@example.com")
    assert str(message["From"]) == SENDER
    [reply_to] = message["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == (
        "Réservations Agence du Lac",
        "contact@agence-du-lac.example",
    )
    assert message["Subject"] == item.subject
    assert message.get_content_type() == "multipart/alternative"
    # As queued, but for the unsubscribe and settings links, made when the email is sent.
    url = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))[0]
    settings = re.findall(r"https://links\.example/settings/[A-Za-z0-9_-]+", received.part("plain"))
    assert len(settings) == 1 and settings[0] in received.part("html")

    def sent(body: str) -> str:
        return body.replace(UNSUBSCRIBE_URL_PLACEHOLDER, url).replace(
            SETTINGS_URL_PLACEHOLDER, settings[0]
        )

    assert received.part("plain") == sent(item.text)
    assert received.part("html") == sent(item.html)
    assert message["Message-ID"] == after.message_id == report.deliveries[0].message_id
    assert re.fullmatch(r"<r\d+\.1\.[0-9a-f]+@agence-du-lac\.example>", message["Message-ID"])
    # The Date is the sending instant, written in the agency's zone (Paris in winter).
    assert message["Date"].datetime == START
    assert message["Date"].datetime.utcoffset() == timedelta(hours=1)

    url, mailto = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    assert url.startswith(f"{BASE_URL}/unsubscribe/")
    token = url.removeprefix(f"{BASE_URL}/unsubscribe/")
    signer = LinkSigner(world.settings.link_secret(), world.clock)
    assert signer.address(Purpose.UNSUBSCRIBE, token, timedelta(days=1)) == (
        "marie.dupont@example.com"
    )
    assert mailto == "mailto:reservations@agence-du-lac.example?subject=unsubscribe"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    assert (after.status, after.sent_at, after.attempts) == (Status.SENT, START, 1)
    assert (after.approved_by, after.reason, after.last_error) == ("tester", None, None)
    [delivery] = world.deliveries(item.id)
    assert delivery == {
        "attempt": 1,
        "recipient": "marie.dupont@example.com",
        "message_id": after.message_id,
        "actor": "tester",
        "started_at": START,
        "finished_at": START,
        "outcome": "sent",
        "smtp_code": None,
        "detail": None,
    }


def test_a_batch_reuses_one_connection_and_every_message_has_its_own_id(
    database_url: str,
) -> None:
    server = SessionKeepingServer().start()
    world = World(database_url, server)
    try:
        ids = world.guests(1, 2, 3, 4, 5)

        report = world.dispatcher().send(ids)

        assert results(report) == [(i, Result.SENT) for i in ids]
        messages = server.messages()
        assert [m.rcpt_to for m in messages] == [(address_of(n),) for n in range(1, 6)]
        message_ids = [m.message["Message-ID"] for m in messages]
        assert len(set(message_ids)) == 5
        assert message_ids == [world.item(i).message_id for i in ids]
        assert len(server.sessions) == 5
        assert len({m.session for m in messages}) == 1

        # The batch ends with its connection: the next batch opens a new one.
        [later] = world.guests(6)
        world.dispatcher().send([later])
        assert len({m.session for m in server.messages()}) == 2
    finally:
        world.dispose()
        server.stop()


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        pytest.param({"opted_out": True}, "opted_out", id="opted-out"),
        # A confirmation stays with its address: a contact moving to a new one is unconfirmed.
        pytest.param(
            {"email": "new.address@example.com", "confirmed": False},
            "unconfirmed",
            id="moved-to-an-unconfirmed-address",
        ),
        pytest.param({"email": None}, "no_address", id="no-address"),
    ],
)
def test_consent_lost_after_queueing_holds_the_item_without_losing_it(
    world: World, now: dict[str, Any], reason: str
) -> None:
    [item_id] = world.guests(1)
    contact: dict[str, Any] = {"email": address_of(1), "name": "Guest 1"} | now
    world.contact("C-1", **contact)

    report = world.dispatcher().send([item_id])

    assert results(report) == [(item_id, Result.HELD)]
    assert reason in (report.deliveries[0].detail or "")
    assert report.ok  # held for consent is not a failure of sending
    assert world.mail_server.messages() == []
    item = world.item(item_id)
    assert (item.status, item.reason, item.attempts) == (Status.PENDING, reason, 0)
    assert world.deliveries(item_id) == []

    # Not lost: once consent is back, the same item goes out.
    world.contact("C-1", address_of(1), name="Guest 1")
    assert results(world.dispatcher().send([item_id])) == [(item_id, Result.SENT)]
    assert world.item(item_id).reason is None
    assert [m.rcpt_to for m in world.mail_server.messages()] == [(address_of(1),)]


def test_approved_item_whose_consent_is_withdrawn_goes_back_to_pending(world: World) -> None:
    withdrawn, kept = world.guests(1, 2)
    world.approve(withdrawn, kept)
    world.contact("C-1", address_of(1), opted_out=True)

    report = world.dispatcher().dispatch_due()

    assert sorted(results(report)) == [(withdrawn, Result.HELD), (kept, Result.SENT)]
    item = world.item(withdrawn)
    assert (item.status, item.reason) == (Status.PENDING, "opted_out")
    assert [m.rcpt_to for m in world.mail_server.messages()] == [(address_of(2),)]
    # Pending again: the dispatcher no longer sees it.
    assert world.dispatcher().dispatch_due().deliveries == []


def test_send_tab_twice_sends_each_consenting_item_once(world: World) -> None:
    ready = world.guests(1, 2, 3)
    [unconfirmed] = world.guests(4, confirmed=False)

    first = world.dispatcher().send_tab("annecy", "arrival")
    second = world.dispatcher().send_tab("annecy", "arrival")

    assert sorted(results(first)) == sorted(
        [*((i, Result.SENT) for i in ready), (unconfirmed, Result.HELD)]
    )
    assert results(second) == [(unconfirmed, Result.HELD)]
    assert sorted(recipients_of(world)) == [address_of(1), address_of(2), address_of(3)]
    assert [world.item(i).status for i in ready] == [Status.SENT] * 3


@pytest.mark.parametrize("how", ["send", "send_tab", "dispatch_due"])
def test_booking_cancelled_after_approval_is_withdrawn_not_sent(world: World, how: str) -> None:
    [item_id] = world.guests(1)
    world.approve(item_id)
    world.booking("B-1", "C-1", status=BookingStatus.CANCELLED)
    dispatcher = world.dispatcher()

    if how == "send":
        report = dispatcher.send([item_id])
    elif how == "send_tab":
        report = dispatcher.send_tab("annecy", "arrival")
    else:
        report = dispatcher.dispatch_due()

    assert results(report) == [(item_id, Result.WITHDRAWN)]
    assert world.mail_server.messages() == []
    item = world.item(item_id)
    assert (item.status, item.reason, item.attempts) == (Status.WITHDRAWN, "cancelled", 0)
    assert world.deliveries(item_id) == []


def test_items_not_in_a_sendable_state_are_refused(world: World) -> None:
    sent, discarded, pending = world.guests(1, 2, 3)
    assert results(world.dispatcher().send([sent, sent])) == [(sent, Result.SENT)]
    service.discard(world.database, [discarded])

    report = world.dispatcher().send([sent, discarded, 9999])

    assert results(report) == [
        (sent, Result.REFUSED),
        (discarded, Result.REFUSED),
        (9999, Result.REFUSED),
    ]
    details = [d.detail or "" for d in report.deliveries]
    assert "already sent" in details[0]
    assert "discarded" in details[1]
    assert "no item 9999" in details[2]
    assert not report.ok
    assert len(world.mail_server.messages()) == 1
    assert len(world.deliveries(sent)) == 1
    assert world.item(discarded).status is Status.DISCARDED

    # resend is for items a person must decide about, not for pending ones.
    [refusal] = world.dispatcher().resend([pending]).deliveries
    assert refusal.result is Result.REFUSED
    assert "only unknown or failed items" in (refusal.detail or "")
    assert world.item(pending).status is Status.PENDING
    assert len(world.mail_server.messages()) == 1


def test_auto_send_approves_consenting_visible_items_of_its_kind_only(world: World) -> None:
    world.configure(
        agency={
            "delays": {"arrival": 7, "post_departure": 7},
            "auto_send": {"post_departure": True},
        }
    )
    past_stay = {"arrival_on": day("2026-11-17"), "departure_on": day("2026-11-24")}
    world.contact("C-1", address_of(1))
    world.booking("B-1", "C-1", departure_on=day("2026-12-12"))  # arrival reminder only
    world.contact("C-2", address_of(2))
    world.booking("B-2", "C-2", **past_stay)  # post-departure, listed from 12-01
    world.contact("C-3", address_of(3), confirmed=False)
    world.booking("B-3", "C-3", **past_stay)  # post-departure, no consent
    world.contact("C-4", address_of(4))
    world.booking("B-4", "C-4", arrival_on=day("2026-11-18"), departure_on=day("2026-11-25"))
    world.plan()
    world.plan("2026-12-02")  # B-4's post-departure email is listed from tomorrow
    dispatcher = world.dispatcher()

    assert dispatcher.approve_automatic() == 1

    automatic = world.item_of("B-2", "post_departure")
    assert (automatic.status, automatic.approved_by) == (Status.APPROVED, AUTO_SEND)
    assert world.item_of("B-1").status is Status.PENDING
    assert world.item_of("B-3", "post_departure").status is Status.PENDING
    assert world.item_of("B-4", "post_departure").status is Status.PENDING
    assert world.mail_server.messages() == []

    report = dispatcher.dispatch_due()

    assert results(report) == [(automatic.id, Result.SENT)]
    assert [m.rcpt_to for m in world.mail_server.messages()] == [(address_of(2),)]
    assert world.item(automatic.id).approved_by == AUTO_SEND

    world.clock.advance(days=1)
    assert dispatcher.approve_automatic() == 1
    assert results(dispatcher.dispatch_due()) == [
        (world.item_of("B-4", "post_departure").id, Result.SENT)
    ]


def test_auto_send_leaves_the_emails_queued_before_it_was_on_to_staff(world: World) -> None:
    """Issue 11: turning auto_send on must not send what staff were still reviewing."""
    past_stay = {"arrival_on": day("2026-11-17"), "departure_on": day("2026-11-24")}
    world.configure(agency={"delays": {"post_departure": 7}})
    world.contact("C-1", address_of(1))
    world.booking("B-1", "C-1", **past_stay)  # listed from 12-01, while staff review
    world.plan()
    world.configure(agency={"delays": {"post_departure": 7}, "auto_send": {"post_departure": True}})
    world.contact("C-2", address_of(2))
    world.booking("B-2", "C-2", **past_stay)  # queued once auto_send is on
    world.plan()

    assert world.dispatcher().approve_automatic() == 1

    assert world.item_of("B-1", "post_departure").status is Status.PENDING
    assert world.item_of("B-2", "post_departure").approved_by == AUTO_SEND


def test_rate_limit_spaces_an_agencys_messages_evenly(world: World) -> None:
    world.configure(agency={"max_per_minute": 60})
    ids = world.guests(1, 2, 3)

    report = world.dispatcher().send(ids)

    assert report.count(Result.SENT) == 3
    assert world.sleeps == pytest.approx([1.0, 1.0])
    started = [world.deliveries(i)[0]["started_at"] for i in ids]
    assert started == [START + timedelta(seconds=s) for s in (0, 1, 2)]

    # Another process sharing the database right after waits its turn too...
    world.sleeps.clear()
    more = world.guests(4, 5)
    world.approve(*more)
    assert world.dispatcher().dispatch_due().count(Result.SENT) == 2
    assert world.sleeps == pytest.approx([1.0, 1.0])
    # ...but not after a quiet minute.
    world.sleeps.clear()
    world.clock.advance(minutes=1)
    [sixth] = world.guests(6)
    world.dispatcher().send([sixth])
    assert world.sleeps == []
    assert len(world.mail_server.messages()) == 6


def test_summary_is_emailed_to_the_agency_once_a_day(world: World) -> None:
    world.configure(agency={"summary_to": "Direction <direction@agence-du-lac.example>"})
    world.guests(1, 2)
    world.guests(3, confirmed=False)
    dispatcher = world.dispatcher()

    assert dispatcher.send_summary(world.agency) == "direction@agence-du-lac.example"

    [received] = world.mail_server.messages()
    message = received.message
    assert received.rcpt_to == ("direction@agence-du-lac.example",)
    assert str(message["From"]) == SENDER
    assert "Agence du Lac" in message["Subject"]
    assert "2026-12-01" in message["Subject"]
    assert "Rappel arrivées : 3 à envoyer (2 prêts, 1 sans consentement)" in received.part("plain")

    assert dispatcher.send_summary(world.agency) is None
    assert len(world.mail_server.messages()) == 1
    assert dispatcher.send_summary(world.agency, again=True) == "direction@agence-du-lac.example"
    assert len(world.mail_server.messages()) == 2

    world.clock.advance(days=1)
    assert dispatcher.send_summary(world.agency) == "direction@agence-du-lac.example"
    assert len(world.mail_server.messages()) == 3


def test_summary_that_could_not_be_sent_goes_out_when_asked_again(world: World) -> None:
    world.configure(agency={"summary_to": "direction@agence-du-lac.example"})
    world.guests(1)
    world.mail_server.stop()

    with pytest.raises(TransientFailure):
        world.dispatcher().send_summary(world.agency)

    world.mail_server.start()
    # Today's summary never went out: asking again (the next pass) sends it.
    assert world.dispatcher().send_summary(world.agency) == "direction@agence-du-lac.example"
    assert [m.rcpt_to for m in world.mail_server.messages()] == [
        ("direction@agence-du-lac.example",)
    ]


def test_approved_item_is_not_sent_after_its_window_ended(world: World) -> None:
    world.contact("C-1", address_of(1))
    world.booking("B-1", "C-1")  # arrival 12-05: listed until 12-05
    world.contact("C-2", address_of(2))
    world.booking("B-2", "C-2", arrival_on=day("2026-12-08"))
    world.plan()
    late, on_time = world.item_of("B-1").id, world.item_of("B-2").id
    world.approve(late, on_time)
    # 00:30 on 12-06 in Annecy: B-1's window ended at midnight, before the 00:05
    # expiry or the morning's planning pass ran (a retry came due, say).
    world.clock.instant = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)

    report = world.dispatcher().dispatch_due()

    assert (on_time, Result.SENT) in results(report)
    assert (late, Result.SENT) not in results(report)
    assert recipients_of(world) == [address_of(2)]
    assert world.item(late).status is not Status.SENT


@pytest.mark.postgresql
def test_two_dispatchers_at_once_send_every_item_exactly_once(
    postgresql_url: str, mail_server: MailServer
) -> None:
    world = World(postgresql_url, mail_server)
    try:
        ids = world.guests(*range(1, 21))
        world.approve(*ids)
        barrier = threading.Barrier(2)
        reports: list[DispatchReport] = []

        def replica() -> None:
            engine = create_engine(postgresql_url)
            try:
                database = Database(engine, world.clock)
                run = sending.Run(
                    database=database,
                    settings=world.settings,
                    actor="dispatcher",
                    sleep=lambda _s: None,
                )
                barrier.wait()
                reports.append(sending.dispatch_due(run))
            finally:
                engine.dispose()

        threads = [threading.Thread(target=replica) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(reports) == 2
        received = Counter(r for m in mail_server.messages() for r in m.rcpt_to)
        assert received == Counter(address_of(n) for n in range(1, 21))
        assert [world.item(i).status for i in ids] == [Status.SENT] * 20
        assert [len(world.deliveries(i)) for i in ids] == [1] * 20
        assert sum(r.count(Result.SENT) for r in reports) == 20
        # With SKIP LOCKED each replica takes items the other is not sending:
        # neither is told an item is "being sent by another process".
        assert [d for r in reports for d in r.deliveries if d.result is not Result.SENT] == []
    finally:
        world.dispose()


def test_several_connections_share_a_tab_and_send_each_email_once(database_url: str) -> None:
    # The first message is answered once another connection has sent one too.
    server = SessionKeepingServer(hold_until_sessions=2).start()
    world = World(database_url, server)
    try:
        world.configure(mail={"connections": 3, "batch_size": 2})
        ids = world.guests(*range(1, 13))

        report = world.dispatcher().send_tab("annecy", "arrival")

        assert sorted(results(report)) == sorted((i, Result.SENT) for i in ids)
        received = Counter(r for m in server.messages() for r in m.rcpt_to)
        assert received == Counter(address_of(n) for n in range(1, 13))
        # Each connection claims its own batches: more than one SMTP session was used.
        assert len({m.session for m in server.messages()}) > 1
        assert [len(world.deliveries(i)) for i in ids] == [1] * 12
    finally:
        world.dispose()
        server.stop()
