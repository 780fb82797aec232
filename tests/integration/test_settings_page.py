"""The email settings page over real HTTP, on SQLite and on PostgreSQL.

Uvicorn on loopback, a migrated database, a real SMTP server (the `world` fixture).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from integration.dispatch_world import BASE_URL, World
from integration.web_site import EXPECTED_HEADERS, GUEST, Site, forms_in, running_site
from reminders import registry
from reminders.tokens import Purpose

REQUIRED = {"delays": {"arrival": 7, "post_departure": 7, "balance_due": 30}}


@pytest.fixture
def site(world: World) -> Iterator[Site]:
    world.configure(agency=REQUIRED | {"required": {"balance_due": True}})
    with running_site(world) as site:
        yield site


def token_of(site: Site, address: str = GUEST) -> str:
    return site.signer.sign(Purpose.SETTINGS, address)


def kinds_of(site: Site) -> dict[str, bool]:
    return registry.status(site.world.database, site.world.settings, GUEST).kinds


def switch_forms(page: httpx.Response) -> dict[str, tuple[str, dict[str, str]]]:
    """The switch forms of the page, by kind."""
    found = {}
    for action, fields in forms_in(page.text):
        match = re.search(r"/kinds/([a-z0-9_-]+)$", action)
        if match:
            found[match[1]] = (action, fields)
    return found


def test_the_page_shows_the_status_the_switches_and_a_get_changes_nothing(site: Site) -> None:
    token = token_of(site)
    before = site.status()

    page = site.client.get(f"/settings/{token}")
    site.client.head(f"/settings/{token}")

    assert page.status_code == 200
    for name, value in EXPECTED_HEADERS.items():
        assert page.headers[name] == value
    assert "Vos préférences e-mail" in page.text
    assert GUEST in page.text and "Agence du Lac" in page.text
    assert "Non confirmée" in page.text
    assert "M’envoyer un e-mail de confirmation" in page.text
    assert "Me désinscrire de tous les e-mails" in page.text
    switches = switch_forms(page)
    # balance_due is required by the agency: listed, without a switch.
    assert set(switches) == {"arrival", "post_departure"}
    assert "Rappels du solde à régler" in page.text
    assert "Toujours envoyés" in page.text
    for _action, fields in switches.values():
        assert fields["receive"] == "false" and "csrf" in fields
    assert site.status() == before and kinds_of(site) == {}


def test_switching_a_kind_off_and_on_records_each_change(site: Site) -> None:
    token = token_of(site)
    page = site.client.get(f"/settings/{token}")
    action, fields = switch_forms(page)["post_departure"]

    off = site.client.post(action, data=fields)

    assert off.status_code == 200
    assert "Votre choix est enregistré" in off.text
    assert kinds_of(site) == {"post_departure": False}
    assert site.last_event() == ("refuse_kind", "contact", "web form", "contact")
    action, fields = switch_forms(off)["post_departure"]
    assert fields["receive"] == "true"  # the switch now turns it back on

    on = site.client.post(action, data=fields)

    assert on.status_code == 200
    assert kinds_of(site) == {"post_departure": True}
    assert site.last_event() == ("accept_kind", "contact", "web form", "contact")


def test_a_forged_post_cannot_switch_off_a_required_kind(site: Site) -> None:
    token = token_of(site)
    before = site.status()

    forged = site.client.post(f"/settings/{token}/kinds/balance_due", data={"receive": "false"})

    assert forged.status_code == 409
    assert "ne peuvent pas être désactivés" in forged.text
    assert kinds_of(site) == {} and site.status() == before


def test_a_post_from_another_site_or_with_a_wrong_field_is_refused(site: Site) -> None:
    token = token_of(site)
    page = site.client.get(f"/settings/{token}")
    action, fields = switch_forms(page)["arrival"]

    elsewhere = site.client.post(
        action, data={"receive": "false"}, headers={"sec-fetch-site": "cross-site"}
    )
    wrong = site.client.post(action, data={**fields, "csrf": "0" * 64})
    other_form = switch_forms(page)["post_departure"][1]["csrf"]
    swapped = site.client.post(action, data={**fields, "csrf": other_form})

    assert [r.status_code for r in (elsewhere, wrong, swapped)] == [403, 403, 403]
    assert kinds_of(site) == {}


def test_an_unknown_kind_or_a_bad_value_changes_nothing(site: Site) -> None:
    token = token_of(site)

    unknown = site.client.post(f"/settings/{token}/kinds/option_expiry", data={"receive": "false"})
    bad = site.client.post(f"/settings/{token}/kinds/arrival", data={"receive": "maybe"})

    assert (unknown.status_code, bad.status_code) == (404, 400)
    assert kinds_of(site) == {}


def test_unsubscribing_from_everything_opts_out_and_the_page_says_so(site: Site) -> None:
    site.contact(confirmed=True)
    page = site.client.get(f"/settings/{token_of(site)}")
    assert "Confirmée" in page.text
    assert "M’envoyer un e-mail de confirmation" not in page.text
    [unsubscribe] = [f for f in forms_in(page.text) if f[0].endswith("/unsubscribe")]

    done = site.client.post(unsubscribe[0], data=unsubscribe[1])

    assert done.status_code == 200
    assert "Vous êtes désinscrit" in done.text
    assert "Désinscrite" in done.text
    assert site.status()[:2] == ("opted_out", "contact")
    assert site.last_event() == ("opt_out", "contact", "web form", "contact")


def test_the_confirmation_button_sends_an_email_whose_link_confirms(site: Site) -> None:
    page = site.client.get(f"/settings/{token_of(site)}")
    [renew] = [f for f in forms_in(page.text) if f[0].endswith("/renew")]

    sent = site.client.post(renew[0], data=renew[1])
    again = site.client.post(renew[0], data=renew[1])

    assert sent.status_code == 200
    assert "Nous avons envoyé un nouvel e-mail de confirmation" in sent.text
    assert again.status_code == 429
    [message] = site.world.mail_server.to(GUEST)
    assert site.last_event()[:3] == ("send_confirmation", "contact", "web form")
    assert site.status()[0] == "confirmation_pending"
    # The confirmation email's footer links to the settings page too.
    settings_link = re.search(rf"{BASE_URL}/settings/(\S+)", message.part("plain"))
    assert settings_link and GUEST not in settings_link[0]
    shown = site.client.get(f"/settings/{settings_link[1]}")
    assert "En attente" in shown.text


def test_the_page_speaks_the_contacts_language(site: Site) -> None:
    site.contact(locale="en")

    page = site.client.get(f"/settings/{token_of(site)}")

    assert "Your email settings" in page.text
    assert "Not confirmed" in page.text
    assert "Emails after your stay" in page.text
    assert "Always sent" in page.text


@pytest.mark.parametrize("kind", ["garbage", "unsubscribe token", "expired"])
def test_a_link_that_is_not_a_valid_settings_link_shows_no_address(site: Site, kind: str) -> None:
    if kind == "expired":
        token = token_of(site)
        site.world.clock.advance(days=366)
    else:
        token = "not-a-token" if kind == "garbage" else site.unsubscribe_token()

    page = site.client.get(f"/settings/{token}")
    posted = site.client.post(f"/settings/{token}/kinds/arrival", data={"receive": "false"})

    expected = 410 if kind == "expired" else 400
    assert (page.status_code, posted.status_code) == (expected, expected)
    assert switch_forms(page) == {}
    if kind != "expired":
        assert GUEST not in page.text
    assert kinds_of(site) == {}
