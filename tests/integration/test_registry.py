"""The consent registry on SQLite and PostgreSQL: one entry per address, an append-only
history, the rules of who may change what, confirmation links, imports, the report, and
migration 0003 from data the previous revision wrote.

Confirmation emails go through a real SMTP server; links are read from the messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError

from factories import MovableClock
from integration.dispatch_world import BASE_URL, START, World, address_of, settings_for
from mail_server import MailServer, Received
from reminders import registry
from reminders.bookings import Contact
from reminders.consent import Action, ConsentReason, Source, state_of
from reminders.database import _alembic_config, check_schema, create_engine, upgrade
from reminders.errors import UsageError
from reminders.mailer import DeliveryError, mailer_for
from reminders.registry import ConsentRefused, UsedLink
from reminders.schema import AddressRow, ConsentEventRow, ContactRow, DeliveryRow
from reminders.service import consent_of
from reminders.store import Database, Store
from reminders.tokens import ExpiredLink, InvalidLink, LinkSigner, Purpose

APPEND_ONLY = "consent_events is append-only"
#: what a refused change of the history raises: SQLite's RAISE(ABORT) is a constraint
#: violation, PostgreSQL's RAISE EXCEPTION (SQLSTATE P0001) reaches SQLAlchemy as this
REFUSED_BY: dict[str, type[DBAPIError]] = {
    "sqlite": IntegrityError,
    "postgresql": ProgrammingError,
}
PARIS = ZoneInfo("Europe/Paris")


# -- helpers ------------------------------------------------------------------------------


def contact(
    ref: str,
    email: str | None,
    *,
    confirmed: bool = True,
    opted_out: bool = False,
    name: str = "Guest",
) -> Contact:
    return Contact(
        ref=ref,
        agency="annecy",
        name=name,
        email=email,
        locale="fr",
        email_confirmed=confirmed,
        email_opt_out=opted_out,
    )


def import_contacts(world: World, *contacts: Contact) -> int:
    """Import contacts as `reminders import contacts` does; return the consent changes."""
    with world.database.transaction() as store:
        return registry.import_contacts(store, contacts, world.clock.now())[1]


def status(world: World, address: str) -> registry.AddressStatus:
    return registry.status(world.database, world.settings, address)


def history(world: World, address: str) -> list[tuple[str, str, str, str]]:
    return [(e.action, e.source, e.method, e.actor) for e in status(world, address).history]


def signer(world: World, secret: str | None = None) -> LinkSigner:
    return LinkSigner(secret or world.settings.link_secret(), world.clock)


def staff(world: World, address: str, action: Action, **options: Any) -> None:
    options.setdefault("method", "phone")
    options.setdefault("actor", "Camille")
    registry.record_by_staff(world.database, address, action, **options)


def unsubscribe(world: World, address: str) -> None:
    token = signer(world).sign(Purpose.UNSUBSCRIBE, address)
    registry.unsubscribe(world.database, world.settings, signer(world), token, method="one-click")


def bounce(world: World, address: str) -> None:
    with world.database.transaction() as store:
        registry.change(
            store,
            address,
            Action.OPT_OUT,
            Source.SYSTEM,
            method="bounce",
            actor="bounces",
            now=world.clock.now(),
            detail="550 5.1.1 user unknown",
        )


def opt_out_by(world: World, source: Source, address: str) -> None:
    """Opt `address` (whose contact is C-1) out the way `source` does."""
    match source:
        case Source.AGENT:
            staff(world, address, Action.OPT_OUT)
        case Source.CONTACT:
            unsubscribe(world, address)
        case Source.SYSTEM:
            bounce(world, address)
        case Source.IMPORT:
            import_contacts(world, contact("C-1", address, opted_out=True))


def send_confirmation(world: World, address: str, by: Source = Source.AGENT) -> str:
    who = {"actor": "Camille", "method": "cli"} if by is Source.AGENT else {
        "actor": "contact", "method": "web form"
    }  # fmt: skip
    return registry.send_confirmation(
        world.database, world.settings, mailer_for(world.settings), address, by=by, **who
    )


def confirm_token(received: Received) -> str:
    [url] = re.findall(rf"{re.escape(BASE_URL)}/confirm/(\S+)", received.part("plain"))
    return str(url)


def unsubscribe_token(received: Received) -> str:
    url, _mailto = re.findall(r"<([^>]+)>", str(received.message["List-Unsubscribe"]))
    return str(url).removeprefix(f"{BASE_URL}/unsubscribe/")


def confirm(world: World, token: str) -> registry.AddressStatus:
    return registry.confirm(world.database, world.settings, signer(world), token)


def snapshot(world: World, address: str) -> tuple[object, ...]:
    """What a failed request must leave as it was: the entry, its history, its links."""
    found = status(world, address)
    with world.engine.connect() as connection:
        links = connection.execute(text("SELECT nonce_hash, used_at FROM confirmations")).all()
    return found.consent, found.record, found.history, sorted(links)


def registry_rows(world: World) -> list[tuple[str, str]]:
    with world.engine.connect() as connection:
        query = select(AddressRow.address, AddressRow.address_key).order_by(AddressRow.id)
        return [(a, k) for a, k in connection.execute(query)]


def address_ids(world: World) -> dict[str, int | None]:
    with world.engine.connect() as connection:
        return dict(connection.execute(select(ContactRow.ref, ContactRow.address_id)).all())


# -- one entry per address ----------------------------------------------------------------


def test_two_spellings_differing_in_case_share_one_entry(world: World) -> None:
    import_contacts(
        world,
        contact("C-1", "Marie.Dupont@Example.fr", name="Marie Dupont"),
        contact("C-2", "marie.dupont@example.FR", name="Marie D."),
    )
    world.booking("B-1", "C-1")
    world.booking("B-2", "C-2")
    world.plan()

    assert [key for _address, key in registry_rows(world)] == ["marie.dupont@example.fr"]
    ids = address_ids(world)
    assert ids["C-1"] == ids["C-2"] is not None
    now = world.clock.now()
    for ref in ("B-1", "B-2"):
        assert consent_of(world.item_of(ref), now, world.settings) is ConsentReason.OK

    staff(world, "marie.dupont@example.FR", Action.OPT_OUT, method="phone")

    for ref in ("B-1", "B-2"):
        assert consent_of(world.item_of(ref), now, world.settings) is ConsentReason.OPTED_OUT
    first, second = (
        status(world, "Marie.Dupont@Example.fr"),
        status(world, "MARIE.DUPONT@example.fr"),
    )
    assert first == second
    assert first.address in ("Marie.Dupont@example.fr", "marie.dupont@example.fr")
    assert (first.consent, first.record.opted_out_by) == (ConsentReason.OPTED_OUT, Source.AGENT)
    assert sorted(first.contacts) == [("Marie D.", "annecy"), ("Marie Dupont", "annecy")]
    assert [(e.action, e.source) for e in first.history] == [
        (Action.CONFIRM, Source.IMPORT),
        (Action.OPT_OUT, Source.AGENT),
    ]


def test_the_entry_keeps_the_spelling_first_seen_in_a_file(world: World) -> None:
    # schema.AddressRow.address: "normalised ..., as first seen" (migration 0003 does so).
    import_contacts(
        world,
        contact("C-1", "Marie.Dupont@Example.fr"),
        contact("C-2", "marie.dupont@example.FR"),
    )

    assert registry_rows(world) == [("Marie.Dupont@example.fr", "marie.dupont@example.fr")]


def test_a_second_spelling_imported_later_joins_the_existing_entry(world: World) -> None:
    import_contacts(world, contact("C-1", "Marie.Dupont@Example.fr", confirmed=False))
    staff(world, "Marie.Dupont@Example.fr", Action.OPT_OUT)
    world.clock.advance(days=1)

    import_contacts(world, contact("C-2", "MARIE.dupont@example.fr", confirmed=False))

    assert registry_rows(world) == [("Marie.Dupont@example.fr", "marie.dupont@example.fr")]
    ids = address_ids(world)
    assert ids["C-1"] == ids["C-2"]
    assert status(world, "MARIE.dupont@example.fr").consent is ConsentReason.OPTED_OUT


def test_plus_tags_and_dots_stay_distinct_entries(world: World) -> None:
    addresses = ["jean@example.com", "jean+ete@example.com", "j.ean@example.com"]
    import_contacts(world, *(contact(f"C-{n}", a) for n, a in enumerate(addresses, 1)))

    staff(world, "jean@example.com", Action.OPT_OUT)

    assert sorted(a for a, _k in registry_rows(world)) == sorted(addresses)
    assert len(set(address_ids(world).values())) == 3
    assert [status(world, a).consent for a in addresses] == [
        ConsentReason.OPTED_OUT,
        ConsentReason.OK,
        ConsentReason.OK,
    ]


# -- the history: append-only -------------------------------------------------------------


def _some_history(world: World) -> list[dict[str, Any]]:
    import_contacts(world, contact("C-1", "marie@example.com"))
    staff(world, "marie@example.com", Action.OPT_OUT)
    events = world.consent_events()
    assert len(events) == 2
    return events


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("UPDATE consent_events SET actor = 'someone else'", id="update-all"),
        pytest.param(
            "UPDATE consent_events SET occurred_at = recorded_at WHERE action = 'opt_out'",
            id="update-one",
        ),
        pytest.param("DELETE FROM consent_events WHERE action = 'opt_out'", id="delete-one"),
        pytest.param("DELETE FROM consent_events", id="delete-all"),
    ],
)
def test_the_database_refuses_to_change_the_history(world: World, statement: str) -> None:
    before = _some_history(world)

    refused = REFUSED_BY[world.engine.dialect.name]
    with pytest.raises(refused, match=APPEND_ONLY), world.engine.begin() as connection:
        connection.execute(text(statement))

    assert world.consent_events() == before


@pytest.mark.postgresql
def test_postgresql_refuses_to_truncate_the_history(
    postgresql_url: str, mail_server: MailServer
) -> None:
    # SQLite has no TRUNCATE: its `DELETE FROM` without WHERE is refused above.
    world = World(postgresql_url, mail_server)
    try:
        before = _some_history(world)

        with (
            pytest.raises(ProgrammingError, match=APPEND_ONLY),
            world.engine.begin() as connection,
        ):
            connection.execute(text("TRUNCATE consent_events"))

        assert world.consent_events() == before
    finally:
        world.dispose()


def test_every_registry_change_only_appends_to_the_history(world: World) -> None:
    address = "marie@example.com"
    import_contacts(world, contact("C-1", address, opted_out=True))
    seen = world.consent_events()

    def appended() -> list[dict[str, Any]]:
        nonlocal seen
        now = world.consent_events()
        assert now[: len(seen)] == seen
        new, seen = now[len(seen) :], now
        return new

    staff(world, address, Action.OPT_IN)
    staff(world, address, Action.OPT_OUT, method="paper form")
    unsubscribe(world, address)
    send_confirmation(world, address, by=Source.CONTACT)
    confirm(world, confirm_token(world.mail_server.wait_for(1)[0]))
    bounce(world, address)

    assert [(e["action"], e["source"]) for e in appended()] == [
        ("opt_in", "agent"),
        ("opt_out", "agent"),
        ("opt_out", "contact"),
        ("send_confirmation", "contact"),
        ("confirm", "contact"),
        ("opt_out", "system"),
    ]


# -- the history: what it keeps -------------------------------------------------------------


def test_a_staff_opt_out_keeps_its_past_date_and_when_it_was_recorded(world: World) -> None:
    import_contacts(world, contact("C-1", "marie@example.com"))
    world.clock.advance(days=3, hours=2)
    paper_form = START + timedelta(days=1, hours=5)

    staff(world, "Marie@Example.com", Action.OPT_OUT, method="paper form", actor="Camille",
          occurred_at=paper_form)  # fmt: skip

    found = status(world, "marie@example.com")
    imported, opted_out = found.history
    assert (imported.action, imported.source, imported.method, imported.actor) == (
        Action.CONFIRM, Source.IMPORT, "csv import", "import"
    )  # fmt: skip
    assert imported.occurred_at == imported.recorded_at == START
    assert opted_out.address == "marie@example.com"
    assert (opted_out.action, opted_out.source, opted_out.method, opted_out.actor) == (
        Action.OPT_OUT, Source.AGENT, "paper form", "Camille"
    )  # fmt: skip
    assert opted_out.occurred_at == paper_form
    assert opted_out.recorded_at == world.clock.now() == START + timedelta(days=3, hours=2)
    assert found.record.opted_out_at == paper_form


def test_a_back_dated_event_takes_its_place_in_the_history(world: World) -> None:
    import_contacts(world, contact("C-1", "marie@example.com"))
    world.clock.advance(days=3)
    # A paper form signed the day before the contacts file was imported.
    paper_form = START - timedelta(days=1)

    staff(world, "marie@example.com", Action.OPT_OUT, method="paper form",
          occurred_at=paper_form)  # fmt: skip

    found = status(world, "marie@example.com")
    assert [(e.action, e.occurred_at, e.recorded_at) for e in found.history] == [
        (Action.OPT_OUT, paper_form, START + timedelta(days=3)),
        (Action.CONFIRM, START, START),
    ]
    assert (found.consent, found.record.opted_out_at) == (ConsentReason.OPTED_OUT, paper_form)


def test_a_past_date_given_in_the_agencys_zone_keeps_its_instant(world: World) -> None:
    import_contacts(world, contact("C-1", "marie@example.com"))
    world.clock.advance(days=3)
    # As `consent opt-out --at 2026-12-02T15:30` reads it: in the agency's zone.
    paper_form = datetime(2026, 12, 2, 15, 30, tzinfo=PARIS)

    staff(world, "marie@example.com", Action.OPT_OUT, method="paper form",
          occurred_at=paper_form)  # fmt: skip

    found = status(world, "marie@example.com")
    assert found.history[-1].occurred_at == paper_form
    assert found.record.opted_out_at == paper_form
    assert registry.report(world.database, world.settings)[0]["occurred_at"] == paper_form


def test_a_staff_date_in_the_future_is_refused(world: World) -> None:
    import_contacts(world, contact("C-1", "marie@example.com"))
    before = snapshot(world, "marie@example.com")

    with pytest.raises(UsageError, match="in the future"):
        staff(world, "marie@example.com", Action.OPT_OUT,
              occurred_at=world.clock.now() + timedelta(minutes=1))  # fmt: skip

    assert snapshot(world, "marie@example.com") == before


def test_an_opt_out_recorded_before_the_contact_is_imported_applies_to_it(world: World) -> None:
    staff(world, "Marie@Example.com", Action.OPT_OUT)

    import_contacts(world, contact("C-1", "marie@example.com"))

    found = status(world, "marie@example.com")
    assert found.consent is ConsentReason.OPTED_OUT
    assert found.contacts == [("Guest", "annecy")]


# -- who may opt an address back in ---------------------------------------------------------


@pytest.mark.parametrize("source", [Source.AGENT, Source.IMPORT], ids=lambda s: f"{s}-opt-out")
def test_staff_may_opt_back_in_an_agent_or_import_opt_out(world: World, source: Source) -> None:
    import_contacts(world, contact("C-1", "marie@example.com"))
    opt_out_by(world, source, "marie@example.com")
    assert status(world, "marie@example.com").record.opted_out_by is source

    staff(world, "Marie@example.com", Action.OPT_IN, method="phone")

    found = status(world, "marie@example.com")
    assert (found.consent, found.record.opted_out_by) == (ConsentReason.OK, None)
    assert (found.history[-1].action, found.history[-1].source) == (Action.OPT_IN, Source.AGENT)


@pytest.mark.parametrize("source", [Source.CONTACT, Source.SYSTEM], ids=lambda s: f"{s}-opt-out")
def test_staff_may_not_opt_back_in_a_contact_or_system_opt_out(
    world: World, source: Source
) -> None:
    import_contacts(world, contact("C-1", "marie@example.com"))
    opt_out_by(world, source, "marie@example.com")
    before = snapshot(world, "marie@example.com")

    with pytest.raises(ConsentRefused) as refused:
        staff(world, "marie@example.com", Action.OPT_IN, method="phone")

    message = str(refused.value)
    assert "marie@example.com" in message
    assert "only the contact's own confirmation lifts it" in message
    assert snapshot(world, "marie@example.com") == before


@pytest.mark.parametrize("source", list(Source), ids=lambda s: f"{s}-opt-out")
def test_the_contacts_confirmation_lifts_any_opt_out(world: World, source: Source) -> None:
    import_contacts(world, contact("C-1", "marie@example.com"))
    opt_out_by(world, source, "marie@example.com")
    send_confirmation(world, "marie@example.com", by=Source.CONTACT)
    [received] = world.mail_server.wait_for(1)
    assert received.rcpt_to == ("marie@example.com",)
    assert status(world, "marie@example.com").consent is ConsentReason.OPTED_OUT

    world.clock.advance(hours=2)
    found = confirm(world, confirm_token(received))

    assert (found.consent, found.record.opted_out_by) == (ConsentReason.OK, None)
    assert found.record.confirmed_at == world.clock.now()
    assert [(e.action, e.source, e.method) for e in found.history][-2:] == [
        (Action.SEND_CONFIRMATION, Source.CONTACT, "web form"),
        (Action.CONFIRM, Source.CONTACT, "email link"),
    ]


def test_confirming_reactivates_an_inactive_address(world: World) -> None:
    import_contacts(world, contact("C-1", "marie@example.com"))
    world.clock.advance(days=world.settings.consent.reconfirm_after_days, seconds=1)
    assert status(world, "marie@example.com").consent is ConsentReason.INACTIVE

    send_confirmation(world, "marie@example.com")
    assert status(world, "marie@example.com").consent is ConsentReason.CONFIRMATION_PENDING
    [received] = world.mail_server.wait_for(1)
    world.clock.advance(days=1)
    found = confirm(world, confirm_token(received))

    assert found.consent is ConsentReason.OK
    assert found.record.confirmed_at == world.clock.now()


# -- confirmation emails and their links ------------------------------------------------------


def test_staff_send_the_confirmation_email_once(world: World) -> None:
    import_contacts(world, contact("C-1", "marie@example.com", confirmed=False))
    assert send_confirmation(world, "Marie@Example.com") == "marie@example.com"
    world.mail_server.wait_for(1)
    world.clock.advance(days=40)
    before = snapshot(world, "marie@example.com")

    with pytest.raises(ConsentRefused) as refused:
        send_confirmation(world, "marie@example.com")

    assert "once" in str(refused.value)
    assert "marie@example.com" in str(refused.value)
    assert len(world.mail_server.messages()) == 1
    assert snapshot(world, "marie@example.com") == before
    assert history(world, "marie@example.com") == [("send_confirmation", "agent", "cli", "Camille")]


def test_staff_send_no_confirmation_to_an_address_the_contact_left(world: World) -> None:
    import_contacts(world, contact("C-1", "marie@example.com", confirmed=False))
    unsubscribe(world, "marie@example.com")

    with pytest.raises(ConsentRefused, match="unsubscribe"):
        send_confirmation(world, "marie@example.com")

    assert world.mail_server.messages() == []


def test_a_confirmation_email_the_server_refuses_is_undone_and_may_be_sent_again(
    world: World,
) -> None:
    import_contacts(world, contact("C-1", "marie@example.com", confirmed=False))
    before = snapshot(world, "marie@example.com")
    world.mail_server.stop()

    with pytest.raises(DeliveryError):
        send_confirmation(world, "marie@example.com")

    # The reservation (the entry's facts and the link's hash) is undone: nothing recorded.
    assert snapshot(world, "marie@example.com") == before
    world.mail_server.start()
    assert send_confirmation(world, "marie@example.com") == "marie@example.com"
    assert status(world, "marie@example.com").consent is ConsentReason.CONFIRMATION_PENDING


@pytest.fixture
def pending(world: World) -> Iterator[tuple[str, Received]]:
    """A confirmation email sent to an unconfirmed address: (its link's token, the message)."""
    import_contacts(world, contact("C-1", "marie@example.com", confirmed=False))
    send_confirmation(world, "marie@example.com")
    [received] = world.mail_server.wait_for(1)
    assert status(world, "marie@example.com").consent is ConsentReason.CONFIRMATION_PENDING
    yield confirm_token(received), received


def test_a_confirmation_link_works_once(world: World, pending: tuple[str, Received]) -> None:
    token, _received = pending
    assert confirm(world, token).consent is ConsentReason.OK
    before = snapshot(world, "marie@example.com")
    world.clock.advance(minutes=5)

    with pytest.raises(UsedLink):
        confirm(world, token)

    assert snapshot(world, "marie@example.com") == before


def test_a_confirmation_link_works_until_it_expires(
    world: World, pending: tuple[str, Received]
) -> None:
    token, _received = pending
    world.clock.advance(days=world.settings.consent.confirmation_valid_days, seconds=-60)

    assert confirm(world, token).consent is ConsentReason.OK


def test_an_expired_confirmation_link_changes_nothing(
    world: World, pending: tuple[str, Received]
) -> None:
    token, _received = pending
    world.clock.advance(days=world.settings.consent.confirmation_valid_days, seconds=60)
    before = snapshot(world, "marie@example.com")

    with pytest.raises(ExpiredLink):
        confirm(world, token)

    assert snapshot(world, "marie@example.com") == before


def _tampered(token: str) -> str:
    first = "B" if token[0] == "A" else "A"
    return first + token[1:]


def _forged(world: World, token: str) -> str:
    payload = signer(world).payload(Purpose.CONFIRM, token, timedelta(days=1))
    return signer(world, "y" * 32).sign_payload(Purpose.CONFIRM, payload)  # type: ignore[arg-type]


def _other_nonce(world: World, token: str) -> str:
    payload = signer(world).payload(Purpose.CONFIRM, token, timedelta(days=1))
    return signer(world).sign_payload(Purpose.CONFIRM, {"a": payload["a"], "n": "guessed"})  # type: ignore[dict-item]


def _other_address(world: World, token: str) -> str:
    payload = signer(world).payload(Purpose.CONFIRM, token, timedelta(days=1))
    import_contacts(world, contact("C-2", "paul@example.com", confirmed=False))
    return signer(world).sign_payload(Purpose.CONFIRM, {"a": "paul@example.com", "n": payload["n"]})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "bad_link",
    [
        pytest.param(lambda world, token, received: _tampered(token), id="a-character-changed"),
        pytest.param(lambda world, token, received: token[:-1], id="truncated"),
        pytest.param(lambda world, token, received: _forged(world, token),
                     id="signed-with-another-secret"),
        pytest.param(lambda world, token, received: unsubscribe_token(received),
                     id="the-emails-unsubscribe-token"),
        pytest.param(lambda world, token, received: _other_nonce(world, token),
                     id="genuine-signature-unknown-secret-part"),
        pytest.param(lambda world, token, received: _other_address(world, token),
                     id="genuine-secret-part-for-another-address"),
        pytest.param(lambda world, token, received: "not-a-token", id="garbage"),
    ],
)  # fmt: skip
def test_an_invalid_confirmation_link_changes_nothing(
    world: World, pending: tuple[str, Received], bad_link: Any
) -> None:
    token, received = pending
    bad = bad_link(world, token, received)
    assert bad != token
    before = snapshot(world, "marie@example.com")

    with pytest.raises(InvalidLink) as raised:
        confirm(world, bad)

    assert type(raised.value) is InvalidLink
    assert snapshot(world, "marie@example.com") == before
    # The genuine link still works afterwards.
    assert confirm(world, token).consent is ConsentReason.OK


