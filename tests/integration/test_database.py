"""The schema: migrations reach head, match the models, and enforce one live item per key."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, insert, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from reminders.database import (
    SCHEMA_REVISION,
    check_schema,
    create_engine,
    current_revision,
    head_revision,
)
from reminders.errors import DatabaseError
from reminders.schema import Base, BookingRow, ContactRow, ItemRow

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ANCHOR_ON = date(2026, 7, 10)

contacts = ContactRow.__table__
bookings = BookingRow.__table__
items = ItemRow.__table__


def test_upgrade_brings_the_schema_to_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision() == SCHEMA_REVISION
    check_schema(engine)


def test_check_schema_on_an_empty_database_says_to_upgrade(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        assert current_revision(engine) is None
        with pytest.raises(DatabaseError, match="run 'reminders db upgrade'") as raised:
            check_schema(engine)
        assert "empty" in str(raised.value)
    finally:
        engine.dispose()


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def _insert_booking(engine: Engine) -> int:
    with engine.begin() as connection:
        contact_id = connection.execute(
            insert(contacts)
            .values(
                ref="C1",
                agency="annecy",
                name="Camille Martin",
                email="camille@example.com",
                locale="fr",
                updated_at=AT,
            )
            .returning(contacts.c.id)
        ).scalar_one()
        booking_id: int = connection.execute(
            insert(bookings)
            .values(
                ref="B1",
                agency="annecy",
                contact_id=contact_id,
                property="Chalet des Aravis",
                status="confirmed",
                balance_outstanding_minor=50_000,
                currency="EUR",
                arrival_on=ANCHOR_ON,
                departure_on=date(2026, 7, 17),
                updated_at=AT,
            )
            .returning(bookings.c.id)
        ).scalar_one()
    return booking_id


def _insert_item(
    engine: Engine,
    booking_id: int,
    *,
    status: str,
    kind: str = "arrival",
    anchor_on: date = ANCHOR_ON,
) -> int:
    with engine.begin() as connection:
        item_id: int = connection.execute(
            insert(items)
            .values(
                agency="annecy",
                kind=kind,
                booking_id=booking_id,
                anchor_on=anchor_on,
                visible_from=date(2026, 7, 3),
                visible_until=anchor_on,
                status=status,
                locale="fr",
                subject="Votre arrivée",
                edited=False,
                created_at=AT,
                rendered_at=AT,
                updated_at=AT,
            )
            .returning(items.c.id)
        ).scalar_one()
    return item_id


@pytest.mark.parametrize(
    "first_status",
    [
        pytest.param("pending", id="pending"),
        pytest.param("approved", id="approved"),
        pytest.param("sent", id="sent"),
        pytest.param("missed", id="missed"),
        pytest.param("expired", id="expired"),
        pytest.param("discarded", id="discarded"),
    ],
)
def test_a_second_live_item_for_the_same_key_is_rejected(engine: Engine, first_status: str) -> None:
    booking_id = _insert_booking(engine)
    _insert_item(engine, booking_id, status=first_status)

    with pytest.raises(IntegrityError):
        _insert_item(engine, booking_id, status="pending")


def test_a_withdrawn_item_does_not_block_a_new_one(engine: Engine) -> None:
    booking_id = _insert_booking(engine)
    first = _insert_item(engine, booking_id, status="pending")
    with engine.begin() as connection:
        connection.execute(update(items).where(items.c.id == first).values(status="withdrawn"))

    second = _insert_item(engine, booking_id, status="pending")
    with engine.begin() as connection:
        connection.execute(update(items).where(items.c.id == second).values(status="withdrawn"))
    third = _insert_item(engine, booking_id, status="pending")

    assert len({first, second, third}) == 3
    with pytest.raises(IntegrityError):
        _insert_item(engine, booking_id, status="pending")


@pytest.mark.parametrize(
    ("kind", "anchor_on"),
    [
        pytest.param("post_departure", ANCHOR_ON, id="other-kind"),
        pytest.param("arrival", date(2026, 7, 12), id="other-anchor-date"),
    ],
)
def test_items_differing_in_kind_or_anchor_date_coexist(
    engine: Engine, kind: str, anchor_on: date
) -> None:
    booking_id = _insert_booking(engine)
    _insert_item(engine, booking_id, status="pending")

    _insert_item(engine, booking_id, status="pending", kind=kind, anchor_on=anchor_on)


def test_migration_0010_moves_the_bodies_of_queued_emails_and_back(
    empty_database_url: str,
) -> None:
    from alembic import command

    from reminders.database import _alembic_config

    engine = create_engine(empty_database_url)
    try:
        command.upgrade(_alembic_config(engine), "0009")
        booking_id = _insert_booking(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO items (agency, kind, booking_id, anchor_on, visible_from, "
                "visible_until, status, locale, subject, body_text, body_html, edited, "
                "auto_send, rendered_at, created_at, updated_at) VALUES ('annecy', 'arrival', "
                f"{booking_id}, '2026-07-10', '2026-07-03', '2026-07-10', 'pending', 'fr', "
                "'Votre arrivée', 'Bonjour\nà bientôt', '<p>Bonjour</p>', false, false, "
                "'2026-03-01 09:00:00', '2026-03-01 09:00:00', '2026-03-01 09:00:00')"
            )

        command.upgrade(_alembic_config(engine), "0010")
        with engine.connect() as connection:
            moved = connection.exec_driver_sql(
                "SELECT i.subject, b.body_text, b.body_html FROM items i "
                "JOIN item_bodies b ON b.item_id = i.id"
            ).all()
            columns = {c["name"] for c in sa_inspect(connection).get_columns("items")}
        assert moved == [("Votre arrivée", "Bonjour\nà bientôt", "<p>Bonjour</p>")]
        assert not {"body_text", "body_html"} & columns

        command.downgrade(_alembic_config(engine), "0009")
        with engine.connect() as connection:
            back = connection.exec_driver_sql(
                "SELECT subject, body_text, body_html FROM items"
            ).all()
        assert back == [("Votre arrivée", "Bonjour\nà bientôt", "<p>Bonjour</p>")]
    finally:
        engine.dispose()
