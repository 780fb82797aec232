"""The consent rule in SQL (what a claim checks) agrees with `consent.state_of`, both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update

from integration.dispatch_world import START, World
from reminders.consent import ConsentReason, state_of
from reminders.schema import AddressRow, BookingRow, ContactRow, ItemRow, KindChoiceRow
from reminders.service import consent_of
from reminders.store._rules import consent_reason

RECONFIRM = timedelta(days=730)
LONG_AGO = START - timedelta(days=800)
RECENTLY = START - timedelta(days=3)

#: (opted_out_by, confirmed_at, confirmation_sent_at) of an address, and the reason expected.
CASES = {
    "confirmed-recently": (None, RECENTLY, None, ConsentReason.OK),
    "confirmed-exactly-at-the-cutoff": (None, START - RECONFIRM, None, ConsentReason.OK),
    "confirmed-a-second-too-long-ago": (
        None,
        START - RECONFIRM - timedelta(seconds=1),
        None,
        ConsentReason.INACTIVE,
    ),
    "confirmed-long-ago": (None, LONG_AGO, None, ConsentReason.INACTIVE),
    "never-confirmed": (None, None, None, ConsentReason.UNCONFIRMED),
    "confirmation-sent": (None, None, RECENTLY, ConsentReason.CONFIRMATION_PENDING),
    "inactive-asked-again": (None, LONG_AGO, RECENTLY, ConsentReason.CONFIRMATION_PENDING),
    "confirmed-after-the-email": (None, RECENTLY, LONG_AGO, ConsentReason.OK),
    "opted-out-though-confirmed": ("contact", RECENTLY, None, ConsentReason.OPTED_OUT),
    "opted-out-by-import": ("import", None, None, ConsentReason.OPTED_OUT),
}


#: A kind choice of the same address, and whether the agency requires the kind:
#: (address case, choice for the item's kind (None: none), required, reason expected).
KIND_CASES = {
    "refused-while-confirmed": ("confirmed-recently", False, False, ConsentReason.KIND_REFUSED),
    "accepted-again": ("confirmed-recently", True, False, ConsentReason.OK),
    "refused-but-required": ("confirmed-recently", False, True, ConsentReason.OK),
    "refused-and-unconfirmed": ("never-confirmed", False, False, ConsentReason.KIND_REFUSED),
    "refused-and-pending": ("confirmation-sent", False, False, ConsentReason.KIND_REFUSED),
    "refused-and-inactive": ("confirmed-long-ago", False, False, ConsentReason.KIND_REFUSED),
    "refused-and-opted-out": ("opted-out-though-confirmed", False, False, ConsentReason.OPTED_OUT),
    "refused-required-inactive": ("confirmed-long-ago", False, True, ConsentReason.INACTIVE),
    "other-kind-refused": ("confirmed-recently", None, False, ConsentReason.OK),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_claims_consent_rule_is_state_of(world: World, case: str) -> None:
    opted_out_by, confirmed_at, sent_at, expected = CASES[case]
    [item_id] = world.guests(1, confirmed=False)
    with world.engine.begin() as connection:
        address_id = connection.scalar(select(ContactRow.address_id).where(ContactRow.ref == "C-1"))
        connection.execute(
            update(AddressRow)
            .where(AddressRow.id == address_id)
            .values(
                opted_out_by=opted_out_by,
                opted_out_at=RECENTLY if opted_out_by else None,
                confirmed_at=confirmed_at,
                confirmation_sent_at=sent_at,
            )
        )
        in_sql = connection.scalar(
            select(consent_reason(START - RECONFIRM))
            .select_from(ItemRow)
            .join(BookingRow, BookingRow.id == ItemRow.booking_id)
            .join(ContactRow, ContactRow.id == BookingRow.contact_id)
            .outerjoin(AddressRow, AddressRow.id == ContactRow.address_id)
            .where(ItemRow.id == item_id)
        )

    in_python = state_of(world.item(item_id).consent, START, RECONFIRM)

    assert (in_sql, in_python) == (expected, expected)


@pytest.mark.parametrize("case", list(KIND_CASES))
def test_the_claims_kind_rule_is_consent_of(world: World, case: str) -> None:
    address_case, choice, required, expected = KIND_CASES[case]
    opted_out_by, confirmed_at, sent_at, _ = CASES[address_case]
    world.configure(
        agency={"delays": {"arrival": 7, "post_departure": 7}, "required": {"arrival": required}}
    )
    [item_id] = world.guests(1, confirmed=False)
    with world.engine.begin() as connection:
        address_id = connection.scalar(select(ContactRow.address_id).where(ContactRow.ref == "C-1"))
        connection.execute(
            update(AddressRow)
            .where(AddressRow.id == address_id)
            .values(
                opted_out_by=opted_out_by,
                opted_out_at=RECENTLY if opted_out_by else None,
                confirmed_at=confirmed_at,
                confirmation_sent_at=sent_at,
            )
        )
        # Another kind is refused in every case: only the item's own kind counts.
        choices = [("post_departure", False)] + (
            [("arrival", choice)] if choice is not None else []
        )
        connection.execute(
            insert(KindChoiceRow),
            [
                {
                    "address_id": address_id,
                    "kind": kind,
                    "receive": receive,
                    "source": "contact",
                    "method": "web form",
                    "actor": "contact",
                    "chosen_at": RECENTLY,
                    "updated_at": RECENTLY,
                }
                for kind, receive in choices
            ],
        )
        exempt = [("annecy", "arrival")] if required else []
        in_sql = connection.scalar(
            select(consent_reason(START - RECONFIRM, required=exempt))
            .select_from(ItemRow)
            .join(BookingRow, BookingRow.id == ItemRow.booking_id)
            .join(ContactRow, ContactRow.id == BookingRow.contact_id)
            .outerjoin(AddressRow, AddressRow.id == ContactRow.address_id)
            .where(ItemRow.id == item_id)
        )

    in_python = consent_of(world.item(item_id), START, world.settings)

    assert (in_sql, in_python) == (expected, expected)


def test_no_address_is_no_address_in_both(world: World) -> None:
    world.contact("C-1", None)
    world.booking("B-1", "C-1")
    world.plan()
    item = world.item_of("B-1")
    with world.engine.connect() as connection:
        in_sql = connection.scalar(
            select(consent_reason(START - RECONFIRM))
            .select_from(ItemRow)
            .join(BookingRow, BookingRow.id == ItemRow.booking_id)
            .join(ContactRow, ContactRow.id == BookingRow.contact_id)
            .outerjoin(AddressRow, AddressRow.id == ContactRow.address_id)
            .where(ItemRow.id == item.id)
        )

    assert in_sql == ConsentReason.NO_ADDRESS
    assert item.consent is None and state_of(None, START, RECONFIRM) is ConsentReason.NO_ADDRESS