# -- the contacts file's flags -----------------------------------------------------------------


def test_an_import_opt_out_is_recorded_once(world: World) -> None:
    assert import_contacts(world, contact("C-1", "marie@example.com", opted_out=True)) == 2
    found = status(world, "marie@example.com")
    assert (found.consent, found.record.opted_out_by) == (ConsentReason.OPTED_OUT, Source.IMPORT)
    assert history(world, "marie@example.com") == [
        ("confirm", "import", "csv import", "import"),
        ("opt_out", "import", "csv import", "import"),
    ]
    assert found.history[-1].detail == "contact C-1"
    world.clock.advance(days=1)

    assert import_contacts(world, contact("C-1", "marie@example.com", opted_out=True)) == 0

    assert status(world, "marie@example.com").history == found.history


def test_a_later_import_without_the_flag_lifts_an_import_opt_out(world: World) -> None:
    import_contacts(world, contact("C-1", "marie@example.com", opted_out=True))
    world.clock.advance(days=1)

    assert import_contacts(world, contact("C-1", "Marie@example.com")) == 1

    found = status(world, "marie@example.com")
    assert (found.consent, found.record.opted_out_by) == (ConsentReason.OK, None)
    assert history(world, "marie@example.com")[-1] == ("opt_in", "import", "csv import", "import")


