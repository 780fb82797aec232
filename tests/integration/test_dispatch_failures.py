"""Sending when things go wrong, on SQLite and PostgreSQL, against a real SMTP server.

The server is stopped, refuses with 4xx and 5xx replies, or never gives its final
reply; a sending process dies mid-send. Whatever happens, nothing is lost and
nothing is sent twice without a person deciding. Every test runs against a server
that offers PIPELINING (RFC 2920) and one that does not: the transport takes a
different path for each.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from integration.dispatch_world import START, World, address_of, results
from mail_server import MailServer
from reminders.consent import ConsentReason
from reminders.delivery import Delivery, Result, Scope
from reminders.dispatch import kind_rules, send_rules
from reminders.leases import lease_length
from reminders.queue import Status
from reminders.sending import mark_sent
from reminders.service import consent_of

RETRY_AFTER = timedelta(seconds=60)


@pytest.fixture(params=[True, False], ids=["pipelining", "one-by-one"])
def mail_server(request: pytest.FixtureRequest) -> Iterator[MailServer]:
    server = MailServer(pipelining=request.param).start()
    try:
        yield server
    finally:
        server.stop()


def outcomes(world: World, item_id: int) -> list[tuple[str | None, int | None]]:
    return [(d["outcome"], d["smtp_code"]) for d in world.deliveries(item_id)]


def recipients(world: World) -> Counter[str]:
    return Counter(r for m in world.mail_server.messages() for r in m.rcpt_to)


# -- the server is unreachable -----------------------------------------------------------


def test_unreachable_server_stops_the_batch_and_the_daemon_sends_everything_later(
    world: World,
) -> None:
    ids = first, second, third = world.guests(1, 2, 3)
    world.mail_server.stop()

    report = world.dispatcher().send(ids)

    assert results(report) == [
        (first, Result.RETRY),
        (second, Result.NOT_TRIED),
        (third, Result.NOT_TRIED),
    ]
    assert report.stopped is not None and "cannot reach the mail server" in report.stopped
    assert not report.ok
    assert world.mail_server.messages() == []
    retry_at = START + RETRY_AFTER
    assert report.deliveries[0].next_attempt_at == retry_at
    tried = world.item(first)
    assert (tried.status, tried.attempts, tried.next_attempt_at, tried.reason) == (
        Status.APPROVED,
        1,
        retry_at,
        "transient",
    )
    assert outcomes(world, first) == [("transient", None)]
    # Staff asked for all three: the untried ones wait, approved, for the dispatcher.
    untried = [world.item(i) for i in (second, third)]
    assert [(i.status, i.attempts, i.next_attempt_at) for i in untried] == [
        (Status.APPROVED, 0, None),
        (Status.APPROVED, 0, None),
    ]
    assert world.deliveries(second) == world.deliveries(third) == []

    world.mail_server.start()
    world.clock.instant = retry_at - timedelta(seconds=1)
    early = world.dispatcher().dispatch_due()

    assert sorted(results(early)) == [(second, Result.SENT), (third, Result.SENT)]

    world.clock.instant = retry_at
    late = world.dispatcher().dispatch_due()

    assert results(late) == [(first, Result.SENT)]
    assert recipients(world) == Counter(address_of(n) for n in (1, 2, 3))
    assert [world.received_by_item(i) for i in ids] == [1, 1, 1]
    assert [world.item(i).status for i in ids] == [Status.SENT] * 3
    assert world.item(first).attempts == 2


def test_items_not_tried_are_approved_for_later_unless_consent_is_missing(world: World) -> None:
    first, second = world.guests(1, 2)
    [unconfirmed] = world.guests(3, confirmed=False)
    world.mail_server.stop()

    report = world.dispatcher().send([first, second, unconfirmed])

    assert results(report) == [
        (unconfirmed, Result.HELD),
        (first, Result.RETRY),
        (second, Result.NOT_TRIED),
    ]
    held, _retry, approved = report.deliveries
    assert "approved" in (approved.detail or "")
    assert "unconfirmed" in (held.detail or "")
    assert world.item(second).status is Status.APPROVED
    assert world.item(unconfirmed).status is Status.PENDING

    world.mail_server.start()
    assert results(world.dispatcher().dispatch_due()) == [(second, Result.SENT)]
    assert world.item(unconfirmed).status is Status.PENDING
    assert recipients(world) == Counter([address_of(2)])


def test_server_going_away_mid_batch_keeps_what_was_sent(world: World) -> None:
    # One email a batch, so the outcome of the first is known before the second is claimed.
    world.configure(mail={"batch_size": 1})
    ids = first, second, third = world.guests(1, 2, 3)

    def stop_after_the_first(delivery: Delivery) -> None:
        if delivery.item_id == first:
            world.mail_server.stop()

    report = world.dispatcher(on_result=stop_after_the_first).send(ids)

    assert results(report) == [
        (first, Result.SENT),
        (second, Result.RETRY),
        (third, Result.NOT_TRIED),
    ]
    assert report.stopped is not None
    assert recipients(world) == Counter([address_of(1)])
    assert [world.item(i).status for i in ids] == [Status.SENT, Status.APPROVED, Status.APPROVED]
    assert world.item(second).next_attempt_at is not None


# -- the server refuses for now: 4xx ------------------------------------------------------


def test_temporary_refusal_is_retried_when_due_and_the_batch_goes_on(world: World) -> None:
    refused, other = world.guests(1, 2)
    world.mail_server.refuse_rcpt(address_of(1), "451 4.3.0 try again later")

    report = world.dispatcher().send([refused, other])

    assert results(report) == [(refused, Result.RETRY), (other, Result.SENT)]
    assert report.stopped is None
    retry_at = START + RETRY_AFTER
    item = world.item(refused)
    assert (item.status, item.attempts, item.next_attempt_at, item.reason) == (
        Status.APPROVED,
        1,
        retry_at,
        "transient",
    )
    assert item.last_error is not None and "451 4.3.0 try again later" in item.last_error
    assert outcomes(world, refused) == [("transient", 451)]

    world.clock.instant = retry_at - timedelta(seconds=1)
    assert world.dispatcher().dispatch_due().deliveries == []

    world.clock.instant = retry_at
    again = world.dispatcher().dispatch_due()

    assert results(again) == [(refused, Result.SENT)]
    item = world.item(refused)
    assert (item.status, item.attempts, item.last_error) == (Status.SENT, 2, None)
    assert outcomes(world, refused) == [("transient", 451), ("sent", None)]
    first_id, second_id = (d["message_id"] for d in world.deliveries(refused))
    assert first_id != second_id == item.message_id
    assert world.received_by_item(refused) == 1
    assert recipients(world) == Counter([address_of(1), address_of(2)])


def test_a_person_sends_an_item_waiting_for_its_retry_at_once(world: World) -> None:
    [item_id] = world.guests(1)
    world.mail_server.refuse_rcpt(address_of(1), "451 4.3.0 try again later")
    assert results(world.dispatcher().send([item_id])) == [(item_id, Result.RETRY)]

    report = world.dispatcher().send([item_id])

    assert results(report) == [(item_id, Result.SENT)]
    assert world.item(item_id).attempts == 2
    assert recipients(world) == Counter([address_of(1)])


def test_retries_used_up_fail_the_item(world: World) -> None:
    world.configure(mail={"max_attempts": 3})
    [item_id] = world.guests(1)
    world.mail_server.refuse_rcpt(address_of(1), *["451 4.2.1 mailbox busy"] * 3)

    first = world.dispatcher().send([item_id])
    # The wait doubles after each failure.
    world.clock.instant = START + RETRY_AFTER
    second = world.dispatcher().dispatch_due()
    world.clock.instant = START + 3 * RETRY_AFTER
    third = world.dispatcher().dispatch_due()

    assert [results(r) for r in (first, second, third)] == [
        [(item_id, Result.RETRY)],
        [(item_id, Result.RETRY)],
        [(item_id, Result.FAILED)],
    ]
    assert second.deliveries[0].next_attempt_at == START + 3 * RETRY_AFTER
    item = world.item(item_id)
    assert (item.status, item.attempts, item.next_attempt_at) == (Status.FAILED, 3, None)
    assert item.last_error is not None
    assert "retries used up" in item.last_error and "451 4.2.1 mailbox busy" in item.last_error
    assert outcomes(world, item_id) == [("transient", 451)] * 3
    assert world.mail_server.messages() == []
    world.clock.advance(days=1)
    assert world.dispatcher().dispatch_due().deliveries == []
    # A person may still decide to send it again.
    assert results(world.dispatcher().resend([item_id])) == [(item_id, Result.SENT)]


# -- the server refuses for good: 5xx -----------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "opts_out"),
    [
        pytest.param(
            "550 5.1.1 <guest1@example.com>: Recipient address rejected: User unknown",
            True,
            id="no-such-mailbox",
        ),
        pytest.param("550 5.7.1 spam", False, id="refused-as-spam"),
    ],
)
def test_permanent_refusal_fails_the_item(world: World, reply: str, opts_out: bool) -> None:
    [item_id] = world.guests(1)
    # Another contact uses the same address, written in other letter case.
    world.contact("C-9", "Guest1@Example.com")
    world.booking("B-9", "C-9")
    world.plan()
    sharing = world.item_of("B-9").id
    world.mail_server.refuse_rcpt(address_of(1), reply)

    report = world.dispatcher().send([item_id])

    assert results(report) == [(item_id, Result.FAILED)]
    item = world.item(item_id)
    assert (item.status, item.reason, item.attempts) == (Status.FAILED, "permanent", 1)
    assert item.last_error is not None and reply in item.last_error
    assert outcomes(world, item_id) == [("permanent", 550)]
    assert world.mail_server.messages() == []
    world.clock.advance(days=1)
    assert world.dispatcher().dispatch_due().deliveries == []

    # The import's confirmations come first in the history; only the opt-outs matter here.
    events = [e for e in world.consent_events() if e["action"] == "opt_out"]
    if opts_out:
        assert world.opted_out_refs() == {"C-1", "C-9"}
        consent = consent_of(world.item(sharing), world.clock.now(), world.settings)
        assert consent is ConsentReason.OPTED_OUT
        assert [(e["address"], e["action"], e["source"], e["actor"]) for e in events] == [
            ("guest1@example.com", "opt_out", "system", "dispatcher")
        ]
        assert "550" in (events[0]["detail"] or "")
        assert "opted out" in (report.deliveries[0].detail or "")
        assert results(world.dispatcher().send([sharing])) == [(sharing, Result.HELD)]
    else:
        assert world.opted_out_refs() == set()
        consent = consent_of(world.item(sharing), world.clock.now(), world.settings)
        assert consent is ConsentReason.OK
        assert events == []
        assert results(world.dispatcher().send([sharing])) == [(sharing, Result.SENT)]


def test_message_refused_after_data_fails_and_the_batch_goes_on(world: World) -> None:
    refused, other = world.guests(1, 2)
    world.mail_server.data_replies.append("554 5.6.0 rejected")

    report = world.dispatcher().send([refused, other])

    assert results(report) == [(refused, Result.FAILED), (other, Result.SENT)]
    item = world.item(refused)
    assert (item.status, item.reason) == (Status.FAILED, "permanent")
    assert item.last_error is not None and "554 5.6.0 rejected" in item.last_error
    assert outcomes(world, refused) == [("permanent", 554)]
    assert world.opted_out_refs() == set()
    assert recipients(world) == Counter([address_of(2)])


# -- the final reply never comes -----------------------------------------------------------


def test_lost_final_reply_leaves_the_item_unknown_until_a_person_decides(world: World) -> None:
    world.configure(smtp={"timeout_s": 1})
    resent, marked = world.guests(1, 2)
    world.mail_server.stall_s = 3

    report = world.dispatcher().send([resent, marked])

    assert results(report) == [(resent, Result.UNKNOWN), (marked, Result.UNKNOWN)]
    assert report.stopped is None
    for item_id in (resent, marked):
        item = world.item(item_id)
        assert (item.status, item.attempts) == (Status.UNKNOWN, 1)
        assert outcomes(world, item_id) == [("unknown", None)]
    first_message_id = {i: world.item(i).message_id for i in (resent, marked)}
    world.mail_server.stall_s = 0

    # Never sent again by itself...
    world.clock.advance(hours=1)
    later = world.dispatcher().dispatch_due()
    assert (later.deliveries, later.recovered) == ([], [])
    assert world.item(resent).status is Status.UNKNOWN
    # ...nor by a plain send: a person must choose resend or mark-sent.
    [refusal] = world.dispatcher().send([resent]).deliveries
    assert refusal.result is Result.REFUSED and "resend" in (refusal.detail or "")

    resend = world.dispatcher().resend([resent])

    assert results(resend) == [(resent, Result.SENT)]
    item = world.item(resent)
    assert (item.status, item.attempts) == (Status.SENT, 2)
    assert item.message_id != first_message_id[resent]
    assert world.received_by_item(resent) == 1
    assert outcomes(world, resent) == [("unknown", None), ("sent", None)]

    settled = mark_sent(world.database, marked, "tester")

    assert (settled.status, settled.sent_at) == (Status.SENT, world.clock.now())
    assert settled.reason == "marked sent by tester"
    assert settled.message_id == first_message_id[marked]
    assert outcomes(world, marked) == [("unknown", None)]
    # Whatever reached the server for it is the first, uncertain attempt only.
    assert {
        m.message["Message-ID"] for m in world.mail_server.messages() if address_of(2) in m.rcpt_to
    } <= {first_message_id[marked]}


# -- a sending process died ----------------------------------------------------------------


def dead_pid() -> int:
    """Return the pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def claim_as(world: World, item_id: int, claimant: str) -> None:
    """Leave an approved item in `sending`, claimed by `claimant`, as a crash would."""
    now = world.clock.now()
    rules = send_rules(world.settings, now, kind_rules(world.settings))
    with world.database.transaction() as store:
        [claimed] = store.claim(
            Scope(statuses=frozenset({Status.APPROVED}), ids=(item_id,)),
            rules,
            claimant=claimant,
            lease_until=now + lease_length(world.settings.smtp.timeout_s),
            actor="dispatcher",
            limit=1,
        )
    assert claimed.id == item_id


