"""The planning pass on a real database: SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from factories import MovableClock, booking, day
from reminders import service
from reminders.bookings import BookingStatus, Contact
from reminders.clock import FixedClock
from reminders.config import Settings
from reminders.database import create_engine
from reminders.editing import Edit
from reminders.queue import QueueItem, Status
from reminders.store import Database

TEMPLATES = Path(__file__).parents[2] / "templates"


def settings_with(**agency_overrides: Any) -> Settings:
    agency = {
        "code": "annecy",
        "name": "Agence du Lac",
        "timezone": "Europe/Paris",
        "locale": "fr",
        "sender": "Agence du Lac <reservations@agence-du-lac.example>",
        "delays": {"balance_due": 30, "arrival": 7, "option_expiry": 2, "post_departure": 7},
    }
    agency.update(agency_overrides)
    return Settings(agency=[agency], templates={"dir": str(TEMPLATES)})


class World:
    """A database, a configuration and helpers to change bookings and plan."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.clock = MovableClock(datetime(2026, 11, 23, 5, 0, tzinfo=UTC))
        self.database = Database(self.engine, self.clock)
        self.settings = settings_with()
        with self.database.transaction() as store:
            store.upsert_contacts(
                [
                    Contact(
                        ref="C-1",
                        agency="annecy",
                        name="Marie Dupont",
                        email="marie@example.com",
                        locale="fr",
                        email_confirmed=True,
                    )
                ]
            )

    def put(self, **overrides: Any) -> None:
        with self.database.transaction() as store:
            store.upsert_bookings([booking(**overrides)])

    def plan(self, on: str, **options: Any) -> service.AgencyPlan:
        agency = self.settings.agency[0]
        return service.plan_agency(self.database, self.settings, agency, today=day(on), **options)

    def items(self, status: Status | None = None) -> list[QueueItem]:
        with self.database.transaction() as store:
            return store.items(statuses=None if status is None else [status])


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    world = World(database_url)
    yield world
    world.engine.dispose()


def only_arrival(world: World) -> None:
    world.settings = settings_with(delays={"arrival": 7})


def test_queues_items_whose_window_includes_today(world: World) -> None:
    world.put(ref="B1", arrival_on=day("2026-12-08"), balance_due_on=day("2026-12-31"))

    report = world.plan("2026-12-01")

    items = world.items(Status.PENDING)
    assert [(i.kind, i.anchor_on) for i in items] == [
        ("arrival", day("2026-12-08")),
        ("balance_due", day("2026-12-31")),
    ]
    assert report.created == 2
    arrival = items[0]
    assert (arrival.visible_from, arrival.visible_until) == (day("2026-12-01"), day("2026-12-08"))
    assert arrival.subject and "B1" in arrival.text
    assert arrival.locale == "fr"


def test_planning_twice_creates_nothing_twice(world: World) -> None:
    world.put(ref="B1", arrival_on=day("2026-12-08"))
    only_arrival(world)

    first = world.plan("2026-12-01")
    second = world.plan("2026-12-01")
    third = world.plan("2026-12-02")

    assert (first.created, second.created, third.created) == (1, 0, 0)
    assert len(world.items()) == 1


def test_dry_run_changes_nothing(world: World) -> None:
    world.put(ref="B1", arrival_on=day("2026-12-08"))
    only_arrival(world)

    report = world.plan("2026-12-01", dry_run=True)

    assert report.created == 1
    assert world.items() == []
    assert world.plan("2026-12-01").created == 1


def test_moved_date_withdraws_the_old_item_and_queues_the_new_one(world: World) -> None:
    only_arrival(world)
    world.put(ref="B1", arrival_on=day("2026-12-08"))
    world.plan("2026-12-01")

    world.put(ref="B1", arrival_on=day("2026-12-05"))
    report = world.plan("2026-12-02")

    statuses = {(i.anchor_on, i.status, i.reason) for i in world.items()}
    assert statuses == {
        (day("2026-12-08"), Status.WITHDRAWN, "date_moved"),
        (day("2026-12-05"), Status.PENDING, None),
    }
    assert report.withdrawn == 1 and report.created == 1