@pytest.mark.parametrize(
    "source", [Source.AGENT, Source.CONTACT, Source.SYSTEM], ids=lambda s: f"{s}-opt-out"
)
def test_an_import_without_the_flag_leaves_other_opt_outs(world: World, source: Source) -> None:
    import_contacts(world, contact("C-1", "marie@example.com"))
    opt_out_by(world, source, "marie@example.com")
    before = snapshot(world, "marie@example.com")
    world.clock.advance(days=1)

    assert import_contacts(world, contact("C-1", "marie@example.com")) == 0

    assert snapshot(world, "marie@example.com") == before


def test_a_daily_import_does_not_undo_a_staff_opt_out(world: World) -> None:
    # The agency's own file catches up with the phone call a day later, then (a
    # mistake, or an older export) drops the flag again.
    import_contacts(world, contact("C-1", "marie@example.com"))
    staff(world, "marie@example.com", Action.OPT_OUT, method="phone")
    world.clock.advance(days=1)
    import_contacts(world, contact("C-1", "marie@example.com", opted_out=True))
    world.clock.advance(days=1)

    import_contacts(world, contact("C-1", "marie@example.com"))

    found = status(world, "marie@example.com")
    assert (found.consent, found.record.opted_out_by) == (ConsentReason.OPTED_OUT, Source.AGENT)


