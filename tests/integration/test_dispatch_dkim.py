"""The dispatcher signs with DKIM, on SQLite and PostgreSQL: every email, one key load.

An email that cannot be signed fails alone with its reason; the batch goes on.
"""

from __future__ import annotations

from typing import Any

import dkim
import pytest

from dkim_keys import dns_answering, rsa_pem
from integration.dispatch_world import World, address_of, results
from reminders import dkim as signing
from reminders.config import DkimSettings
from reminders.delivery import Result
from reminders.queue import Status


def sign_with_dkim(world: World, **mail: Any) -> signing.DkimSigner:
    if mail:
        world.configure(mail=mail)
    section = DkimSettings(
        domain="agence-du-lac.example", selector="reminders", private_key=rsa_pem()
    )
    world.settings = world.settings.model_copy(update={"dkim": section})
    loaded = signing.signer_for(world.settings)
    assert loaded is not None
    return loaded


@pytest.mark.parametrize("connections", [1, 3])
def test_every_email_of_a_tab_is_signed_with_a_key_loaded_once(
    world: World, monkeypatch: pytest.MonkeyPatch, connections: int
) -> None:
    signer = sign_with_dkim(world, connections=connections, batch_size=2)
    loads: list[object] = []
    monkeypatch.setattr(
        signing, "load_signer", lambda *args: loads.append(args) or pytest.fail("loaded again")
    )
    world.guests(1, 2, 3, 4, 5)

    report = world.dispatcher().send_tab("annecy", "arrival")
    again = world.dispatcher().send_tab("annecy", "arrival")

    assert report.count(Result.SENT) == 5 and not again.deliveries
    assert loads == []
    received = world.mail_server.messages()
    assert len(received) == 5
    for message in received:
        assert dkim.verify(message.data, dnsfunc=dns_answering(signer))


def test_an_email_that_cannot_be_signed_fails_alone_with_its_reason(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_with_dkim(world)
    before, unsignable, after = world.guests(1, 2, 3)
    real = signing.DkimSigner._signature

    def refuse_guest_2(self: signing.DkimSigner, data: bytes, now: Any) -> bytes:
        if address_of(2).encode() in data:
            raise dkim.MessageFormatError("unexpected characters in a header")
        return real(self, data, now)

    monkeypatch.setattr(signing.DkimSigner, "_signature", refuse_guest_2)

    report = world.dispatcher().send_tab("annecy", "arrival")

    assert sorted(results(report)) == sorted(
        [(before, Result.SENT), (unsignable, Result.FAILED), (after, Result.SENT)]
    )
    item = world.item(unsignable)
    assert (item.status, item.reason) == (Status.FAILED, "unbuildable")
    assert item.last_error and "cannot be signed with DKIM" in item.last_error
    assert sorted(r for m in world.mail_server.messages() for r in m.rcpt_to) == [
        address_of(1),
        address_of(3),
    ]


def test_the_daily_summary_is_signed_too(world: World) -> None:
    world.configure(agency={"summary_to": "Office <office@agence-du-lac.example>"})
    signer = sign_with_dkim(world)
    world.guests(1)

    assert world.dispatcher().send_summary(world.agency) == "office@agence-du-lac.example"

    [message] = world.mail_server.messages()
    assert dkim.verify(message.data, dnsfunc=dns_answering(signer))
