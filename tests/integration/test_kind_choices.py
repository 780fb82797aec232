"""Per-kind consent: a guest refuses one kind of email and keeps the others, on both backends.

The emails go through the real loopback SMTP server; the dispatcher's claim (one
statement) is what holds the refused kind's items.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from factories import day
from integration.dispatch_world import World
from reminders import preferences, registry
from reminders.consent import ConsentReason, Source
from reminders.delivery import Result
from reminders.registry import ConsentRefused
from reminders.service import consent_of

GUEST = "guest1@example.com"


@pytest.fixture
def guest(world: World) -> World:
    """Guest 1 (confirmed): an arrival on 2026-12-05, a stay that ended on 2026-11-20,
    and a balance due on 2026-12-20; balance reminders are required by the agency."""
    world.configure(
        agency={
            "delays": {"arrival": 7, "post_departure": 7, "balance_due": 30},
            "required": {"balance_due": True},
        }
    )
    world.contact("C-1", GUEST, name="Guest 1")
    world.booking("B-1", "C-1", balance_due_on=day("2026-12-20"))
    world.booking(
        "B-2",
        "C-1",
        arrival_on=day("2026-11-13"),
        departure_on=day("2026-11-20"),
        balance_outstanding=Decimal("0"),
    )
    world.plan()
    return world


def choose(world: World, kind: str, receive: bool) -> bool:
    decision = preferences.choose_kind(
        world.database,
        world.settings,
        GUEST,
        kind,
        receive,
        source=Source.CONTACT,
        method="web form",
        actor="contact",
    )
    return decision.changes


def test_a_refused_kind_stays_pending_while_the_others_are_sent(guest: World) -> None:
    assert choose(guest, "post_departure", False)
    arrival = guest.item_of("B-1", "arrival")
    after_stay = guest.item_of("B-2", "post_departure")
    sender = guest.dispatcher()

    sent = sender.send_tab("annecy", "arrival")
    held = sender.send_tab("annecy", "post_departure")

    assert [(d.item_id, d.result) for d in sent.deliveries] == [(arrival.id, Result.SENT)]
    assert held.deliveries == [] or all(d.result is Result.HELD for d in held.deliveries)
    assert [m.message["Subject"] for m in guest.mail_server.to(GUEST)] == [arrival.subject]
    listed = guest.item(after_stay.id)
    assert (listed.status, listed.reason) == ("pending", "kind_refused")
    assert consent_of(listed, guest.clock.now(), guest.settings) is ConsentReason.KIND_REFUSED
    # Asked for by its id, it is held too: never sent, never lost.
    report = sender.send([after_stay.id])
    assert [(d.item_id, d.result) for d in report.deliveries] == [(after_stay.id, Result.HELD)]
    assert len(guest.mail_server.to(GUEST)) == 1
    assert guest.item(after_stay.id).status == "pending"


def test_accepting_the_kind_again_makes_its_item_sendable_in_its_window(guest: World) -> None:
    choose(guest, "post_departure", False)
    after_stay = guest.item_of("B-2", "post_departure")
    guest.dispatcher().send_tab("annecy", "post_departure")
    assert guest.item(after_stay.id).reason == "kind_refused"

    assert choose(guest, "post_departure", True)
    report = guest.dispatcher().send_tab("annecy", "post_departure")

    assert [(d.item_id, d.result) for d in report.deliveries] == [(after_stay.id, Result.SENT)]
    assert guest.item(after_stay.id).status == "sent"


def test_the_same_choice_twice_changes_nothing_and_records_one_event(guest: World) -> None:
    assert choose(guest, "post_departure", False)
    assert not choose(guest, "post_departure", False)
    assert not choose(guest, "arrival", True)  # never refused: receives already

    found = registry.status(guest.database, guest.settings, GUEST)

    assert found.kinds == {"post_departure": False}
    kind_events = [e for e in found.history if e.kind]
    assert [(e.action, e.kind) for e in kind_events] == [("refuse_kind", "post_departure")]


def test_a_required_kind_cannot_be_refused(guest: World) -> None:
    before = registry.status(guest.database, guest.settings, GUEST)

    with pytest.raises(ConsentRefused, match="'balance_due' cannot be refused"):
        choose(guest, "balance_due", False)

    after = registry.status(guest.database, guest.settings, GUEST)
    assert (after.kinds, len(after.history)) == (before.kinds, len(before.history))
    page = preferences.settings_of(guest.database, guest.settings, GUEST, "en")
    by_kind = {s.kind: (s.receive, s.required) for s in page.switches}
    assert by_kind == {
        "arrival": (True, False),
        "post_departure": (True, False),
        "balance_due": (True, True),
    }
    report = guest.dispatcher().send_tab("annecy", "balance_due")
    assert [d.result for d in report.deliveries] == [Result.SENT]


def test_a_refusal_recorded_before_the_kind_became_required_does_not_hold_it(
    guest: World,
) -> None:
    guest.configure(agency={"delays": {"arrival": 7, "post_departure": 7, "balance_due": 30}})
    choose(guest, "balance_due", False)
    guest.configure(
        agency={
            "delays": {"arrival": 7, "post_departure": 7, "balance_due": 30},
            "required": {"balance_due": True},
        }
    )

    report = guest.dispatcher().send_tab("annecy", "balance_due")

    assert [d.result for d in report.deliveries] == [Result.SENT]


def test_an_unknown_kind_or_a_bounce_cannot_choose(guest: World) -> None:
    with pytest.raises(preferences.UnknownKind, match="option_expiry"):
        choose(guest, "option_expiry", False)  # this agency does not send it
    with pytest.raises(ConsentRefused, match="system does not choose"):
        preferences.choose_kind(
            guest.database,
            guest.settings,
            GUEST,
            "arrival",
            False,
            source=Source.SYSTEM,
            method="bounce",
            actor="bounces import",
        )


def test_history_and_report_show_each_change(guest: World) -> None:
    choose(guest, "post_departure", False)
    guest.clock.advance(minutes=5)
    choose(guest, "post_departure", True)
    guest.clock.advance(minutes=5)
    choose(guest, "arrival", False)

    found = registry.status(guest.database, guest.settings, GUEST)
    refusals = registry.report(guest.database, guest.settings, kind="arrival")

    assert [(e.action, e.source, e.method, e.kind) for e in found.history if e.kind] == [
        ("refuse_kind", "contact", "web form", "post_departure"),
        ("accept_kind", "contact", "web form", "post_departure"),
        ("refuse_kind", "contact", "web form", "arrival"),
    ]
    assert found.kinds == {"arrival": False, "post_departure": True}
    assert found.consent is ConsentReason.OK  # the address itself still consents
    assert [(r["address"], r["kind"], r["source"]) for r in refusals] == [
        (GUEST, "arrival", "contact")
    ]
    assert registry.report(guest.database, guest.settings, kind="post_departure") == []
    assert registry.report(guest.database, guest.settings) == []  # no one opted out of everything