def test_the_next_import_does_not_lift_a_staff_opt_out_over_an_import_one(world: World) -> None:
    import_contacts(world, contact("C-1", "marie@example.com", opted_out=True))
    world.clock.advance(hours=1)
    # The contact phones: staff record it, although the file already says so.
    staff(world, "marie@example.com", Action.OPT_OUT, method="phone")
    world.clock.advance(days=1)

    import_contacts(world, contact("C-1", "marie@example.com"))

    found = status(world, "marie@example.com")
    assert (found.consent, found.record.opted_out_by) == (ConsentReason.OPTED_OUT, Source.AGENT)


def test_contacts_sharing_a_new_address_apply_their_flags_in_file_order(world: World) -> None:
    assert (
        import_contacts(
            world,
            contact("C-1", "marie@example.com", confirmed=False, opted_out=True),
            contact("C-2", "Marie@example.com"),
        )
        == 3
    )

    found = status(world, "marie@example.com")
    assert (found.consent, found.record.opted_out_by) == (ConsentReason.OK, None)
    assert [(e.action, e.detail) for e in found.history] == [
        (Action.OPT_OUT, "contact C-1"),
        (Action.CONFIRM, "contact C-2"),
        (Action.OPT_IN, "contact C-2"),
    ]
    assert registry_rows(world) == [("marie@example.com", "marie@example.com")]
    ids = address_ids(world)
    assert ids["C-1"] == ids["C-2"] is not None