def test_date_moved_out_of_reach_only_withdraws(world: World) -> None:
    only_arrival(world)
    world.put(ref="B1", arrival_on=day("2026-12-08"))
    world.plan("2026-12-01")

    world.put(ref="B1", arrival_on=day("2027-03-01"))
    world.plan("2026-12-02")

    assert [(i.status, i.reason) for i in world.items()] == [(Status.WITHDRAWN, "date_moved")]


def test_date_moved_back_gets_a_new_item(world: World) -> None:
    only_arrival(world)
    world.put(ref="B1", arrival_on=day("2026-12-08"))
    world.plan("2026-12-01")
    world.put(ref="B1", arrival_on=day("2026-12-09"))
    world.plan("2026-12-02")
    world.put(ref="B1", arrival_on=day("2026-12-08"))
    world.plan("2026-12-03")

    pending = world.items(Status.PENDING)
    assert [i.anchor_on for i in pending] == [day("2026-12-08")]
    assert len(world.items(Status.WITHDRAWN)) == 2


def test_cancellation_withdraws_every_pending_item(world: World) -> None:
    world.put(ref="B1", arrival_on=day("2026-12-08"), balance_due_on=day("2026-12-20"))
    world.plan("2026-12-01")

    world.put(
        ref="B1",
        status=BookingStatus.CANCELLED,
        arrival_on=day("2026-12-08"),
        balance_due_on=day("2026-12-20"),
    )
    report = world.plan("2026-12-02")

    assert {(i.kind, i.status, i.reason) for i in world.items()} == {
        ("arrival", Status.WITHDRAWN, "cancelled"),
        ("balance_due", Status.WITHDRAWN, "cancelled"),
    }
    assert report.withdrawn == 2 and report.created == 0


def test_paid_balance_withdraws_the_balance_reminder_only(world: World) -> None:
    world.put(ref="B1", arrival_on=day("2026-12-08"), balance_due_on=day("2026-12-20"))
    world.plan("2026-12-01")

    world.put(
        ref="B1",
        arrival_on=day("2026-12-08"),
        balance_due_on=day("2026-12-20"),
        balance_outstanding=Decimal(0),
    )
    world.plan("2026-12-02")

    assert {(i.kind, i.status, i.reason) for i in world.items()} == {
        ("arrival", Status.PENDING, None),
        ("balance_due", Status.WITHDRAWN, "balance_paid"),
    }


def test_confirmed_option_swaps_option_reminder_for_stay_reminders(world: World) -> None:
    world.put(
        ref="B1",
        status=BookingStatus.OPTION,
        option_expires_on=day("2026-12-02"),
        arrival_on=day("2026-12-08"),
        balance_due_on=day("2026-12-20"),
    )
    world.plan("2026-12-01")
    assert [i.kind for i in world.items(Status.PENDING)] == ["option_expiry"]

    world.put(
        ref="B1",
        status=BookingStatus.CONFIRMED,
        option_expires_on=day("2026-12-02"),
        arrival_on=day("2026-12-08"),
        balance_due_on=day("2026-12-20"),
    )
    world.plan("2026-12-01")

    assert {(i.kind, i.status) for i in world.items()} == {
        ("option_expiry", Status.WITHDRAWN),
        ("arrival", Status.PENDING),
        ("balance_due", Status.PENDING),
    }


def test_passed_window_expires_the_item_but_keeps_it(world: World) -> None:
    only_arrival(world)
    world.put(ref="B1", arrival_on=day("2026-12-08"))
    world.plan("2026-12-01")

    on_the_day = world.plan("2026-12-08")
    after = world.plan("2026-12-09")

    assert on_the_day.expired == 0
    assert after.expired == 1
    assert [(i.status, i.reason) for i in world.items()] == [(Status.EXPIRED, "window_passed")]


def test_catch_up_after_downtime_queues_open_windows_and_reports_missed(world: World) -> None:
    only_arrival(world)
    world.put(ref="OPEN", arrival_on=day("2026-12-12"))  # window 12-05..12-12: still open
    world.put(ref="GONE", arrival_on=day("2026-12-06"))  # window 11-29..12-06: opened and closed
    world.put(ref="SEEN", arrival_on=day("2026-12-01"))  # window 11-24..12-01: listed on 12-01
    world.plan("2026-12-01")
    assert {i.booking_ref for i in world.items(Status.PENDING)} == {"SEEN", "GONE"}

    world.put(ref="LATE", arrival_on=day("2026-12-04"))  # imported while down, window over
    report = world.plan("2026-12-10")  # nothing ran from 12-02 to 12-09

    assert {i.booking_ref for i in world.items(Status.PENDING)} == {"OPEN"}
    assert {m.booking_ref for m in report.missed} == {"LATE"}
    assert {i.booking_ref for i in world.items(Status.MISSED)} == {"LATE"}
    assert {i.booking_ref for i in world.items(Status.EXPIRED)} == {"SEEN", "GONE"}