@pytest.mark.parametrize("finder", ["recover_abandoned", "send"])
def test_claim_of_a_dead_process_on_this_host_becomes_unknown(world: World, finder: str) -> None:
    abandoned, other = world.guests(1, 2)
    world.approve(abandoned)
    claimant = f"{socket.gethostname()}:{dead_pid()}"
    claim_as(world, abandoned, claimant)
    dispatcher = world.dispatcher()

    if finder == "recover_abandoned":
        recovered = dispatcher.recover_abandoned()
    else:
        report = dispatcher.send([other])
        assert results(report) == [(other, Result.SENT)]
        recovered = report.recovered

    assert recovered == [abandoned]
    item = world.item(abandoned)
    assert (item.status, item.reason) == (Status.UNKNOWN, "interrupted")
    assert item.last_error is not None
    assert claimant in item.last_error and f"reminders resend {abandoned}" in item.last_error
    [delivery] = world.deliveries(abandoned)
    assert (delivery["outcome"], delivery["finished_at"]) == ("unknown", START)

    after = world.dispatcher().dispatch_due()

    assert (after.deliveries, after.recovered) == ([], [])
    assert address_of(1) not in recipients(world)
    assert world.item(abandoned).status is Status.UNKNOWN


@pytest.mark.parametrize(
    "claimant",
    [
        pytest.param(lambda: "replica-2.example:4242", id="another-host"),
        pytest.param(lambda: f"{socket.gethostname()}:{os.getppid()}", id="live-process-here"),
    ],
)
def test_claim_of_a_process_that_may_be_alive_is_left_alone_until_stale(
    world: World, claimant: Callable[[], str]
) -> None:
    [item_id] = world.guests(1)
    world.approve(item_id)
    claim_as(world, item_id, claimant())
    dispatcher = world.dispatcher()

    assert dispatcher.recover_abandoned() == []
    [busy] = world.dispatcher().send([item_id]).deliveries
    assert busy.result is Result.TAKEN and "sent by another process" in (busy.detail or "")
    # smtp.timeout_s is 5: past 4 * 5 + 60 seconds no SMTP transaction can still be running.
    world.clock.advance(seconds=80)
    assert dispatcher.recover_abandoned() == []
    assert world.dispatcher().dispatch_due().deliveries == []
    assert world.item(item_id).status is Status.SENDING

    world.clock.advance(seconds=1)

    assert dispatcher.recover_abandoned() == [item_id]
    assert world.item(item_id).status is Status.UNKNOWN
    assert outcomes(world, item_id) == [("unknown", None)]
    assert world.mail_server.messages() == []


def test_an_expired_lease_of_this_very_process_is_recovered_too(world: World) -> None:
    """An item this process left in sending (say its settlement failed) is not skipped for ever."""
    [item_id] = world.guests(1)
    world.approve(item_id)
    sender = world.dispatcher()
    claim_as(world, item_id, sender.claimant)

    assert sender.recover_abandoned() == []  # its lease still runs
    world.clock.advance(seconds=81)  # 4 × smtp.timeout_s (5) + 60 s

    assert sender.recover_abandoned() == [item_id]
    item = world.item(item_id)
    assert (item.status, item.reason) == (Status.UNKNOWN, "interrupted")
    assert item.message_id is not None and item.message_id in (item.last_error or "")
    assert world.mail_server.messages() == []