def test_reimporting_an_unchanged_file_writes_nothing(world: World) -> None:
    contacts = [
        contact("C-1", "marie@example.com", opted_out=True),
        contact("C-2", "jean@example.com", confirmed=False),
        contact("C-3", None),
    ]
    import_contacts(world, *contacts)
    staff(world, "jean@example.com", Action.OPT_OUT)
    staff(world, "jean@example.com", Action.OPT_IN)

    def stored() -> list[tuple[object, ...]]:
        with world.engine.connect() as connection:
            entries = connection.execute(select(AddressRow).order_by(AddressRow.id)).all()
            people = connection.execute(select(ContactRow).order_by(ContactRow.id)).all()
            events = connection.execute(select(func.count()).select_from(ConsentEventRow))
            return [*map(tuple, entries), *map(tuple, people), events.scalar_one()]

    before = stored()
    world.clock.advance(days=1)

    with world.database.transaction() as store:
        counts, changes = registry.import_contacts(store, contacts, world.clock.now())

    assert (counts.created, counts.updated, counts.unchanged, changes) == (0, 0, 3, 0)
    assert stored() == before


def test_an_entry_created_by_another_import_meanwhile_is_decided_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Staff opted the address out before its contact was known. The import reads the
    # registry before that entry is there (on PostgreSQL another transaction may create
    # it in between: this import's insert then waits for it and does nothing): the
    # flags are decided again on the entry as it is, by the rules.
    staff(world, "marie@example.com", Action.OPT_OUT)
    locked = Store.lock_consent_entries
    reads: list[object] = []

    def first_read_misses(store: Store, keys: Any) -> Any:
        reads.append(keys)
        return {} if len(reads) == 1 else locked(store, keys)

    monkeypatch.setattr(Store, "lock_consent_entries", first_read_misses)

    assert import_contacts(world, contact("C-1", "Marie@example.com")) == 1

    found = status(world, "marie@example.com")
    assert (found.consent, found.record.opted_out_by) == (ConsentReason.OPTED_OUT, Source.AGENT)
    assert [(e.action, e.source) for e in found.history] == [
        (Action.OPT_OUT, Source.AGENT),
        (Action.CONFIRM, Source.IMPORT),
    ]
    assert registry_rows(world) == [("marie@example.com", "marie@example.com")]
    assert address_ids(world)["C-1"] is not None