def test_whole_window_in_downtime_is_missed_not_dropped(world: World) -> None:
    only_arrival(world)
    world.put(ref="B1", arrival_on=day("2026-12-20"))
    world.plan("2026-12-01")  # window 12-13..12-20 not open yet

    report = world.plan("2026-12-24")

    [missed] = report.missed
    assert (missed.booking_ref, missed.visible_from, missed.visible_until) == (
        "B1",
        day("2026-12-13"),
        day("2026-12-20"),
    )
    assert world.plan("2026-12-25").missed == []  # reported once


def test_first_pass_misses_nothing(world: World) -> None:
    only_arrival(world)
    world.put(ref="OLD", arrival_on=day("2026-11-01"))

    report = world.plan("2026-12-01")

    assert report.first_pass and report.missed == [] and world.items() == []


def test_late_booking_still_gets_its_reminder(world: World) -> None:
    only_arrival(world)
    world.plan("2026-12-01")
    world.put(ref="B1", arrival_on=day("2026-12-04"))  # booked 3 days ahead, delay 7

    assert world.plan("2026-12-01").created == 1


def test_kind_without_delay_is_off(world: World) -> None:
    world.settings = settings_with(delays={"arrival": 7})
    world.put(ref="B1", arrival_on=day("2026-12-08"), balance_due_on=day("2026-12-10"))

    world.plan("2026-12-01")

    assert [i.kind for i in world.items()] == ["arrival"]


def test_custom_kind_after_balance_due(world: World) -> None:
    world.settings = settings_with(
        delays={"balance_overdue": 3},
        kinds={
            "balance_overdue": {
                "anchor": "balance_due_on",
                "direction": "after",
                "eligible_as": "balance_due",
                "retention": 10,
                "tab": {"fr": "Relance solde impayé"},
            }
        },
    )
    world.put(ref="B1", balance_due_on=day("2026-11-25"))
    world.put(ref="PAID", balance_due_on=day("2026-11-25"), balance_outstanding=Decimal(0))

    world.plan("2026-11-27")
    assert world.items() == []
    world.plan("2026-11-28")

    [item] = world.items()
    assert (item.kind, item.booking_ref) == ("balance_overdue", "B1")
    assert (item.visible_from, item.visible_until) == (day("2026-11-28"), day("2026-12-08"))


def test_post_departure_manual_example(world: World) -> None:
    world.settings = settings_with(delays={"post_departure": 7})
    for departure in ("2020-01-09", "2020-01-10", "2020-01-24", "2020-01-25"):
        world.put(ref=f"D{departure}", departure_on=day(departure), arrival_on=day("2020-01-01"))

    world.plan("2020-01-31")

    assert sorted(i.booking_ref for i in world.items(Status.PENDING)) == [
        "D2020-01-10",
        "D2020-01-24",
    ]


def test_broken_template_is_reported_and_creates_nothing(world: World, tmp_path: Path) -> None:
    broken = tmp_path / "agencies" / "annecy" / "arrival"
    broken.mkdir(parents=True)
    (broken / "subject.fr.txt").write_text("Arrivée {{ booking.arival_on }}\n", encoding="utf-8")
    world.settings = settings_with(
        delays={"arrival": 7, "balance_due": 30},
        templates_dir=str(tmp_path / "agencies" / "annecy"),
    )
    world.put(ref="B1", arrival_on=day("2026-12-08"), balance_due_on=day("2026-12-20"))

    report = world.plan("2026-12-01")

    assert len(report.errors) == 1
    assert "arrival/subject.fr.txt line 1" in report.errors[0]
    assert "arival_on" in report.errors[0]
    assert [i.kind for i in world.items()] == ["balance_due"]


