"""Kinds switched on with an agency's delay: offsets and default retentions (SPEC §2)."""

from __future__ import annotations

import dataclasses

import pytest

from reminders.kinds import BUILT_IN_KINDS, DEFAULT_AFTER_RETENTION_DAYS, Direction, activate


@pytest.mark.parametrize(
    ("name", "delay_days", "retention_days", "expected"),
    [
        pytest.param("balance_due", 30, None, 30, id="before-kind-defaults-to-delay"),
        pytest.param("arrival", 7, None, 7, id="arrival-defaults-to-delay"),
        pytest.param("option_expiry", 2, None, 2, id="option-expiry-defaults-to-delay"),
        pytest.param("arrival", 0, None, 0, id="before-kind-delay-0-anchor-day-only"),
        pytest.param("post_departure", 7, None, 14, id="after-kind-defaults-to-14"),
        pytest.param("post_departure", 0, None, 14, id="after-kind-delay-0-still-14"),
        pytest.param("arrival", 7, 3, 3, id="explicit-retention-wins-before"),
        pytest.param("post_departure", 7, 30, 30, id="explicit-retention-wins-after"),
        pytest.param("post_departure", 7, 0, 0, id="explicit-zero-retention-wins"),
    ],
)  # fmt: skip
def test_activate_retention(
    name: str, delay_days: int, retention_days: int | None, expected: int
) -> None:
    kind = activate(BUILT_IN_KINDS[name], delay_days=delay_days, retention_days=retention_days)
    assert kind.retention_days == expected
    assert kind.delay_days == delay_days


def test_default_after_retention_is_two_weeks() -> None:
    assert DEFAULT_AFTER_RETENTION_DAYS == 14


@pytest.mark.parametrize(
    ("retention_days", "expected"),
    [
        pytest.param(None, 5, id="definition-retention-used"),
        pytest.param(9, 9, id="agency-retention-wins-over-definition"),
    ],
)
def test_a_definitions_own_retention(retention_days: int | None, expected: int) -> None:
    overdue = dataclasses.replace(
        BUILT_IN_KINDS["balance_due"],
        name="balance_overdue",
        direction=Direction.AFTER,
        retention_days=5,
    )
    kind = activate(overdue, delay_days=3, retention_days=retention_days)
    assert kind.retention_days == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"delay_days": -1}, "delay must be 0 or more days, not -1",
                     id="negative-delay"),
        pytest.param({"delay_days": 7, "retention_days": -2},
                     "retention must be 0 or more days, not -2", id="negative-retention"),
        pytest.param({"delay_days": 100_000_000}, "delay must be at most 3650 days, not 100000000",
                     id="delay-of-centuries"),
        pytest.param({"delay_days": 7, "retention_days": 3651},
                     "retention must be at most 3650 days, not 3651",
                     id="retention-over-ten-years"),
    ],
)  # fmt: skip
def test_activate_rejects_days_out_of_range(options: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        activate(BUILT_IN_KINDS["arrival"], **options)


@pytest.mark.parametrize(
    ("name", "delay_days", "expected"),
    [
        pytest.param("balance_due", 30, -30, id="before-kind-negative"),
        pytest.param("arrival", 7, -7, id="arrival-negative"),
        pytest.param("option_expiry", 2, -2, id="option-expiry-negative"),
        pytest.param("post_departure", 7, 7, id="after-kind-positive"),
        pytest.param("arrival", 0, 0, id="before-kind-delay-0"),
        pytest.param("post_departure", 0, 0, id="after-kind-delay-0"),
    ],
)
def test_offset_sign(name: str, delay_days: int, expected: int) -> None:
    assert activate(BUILT_IN_KINDS[name], delay_days=delay_days).offset_days == expected


@pytest.mark.parametrize(
    ("name", "direction", "anchor"),
    [
        pytest.param("balance_due", Direction.BEFORE, "balance_due_on", id="balance-due"),
        pytest.param("arrival", Direction.BEFORE, "arrival_on", id="arrival"),
        pytest.param("option_expiry", Direction.BEFORE, "option_expires_on", id="option-expiry"),
        pytest.param("post_departure", Direction.AFTER, "departure_on", id="post-departure"),
    ],
)
def test_built_in_kinds_match_the_spec(name: str, direction: Direction, anchor: str) -> None:
    definition = BUILT_IN_KINDS[name]
    assert (definition.name, definition.direction, definition.anchor) == (name, direction, anchor)


def test_activate_keeps_auto_send_and_the_definition() -> None:
    kind = activate(BUILT_IN_KINDS["arrival"], delay_days=7, auto_send=True)
    assert kind.auto_send is True
    assert (kind.name, kind.anchor, kind.template) == ("arrival", "arrival_on", "arrival")
    assert activate(BUILT_IN_KINDS["arrival"], delay_days=7).auto_send is False


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        pytest.param("fr", "Rappel arrivées", id="french"),
        pytest.param("en", "Arrival reminders", id="english"),
        pytest.param("de", "Arrival reminders", id="unknown-language-falls-back-to-english"),
    ],
)
def test_tab_label(language: str, expected: str) -> None:
    assert activate(BUILT_IN_KINDS["arrival"], delay_days=7).tab_label(language) == expected