def test_the_confirmed_flag_counts_once(world: World) -> None:
    assert import_contacts(world, contact("C-1", "marie@example.com")) == 1
    confirmed_at = status(world, "marie@example.com").record.confirmed_at
    assert confirmed_at == START
    world.clock.advance(days=world.settings.consent.reconfirm_after_days, seconds=1)

    assert import_contacts(world, contact("C-1", "marie@example.com")) == 0
    assert import_contacts(world, contact("C-2", "MARIE@example.com")) == 0

    found = status(world, "marie@example.com")
    assert (found.consent, found.record.confirmed_at) == (ConsentReason.INACTIVE, confirmed_at)
    assert history(world, "marie@example.com") == [("confirm", "import", "csv import", "import")]


def test_the_confirmed_flag_does_not_lift_an_opt_out(world: World) -> None:
    import_contacts(world, contact("C-1", "marie@example.com", confirmed=False))
    staff(world, "marie@example.com", Action.OPT_OUT)

    import_contacts(world, contact("C-1", "marie@example.com"))

    found = status(world, "marie@example.com")
    assert (found.consent, found.record.opted_out_by) == (ConsentReason.OPTED_OUT, Source.AGENT)
    assert found.record.confirmed_at == START


# -- the report ---------------------------------------------------------------------------------

T0, T1, T2, T3 = (START + timedelta(days=n) for n in range(4))


@pytest.fixture
def opted_out(world: World) -> World:
    """Opt-outs of every source at T0..T3, and addresses that are not opted out."""
    import_contacts(world, contact("C-0", "eve@example.com"), contact("C-9", "fay@example.com"))
    staff(world, "Anne@Example.com", Action.OPT_OUT, method="phone")
    staff(world, "fay@example.com", Action.OPT_OUT)
    staff(world, "fay@example.com", Action.OPT_IN)
    world.clock.advance(days=1)
    unsubscribe(world, "Bruno@Example.com")
    world.clock.advance(days=1)
    bounce(world, "carla@example.com")
    world.clock.advance(days=1)
    import_contacts(world, contact("C-1", "dan@example.com", opted_out=True))
    for address in ("ab_c@example.com", "abxc@example.com", "a%b@example.com", "axb@example.com"):
        staff(world, address, Action.OPT_OUT, method="paper form")
    return world


EVERYONE = [
    "a%b@example.com",
    "ab_c@example.com",
    "abxc@example.com",
    "Anne@example.com",
    "axb@example.com",
    "Bruno@example.com",
    "carla@example.com",
    "dan@example.com",
]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, EVERYONE, id="no-filter-everyone-by-address"),
        pytest.param({"source": Source.AGENT},
                     ["a%b@example.com", "ab_c@example.com", "abxc@example.com",
                      "Anne@example.com", "axb@example.com"], id="source-agent"),
        pytest.param({"source": Source.CONTACT}, ["Bruno@example.com"], id="source-contact"),
        pytest.param({"source": Source.SYSTEM}, ["carla@example.com"], id="source-system"),
        pytest.param({"source": Source.IMPORT}, ["dan@example.com"], id="source-import"),
        pytest.param({"since": T1}, [a for a in EVERYONE if a != "Anne@example.com"],
                     id="since-included"),
        pytest.param({"since": T1 + timedelta(seconds=1)},
                     [a for a in EVERYONE if a not in ("Anne@example.com", "Bruno@example.com")],
                     id="since-a-second-later"),
        pytest.param({"until": T2}, ["Anne@example.com", "Bruno@example.com"],
                     id="until-excluded"),
        pytest.param({"since": T1, "until": T2}, ["Bruno@example.com"], id="since-and-until"),
        pytest.param({"since": T1.astimezone(PARIS), "until": T2.astimezone(PARIS)},
                     ["Bruno@example.com"], id="since-and-until-with-an-offset"),
        pytest.param({"since": T3, "source": Source.IMPORT}, ["dan@example.com"],
                     id="since-and-source"),
        pytest.param({"prefix": "BRU"}, ["Bruno@example.com"], id="prefix-any-case"),
        pytest.param({"prefix": "anne@EXAMPLE.com"}, ["Anne@example.com"],
                     id="prefix-whole-address"),
        pytest.param({"prefix": "a"},
                     ["a%b@example.com", "ab_c@example.com", "abxc@example.com",
                      "Anne@example.com", "axb@example.com"], id="prefix-one-letter"),
        pytest.param({"prefix": "ab_"}, ["ab_c@example.com"], id="underscore-is-no-wildcard"),
        pytest.param({"prefix": "a%"}, ["a%b@example.com"], id="percent-is-no-wildcard"),
        pytest.param({"prefix": "%"}, [], id="percent-alone-matches-nothing"),
        pytest.param({"prefix": "_"}, [], id="underscore-alone-matches-nothing"),
        pytest.param({"prefix": "eve"}, [], id="not-opted-out"),
        pytest.param({"prefix": "fay"}, [], id="opted-back-in"),
    ],
)  # fmt: skip
def test_report_filters(opted_out: World, filters: dict[str, Any], expected: list[str]) -> None:
    rows = registry.report(opted_out.database, opted_out.settings, **filters)

    assert [r["address"] for r in rows] == expected