def test_agency_today_is_local(world: World) -> None:
    agency = world.settings.agency[0]
    late_evening_utc = FixedClock(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))

    assert service.agency_today(agency, late_evening_utc) == date(2026, 12, 1)


def test_changed_booking_renders_its_pending_email_again(world: World) -> None:
    world.settings = settings_with(delays={"balance_due": 30})
    world.put(ref="B1", balance_due_on=day("2026-12-20"), balance_outstanding=Decimal("450.00"))
    world.plan("2026-12-01")
    [before] = world.items()

    world.clock.advance(hours=1)
    world.put(ref="B1", balance_due_on=day("2026-12-20"), balance_outstanding=Decimal("300.00"))
    report = world.plan("2026-12-01")

    [after] = world.items()
    assert report.rerendered == 1
    assert "450,00" in before.text and "300,00" in after.text
    assert after.id == before.id and not after.edited


def test_unchanged_reimport_renders_nothing_again(world: World) -> None:
    world.settings = settings_with(delays={"balance_due": 30})
    world.put(ref="B1", balance_due_on=day("2026-12-20"))
    world.plan("2026-12-01")

    world.clock.advance(hours=1)
    world.put(ref="B1", balance_due_on=day("2026-12-20"))

    assert world.plan("2026-12-01").rerendered == 0


def test_edited_email_is_never_rendered_again(world: World) -> None:
    world.settings = settings_with(delays={"balance_due": 30})
    world.put(ref="B1", balance_due_on=day("2026-12-20"), balance_outstanding=Decimal("450.00"))
    world.plan("2026-12-01")
    [item] = world.items()
    staff_text = Edit(subject="Petit rappel", text="Texte adapté\n", html="<p>x</p>", locale="fr")
    service.save_edit(
        world.database, world.settings, item.id, staff_text, actor="staff", read_at=item.updated_at
    )

    world.clock.advance(hours=1)
    world.put(ref="B1", balance_due_on=day("2026-12-20"), balance_outstanding=Decimal("300.00"))
    report = world.plan("2026-12-01")

    [after] = world.items()
    assert report.rerendered == 0
    assert (after.subject, after.text, after.edited) == ("Petit rappel", "Texte adapté\n", True)


def test_booking_moved_to_another_agency_is_withdrawn_here(world: World) -> None:
    only_arrival(world)
    world.put(ref="B1", arrival_on=day("2026-12-08"))
    world.plan("2026-12-01")

    world.put(ref="B1", agency="chamonix", arrival_on=day("2026-12-08"))
    world.plan("2026-12-02")

    assert [(i.status, i.reason) for i in world.items()] == [(Status.WITHDRAWN, "agency_changed")]


def test_two_replicas_planning_at_once_create_each_item_once(database_url: str) -> None:
    world = World(database_url)
    for n in range(40):
        world.put(ref=f"B{n}", arrival_on=day("2026-12-08"), balance_due_on=day("2026-12-20"))
    barrier = threading.Barrier(2)
    reports: list[service.AgencyPlan] = []

    def replica() -> None:
        engine = create_engine(database_url)
        try:
            database = Database(engine, world.clock)
            barrier.wait()
            agency = world.settings.agency[0]
            reports.append(
                service.plan_agency(database, world.settings, agency, today=day("2026-12-01"))
            )
        finally:
            engine.dispose()

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(reports) == 2
    assert sum(r.created for r in reports) == 80
    assert len(world.items(Status.PENDING)) == 80
    world.engine.dispose()


def test_a_same_day_pass_has_nothing_to_do_until_a_booking_changes(world: World) -> None:
    world.put(ref="B1", arrival_on=day("2026-12-05"))
    first = world.plan("2026-12-01")
    again = world.plan("2026-12-01")
    world.put(ref="B1", arrival_on=day("2026-12-06"))
    after_change = world.plan("2026-12-01")

    assert (first.unchanged, first.created) == (False, 1)
    assert (again.unchanged, again.created) == (True, 0)
    assert not after_change.unchanged
    assert {(i.anchor_on, i.status) for i in world.items()} == {
        (day("2026-12-05"), Status.WITHDRAWN),
        (day("2026-12-06"), Status.PENDING),
    }


