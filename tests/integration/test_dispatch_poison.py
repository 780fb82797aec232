"""Hostile data in a tab, on SQLite and PostgreSQL: it never adds a header, never stops a batch.

Imports and edits refuse control characters (tests/unit/test_imports.py,
test_editing.py); these rows get into the database around them, as rows written
by an older version or by hand would, and the dispatcher must still hold.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy.exc import DataError

from integration.dispatch_world import World, address_of, results
from reminders import service
from reminders.delivery import Result
from reminders.editing import Edit
from reminders.queue import Status

#: Display names and subjects that try to add a header, raw or as RFC 2047 encoded words.
HOSTILE = {
    "crlf": "Marie\r\nBcc: evil@evil.example",
    "lf": "Marie\nX-Injected: yes",
    "encoded-crlf": "=?utf-8?q?Marie=0D=0ABcc:_evil@evil.example?=",
    "encoded-b64-crlf": "=?utf-8?b?TWFyaWUNClJlcGx5LVRvOiBhdHRhY2tlckBldmlsLmV4YW1wbGU=?=",
    "nul": "Marie\x00Dupont",
    "esc": "Marie\x1b[31m",
}

#: Headers a reminder has; anything else in a received message was injected.
EXPECTED_HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "content-language",
    "mime-version",
    "content-type",
}


def assert_no_injected_header(world: World) -> None:
    for received in world.mail_server.messages():
        head = received.data.split(b"\r\n\r\n", 1)[0]
        names = {m.lower() for m in re.findall(rb"^([^\s:]+):", head, re.M)}
        assert names <= {n.encode() for n in EXPECTED_HEADERS}, names
        assert b"evil" not in head and b"attacker" not in head
        assert b"\x00" not in received.data and b"\x1b" not in received.data


@pytest.mark.parametrize("name", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_name_fails_its_item_and_the_tab_goes_on(world: World, name: str) -> None:
    before, after = world.guests(1, 3)
    if "\x00" in name and world.engine.dialect.name == "postgresql":
        # PostgreSQL cannot store a NUL at all: such a row never gets there.
        with pytest.raises(DataError):
            world.guests(2, name=name)
        return
    [hostile] = world.guests(2, name=name)

    report = world.dispatcher().send_tab("annecy", "arrival")

    assert sorted(results(report)) == sorted(
        [(before, Result.SENT), (hostile, Result.FAILED), (after, Result.SENT)]
    )
    [failure] = report.of(Result.FAILED)
    assert "control character" in (failure.detail or "")
    item = world.item(hostile)
    assert (item.status, item.reason) == (Status.FAILED, "unbuildable")
    assert item.last_error and "control character" in item.last_error
    assert sorted(r for m in world.mail_server.messages() for r in m.rcpt_to) == [
        address_of(1),
        address_of(3),
    ]
    assert_no_injected_header(world)


@pytest.mark.parametrize(
    "subject",
    [v for v in HOSTILE.values() if "\x00" not in v],
    ids=[k for k in HOSTILE if k != "nul"],
)
def test_an_edited_hostile_subject_never_becomes_a_header(world: World, subject: str) -> None:
    [item_id, other] = world.guests(1, 2)
    item = world.item(item_id)
    # Around `reminders edit`, which refuses it: as an older version may have stored it.
    service.save_edit(
        world.database,
        world.settings,
        item_id,
        Edit(subject=subject, text=item.text, html=item.html, locale=item.locale),
        actor="staff",
        read_at=item.updated_at,
    )

    report = world.dispatcher().send([item_id, other])

    assert results(report) == [(item_id, Result.FAILED), (other, Result.SENT)]
    assert_no_injected_header(world)


def test_an_encoded_word_without_control_characters_is_sent_as_written(world: World) -> None:
    literal = "=?utf-8?q?Marie_Dupont?="
    [item_id] = world.guests(1, name=literal)

    assert results(world.dispatcher().send([item_id])) == [(item_id, Result.SENT)]

    [received] = world.mail_server.messages()
    [to] = received.message["To"].addresses
    # A mail program shows what the contacts file said, not a decoded name.
    assert to.display_name == literal
    assert_no_injected_header(world)


def test_the_daemon_tick_survives_a_hostile_item_and_sends_the_others(world: World) -> None:
    good = world.guests(1, 3)
    [hostile] = world.guests(2, name=HOSTILE["crlf"])
    world.approve(*good, hostile)

    first = world.dispatcher().dispatch_due()
    second = world.dispatcher().dispatch_due()

    assert sorted(results(first)) == sorted(
        [(good[0], Result.SENT), (hostile, Result.FAILED), (good[1], Result.SENT)]
    )
    # Failed for good: the next tick does not try it again, and does not crash.
    assert results(second) == []
    assert len(world.mail_server.messages()) == 2
    assert_no_injected_header(world)