def test_report_says_who_how_and_when(opted_out: World) -> None:
    rows = {r["address"]: r for r in registry.report(opted_out.database, opted_out.settings)}

    picked = {
        a: (r["source"], r["method"], r["occurred_at"], r["actor"])
        for a, r in rows.items()
        if a in ("Anne@example.com", "Bruno@example.com", "carla@example.com", "dan@example.com")
    }
    assert picked == {
        "Anne@example.com": (Source.AGENT, "phone", T0, "Camille"),
        "Bruno@example.com": (Source.CONTACT, "one-click", T1, "contact"),
        "carla@example.com": (Source.SYSTEM, "bounce", T2, "bounces"),
        "dan@example.com": (Source.IMPORT, "csv import", T3, "import"),
    }
    assert rows["carla@example.com"]["detail"] == "550 5.1.1 user unknown"


# -- migration 0003 from the data of 0002 ----------------------------------------------------

M1 = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
M2 = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)
M3 = datetime(2026, 10, 15, 7, 30, tzinfo=UTC)
AFTER = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _at_0002(url: str) -> Engine:
    engine = create_engine(url)
    command.upgrade(_alembic_config(engine), "0002")
    return engine


def _write_0002_data(engine: Engine) -> None:
    """Contacts with their flags, and the dispatcher's system opt-outs, as 0002 kept them."""
    with engine.begin() as connection:
        meta = sa.MetaData()
        contacts = sa.Table("contacts", meta, autoload_with=connection)
        events = sa.Table("consent_events", meta, autoload_with=connection)
        rows = [
            ("C-1", "Marie.Dupont@Example.fr", True, False, M1),
            ("C-2", "marie.dupont@example.FR", False, True, M2),
            ("C-3", "paul@example.com", True, False, M1),
            ("C-4", "paul+ete@example.com", False, False, M1),
            ("C-5", "bounced@example.com", True, False, M1),
            ("C-6", None, False, False, M1),
            ("C-7", "not an address", True, True, M1),
        ]
        connection.execute(
            contacts.insert(),
            [
                {"ref": ref, "agency": "annecy", "name": f"Guest {ref}", "email": email,
                 "locale": "fr", "email_confirmed": confirmed, "email_opt_out": opt_out,
                 "updated_at": at}
                for ref, email, confirmed, opt_out, at in rows
            ],
        )  # fmt: skip
        connection.execute(
            events.insert(),
            [
                {"address": address, "action": "opt_out", "source": "system", "method": "smtp",
                 "actor": "dispatcher", "detail": "550 5.1.1 user unknown",
                 "occurred_at": M3, "recorded_at": M3}
                for address in ("bounced@example.com", "Gone@Example.COM")
            ],
        )  # fmt: skip


@pytest.fixture
def migrated(empty_database_url: str) -> Iterator[Database]:
    engine = _at_0002(empty_database_url)
    try:
        _write_0002_data(engine)
        upgrade(engine)
        yield Database(engine, MovableClock(AFTER))
    finally:
        engine.dispose()


def _entries(database: Database) -> dict[str, tuple[str, int]]:
    with database.engine.connect() as connection:
        query = select(AddressRow.address_key, AddressRow.address, AddressRow.id)
        return {key: (address, id_) for key, address, id_ in connection.execute(query)}


def test_migration_0003_makes_one_entry_per_address_and_links_the_contacts(
    migrated: Database,
) -> None:
    check_schema(migrated.engine)
    entries = _entries(migrated)

    assert {key: address for key, (address, _id) in entries.items()} == {
        "marie.dupont@example.fr": "Marie.Dupont@example.fr",
        "paul@example.com": "paul@example.com",
        "paul+ete@example.com": "paul+ete@example.com",
        "bounced@example.com": "bounced@example.com",
        "gone@example.com": "Gone@example.com",
    }
    ids = {key: id_ for key, (_address, id_) in entries.items()}
    with migrated.engine.connect() as connection:
        linked = dict(connection.execute(select(ContactRow.ref, ContactRow.address_id)).all())
        columns = {c["name"] for c in sa.inspect(connection).get_columns("contacts")}
    assert linked == {
        "C-1": ids["marie.dupont@example.fr"],
        "C-2": ids["marie.dupont@example.fr"],
        "C-3": ids["paul@example.com"],
        "C-4": ids["paul+ete@example.com"],
        "C-5": ids["bounced@example.com"],
        "C-6": None,
        "C-7": None,
    }
    assert not columns & {"email_confirmed", "email_opt_out"}