def test_a_booking_written_while_a_pass_runs_is_planned_by_the_next_pass(world: World) -> None:
    world.plan("2026-12-01")
    agency = world.settings.agency[0].code
    # The pass reads the agency's data version; a booking is written before it records.
    with world.database.transaction() as store:
        seen = store.pass_state(agency)
    world.put(ref="B2", arrival_on=day("2026-12-05"))
    with world.database.transaction() as store:
        store.record_pass(agency, day("2026-12-01"), version=seen.version, kinds=seen.planned_kinds)

    report = world.plan("2026-12-01")

    assert not report.unchanged
    assert [i.booking_ref for i in world.items(Status.PENDING)] == ["B2"]


def test_agencies_planned_together_each_get_their_own_pass(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three agencies in two transactions (two, then one): each agency's report, items,
    # withdrawals, expiries and missed windows are its own, as when planned alone.
    monkeypatch.setattr(service, "AGENCIES_PER_TRANSACTION", 2)
    annecy = settings_with(delays={"arrival": 7}).agency[0]
    lyon = annecy.model_copy(update={"code": "lyon", "delays": {"arrival": 3}})
    montreal = annecy.model_copy(update={"code": "montreal", "timezone": "America/Montreal"})
    agencies = [annecy, lyon, montreal]
    settings = Settings(agency=agencies, templates={"dir": str(TEMPLATES)})
    with world.database.transaction() as store:
        store.upsert_contacts(
            [
                Contact(
                    ref=f"C-{code}",
                    agency=code,
                    name="Jean",
                    email=f"{code}@example.com",
                    locale="fr",
                )
                for code in ("lyon", "montreal")
            ]
        )
    for ref, agency, arrival in [
        ("B-annecy", "annecy", "2026-12-08"),
        ("B-lyon-later", "lyon", "2026-12-08"),
        ("B-lyon", "lyon", "2026-12-03"),
        ("B-montreal", "montreal", "2026-12-08"),
    ]:
        contact = "C-1" if agency == "annecy" else f"C-{agency}"
        world.put(
            ref=ref,
            agency=agency,
            contact_ref=contact,
            arrival_on=day(arrival),
            departure_on=day("2026-12-20"),
        )

    def plan(on: str) -> dict[str, service.AgencyPlan]:
        reports = service.plan_agencies(world.database, settings, agencies, today=day(on))
        assert [r.agency for r in reports] == ["annecy", "lyon", "montreal"]
        return {r.agency: r for r in reports}

    first = plan("2026-12-01")
    assert {a: (r.created, r.first_pass) for a, r in first.items()} == {
        "annecy": (1, True),
        "lyon": (1, True),
        "montreal": (1, True),
    }
    assert sorted((i.agency, i.booking_ref) for i in world.items(Status.PENDING)) == [
        ("annecy", "B-annecy"),
        ("lyon", "B-lyon"),
        ("montreal", "B-montreal"),
    ]

    world.put(
        ref="B-montreal",
        agency="montreal",
        contact_ref="C-montreal",
        status=BookingStatus.CANCELLED,
        arrival_on=day("2026-12-08"),
        departure_on=day("2026-12-20"),
    )
    second = plan("2026-12-02")
    assert {a: r.withdrawn for a, r in second.items()} == {"annecy": 0, "lyon": 0, "montreal": 1}

    later = plan("2026-12-09")
    assert {a: r.expired for a, r in later.items()} == {"annecy": 1, "lyon": 1, "montreal": 0}
    assert {a: [i.booking_ref for i in r.missed] for a, r in later.items()} == {
        "annecy": [],
        "lyon": ["B-lyon-later"],
        "montreal": [],
    }

    again = plan("2026-12-09")
    assert all(r.unchanged for r in again.values())


def test_a_pass_creating_many_items_refreshes_the_statistics_and_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL the items' statistics are refreshed inside the pass's transaction
    # once it created enough of them (here: one); the pass goes on and commits.
    monkeypatch.setattr(service, "_ANALYZE_AFTER_ITEMS", (1,))
    world.put(ref="B1", arrival_on=day("2026-12-08"), balance_due_on=day("2026-12-31"))

    assert world.plan("2026-12-01").created == 2
    assert len(world.items(Status.PENDING)) == 2
    assert world.plan("2026-12-01").unchanged