@pytest.mark.parametrize(
    ("address", "consent", "opted_out", "confirmed_at"),
    [
        pytest.param("marie.dupont@example.fr", ConsentReason.OPTED_OUT, (Source.IMPORT, M2), M1,
                     id="two-spellings-flags-merged"),
        pytest.param("paul@example.com", ConsentReason.OK, (None, None), M1, id="confirmed"),
        pytest.param("paul+ete@example.com", ConsentReason.UNCONFIRMED, (None, None), None,
                     id="no-flag"),
        pytest.param("bounced@example.com", ConsentReason.OPTED_OUT, (Source.SYSTEM, M3), M1,
                     id="confirmed-then-bounced"),
        pytest.param("gone@example.com", ConsentReason.OPTED_OUT, (Source.SYSTEM, M3), None,
                     id="bounced-without-a-contact"),
    ],
)  # fmt: skip
def test_migration_0003_carries_the_consent_over(
    migrated: Database,
    address: str,
    consent: ConsentReason,
    opted_out: tuple[Source | None, datetime | None],
    confirmed_at: datetime | None,
) -> None:
    with migrated.transaction() as store:
        entry = store.consent_entry(address)
    assert entry is not None
    _id, record = entry

    assert (record.opted_out_by, record.opted_out_at) == opted_out
    assert record.confirmed_at == confirmed_at
    assert state_of(record, AFTER, timedelta(days=730)) is consent


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param("Marie.Dupont@example.fr", [
            ("confirm", "import", "csv import", M1),
            ("opt_out", "import", "csv import", M2),
        ], id="two-spellings"),
        pytest.param("paul@example.com", [("confirm", "import", "csv import", M1)],
                     id="confirmed"),
        pytest.param("paul+ete@example.com", [], id="no-flag"),
        pytest.param("bounced@example.com", [
            ("confirm", "import", "csv import", M1),
            ("opt_out", "system", "smtp", M3),
        ], id="confirmed-then-bounced-oldest-first"),
        pytest.param("Gone@example.com", [("opt_out", "system", "smtp", M3)],
                     id="bounced-without-a-contact"),
    ],
)  # fmt: skip
def test_migration_0003_turns_the_flags_into_import_events(
    migrated: Database, address: str, expected: list[tuple[str, str, str, datetime]]
) -> None:
    found = registry.status(migrated, settings_for(port=1025), address)

    assert found.address == address
    assert [(e.action, e.source, e.method, e.occurred_at) for e in found.history] == expected
    assert all(e.recorded_at <= AFTER for e in found.history)


def test_migration_0003_writes_every_event_with_the_address_its_entry_knows(
    migrated: Database,
) -> None:
    # As `registry.change` does: ConsentEventRow.address is "the normalised address, as
    # the registry knows it", whichever contact's spelling the flag came from.
    with migrated.engine.connect() as connection:
        query = select(ConsentEventRow.address, AddressRow.address).join(
            AddressRow, AddressRow.id == ConsentEventRow.registry_id
        )
        pairs = connection.execute(query).all()

    assert len(pairs) == 6
    assert [(event, entry) for event, entry in pairs if event != entry] == []


def test_migration_0003_links_every_old_event_and_makes_the_history_append_only(
    migrated: Database,
) -> None:
    with migrated.engine.connect() as connection:
        unlinked = connection.scalar(
            select(func.count())
            .select_from(ConsentEventRow)
            .where(ConsentEventRow.registry_id.is_(None))
        )
        assert unlinked == 0
    refused = REFUSED_BY[migrated.engine.dialect.name]
    with pytest.raises(refused, match=APPEND_ONLY), migrated.engine.begin() as connection:
        connection.execute(text("DELETE FROM consent_events"))


# -- the zone an address's times are in ------------------------------------------------------


def writers(world: World, address: str) -> list[str]:
    with world.database.transaction() as store:
        return store.writers([address.lower()]).get(address.lower(), [])


def delivered(world: World, item_id: int, agency: str, to: str, outcome: str, minutes: int) -> None:
    """Log an attempt of agency `agency` to `to`, `minutes` after START."""
    started = START + timedelta(minutes=minutes)
    with world.engine.begin() as connection:
        connection.execute(
            sa.insert(DeliveryRow).values(
                item_id=item_id, agency=agency, attempt=9, recipient=to,
                message_id=f"<{minutes}@example>", actor="tester", claimed_by="tester",
                started_at=started, finished_at=started, outcome=outcome,
            )
        )  # fmt: skip


def test_an_address_is_in_the_zone_of_the_agency_that_last_wrote_to_it(world: World) -> None:
    marie = "marie@example.com"
    [item_id] = world.guests(1)  # C-1 of annecy, at address_of(1)
    import_contacts(world, contact("C-1", marie))
    import_contacts(world, replace(contact("C-2", "Marie@EXAMPLE.com"), agency="montreal"))
    first_contacts = writers(world, marie)

    world.dispatcher().send([item_id])  # annecy writes to it
    after_annecy = writers(world, marie)
    delivered(world, item_id, "montreal", "MARIE@example.com", "sent", minutes=30)
    delivered(world, item_id, "auckland", marie, "permanent", minutes=40)  # refused: not written
    delivered(world, item_id, "auckland", address_of(1), "sent", minutes=50)  # its former address
    after_montreal = writers(world, marie)

    assert first_contacts == ["annecy", "montreal"]
    assert after_annecy == ["annecy", "annecy", "montreal"]
    assert after_montreal == ["montreal", "annecy", "montreal"]
    # Montreal is not configured here: the next agency that wrote to it is.
    assert status(world, marie).zone == PARIS
    assert registry.writer_zone(world.settings, after_montreal) == PARIS
    assert registry.writer_zone(world.settings, []) == PARIS  # the first agency's
