"""The link pages over real HTTP: uvicorn on loopback, a migrated database, a real SMTP server.

Each test runs on SQLite and on PostgreSQL (the `world` fixture). The clock only
moves when a test moves it, so links expire on cue.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from factories import MovableClock
from integration.dispatch_world import BASE_URL, World
from integration.web_site import (
    EXPECTED_HEADERS,
    GUEST,
    LiveServer,
    Site,
    confirm_token_in,
    forms_in,
    running_site,
)
from reminders.database import create_engine
from reminders.logs import EventLog
from reminders.store import Database
from reminders.tokens import LinkSigner, Purpose
from reminders.web import create_app


@pytest.fixture
def site(world: World) -> Iterator[Site]:
    with running_site(world) as site:
        yield site


# -- confirm ---------------------------------------------------------------------------------


def test_the_confirm_page_names_the_address_and_a_get_changes_nothing(site: Site) -> None:
    token = site.send_confirmation()
    before = site.status()

    page = site.client.get(f"/confirm/{token}")
    site.client.head(f"/confirm/{token}")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert GUEST in page.text
    assert "Agence du Lac" in page.text
    [(action, fields)] = forms_in(page.text)
    assert action == f"/confirm/{token}"
    assert set(fields) == {"csrf"}
    assert "<button" in page.text
    assert site.status() == before == ("confirmation_pending", None, 1)


def test_confirming_works_once_then_says_the_link_was_used(site: Site) -> None:
    token = site.send_confirmation()
    page = site.client.get(f"/confirm/{token}")

    done = site.submit(page)

    assert done.status_code == 200
    assert "Votre adresse est confirmée" in done.text
    assert site.status()[0] == "ok"
    assert site.last_event() == ("confirm", "contact", "email link", "contact")
    after = site.status()

    again = site.submit(page)

    # 409: the link is authentic and in date, but its one use is taken.
    assert again.status_code == 409
    assert "déjà été utilisé" in again.text
    assert "déjà confirmée" in again.text
    assert site.status() == after


def test_an_expired_confirmation_link_says_so_and_offers_a_new_email(site: Site) -> None:
    token = site.send_confirmation()
    page = site.client.get(f"/confirm/{token}")
    site.world.clock.advance(days=31)

    shown = site.client.get(f"/confirm/{token}")
    posted = site.submit(page)

    for response in (shown, posted):
        assert response.status_code == 410
        assert "Ce lien a expiré" in response.text
        [(action, _fields)] = forms_in(response.text)
        assert action == f"/confirm/{token}/renew"
        assert "M’envoyer un nouvel e-mail de confirmation" in response.text
    assert site.status()[0] == "confirmation_pending"


def test_a_new_email_asked_from_an_expired_link_arrives_and_its_link_works(site: Site) -> None:
    token = site.send_confirmation()
    site.world.clock.advance(days=31)
    expired = site.client.get(f"/confirm/{token}")

    renewed = site.submit(expired)

    assert renewed.status_code == 200
    assert "Nous avons envoyé un nouvel e-mail de confirmation" in renewed.text
    messages = site.world.mail_server.to(GUEST)
    assert len(messages) == 2
    assert site.last_event()[:3] == ("send_confirmation", "contact", "web form")
    new_token = confirm_token_in(messages[-1])
    assert new_token != token

    done = site.submit(site.client.get(f"/confirm/{new_token}"))

    assert done.status_code == 200
    assert site.status()[0] == "ok"


def test_asking_again_within_minutes_is_refused_with_a_clear_page(site: Site) -> None:
    token = site.send_confirmation()
    site.world.clock.advance(days=31)
    expired = site.client.get(f"/confirm/{token}")
    assert site.submit(expired).status_code == 200
    site.world.clock.advance(minutes=3)

    again = site.submit(expired)

    assert again.status_code == 429
    assert again.headers["retry-after"] == "600"
    assert "vient d’être envoyé" in again.text
    assert len(site.world.mail_server.to(GUEST)) == 2


def _forged(site: Site, kind: str) -> str:
    genuine = site.send_confirmation()
    middle = len(genuine) // 2
    flipped = "A" if genuine[middle] != "A" else "B"
    return {
        "garbage": "not-a-token",
        "tampered": genuine[:middle] + flipped + genuine[middle + 1 :],
        "other purpose": site.unsubscribe_token(),
        "other key": LinkSigner("another-deployment-key-0123456789", site.world.clock).sign_payload(
            Purpose.CONFIRM, {"a": GUEST, "n": "nonce"}
        ),
    }[kind]


@pytest.mark.parametrize("kind", ["garbage", "tampered", "other purpose", "other key"])
def test_a_link_we_did_not_sign_gets_a_clear_page_and_no_details(site: Site, kind: str) -> None:
    token = _forged(site, kind)
    before = site.status()

    page = site.client.get(f"/confirm/{token}")

    assert page.status_code == 400
    assert "Ce lien n’est pas valide" in page.text
    assert GUEST not in page.text
    assert forms_in(page.text) == []
    assert "Traceback" not in page.text and "Signature" not in page.text
    assert site.status() == before


def test_an_authentic_link_whose_secret_part_is_unknown_is_refused(site: Site) -> None:
    site.send_confirmation()
    made_up = site.signer.sign_payload(Purpose.CONFIRM, {"a": GUEST, "n": "made-up"})
    page = site.client.get(f"/confirm/{made_up}")
    assert page.status_code == 200  # its signature is ours: the page shows

    posted = site.submit(page)

    assert posted.status_code == 400
    assert "Ce lien n’est pas valide" in posted.text
    assert site.status()[0] == "confirmation_pending"


# -- unsubscribe ------------------------------------------------------------------------------


def test_the_unsubscribe_page_changes_nothing_and_its_button_opts_out(site: Site) -> None:
    site.contact(confirmed=True)
    token = site.unsubscribe_token()
    before = site.status()

    page = site.client.get(f"/unsubscribe/{token}")

    assert page.status_code == 200
    assert GUEST in page.text
    assert "Me désinscrire" in page.text
    assert site.status() == before == ("ok", None, 1)

    done = site.submit(page)

    assert done.status_code == 200
    assert "Vous êtes désinscrit" in done.text
    assert site.status()[:2] == ("opted_out", "contact")
    assert site.last_event() == ("opt_out", "contact", "web form", "contact")
    [(action, _fields)] = forms_in(done.text)
    assert action == f"/unsubscribe/{token}/renew"


@pytest.mark.parametrize("encoding", ["form-urlencoded", "multipart"])
def test_one_click_unsubscribes_at_once_without_a_redirect(site: Site, encoding: str) -> None:
    site.contact(confirmed=True)
    token = site.unsubscribe_token()
    body = {"List-Unsubscribe": "One-Click"}

    if encoding == "multipart":
        response = site.client.post(
            f"/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")}
        )
        assert response.request.headers["content-type"].startswith("multipart/form-data")
    else:
        response = site.client.post(f"/unsubscribe/{token}", data=body)
        assert response.request.headers["content-type"] == "application/x-www-form-urlencoded"

    assert "cookie" not in response.request.headers
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    assert len(response.text) < 200
    assert GUEST in response.text
    assert site.status()[:2] == ("opted_out", "contact")
    assert site.last_event() == ("opt_out", "contact", "one-click", "contact")


def test_changing_ones_mind_after_unsubscribing_sends_a_confirmation(site: Site) -> None:
    site.contact(confirmed=True)
    token = site.unsubscribe_token()
    unsubscribed = site.submit(site.client.get(f"/unsubscribe/{token}"))
    assert "Vous avez changé d’avis" in unsubscribed.text

    renewed = site.submit(unsubscribed)

    assert renewed.status_code == 200
    [message] = site.world.mail_server.to(GUEST)
    done = site.submit(site.client.get(f"/confirm/{confirm_token_in(message)}"))
    assert done.status_code == 200
    assert site.status()[:2] == ("ok", None)


def test_an_expired_unsubscribe_link_says_what_to_do(site: Site) -> None:
    token = site.unsubscribe_token()
    site.world.clock.advance(days=366)

    page = site.client.get(f"/unsubscribe/{token}")
    one_click = site.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})

    assert page.status_code == one_click.status_code == 410
    assert "Ce lien a expiré" in page.text
    assert "un e-mail plus récent" in page.text
    assert site.status()[0] == "unconfirmed"


# -- clocks of two hosts that disagree ---------------------------------------------------------


def _signed_ahead(site: Site, ahead: timedelta) -> str:
    """An unsubscribe token made by a host whose clock runs `ahead` of the web server's."""
    fast = MovableClock(site.world.clock.now() + ahead)
    return LinkSigner(site.world.settings.link_secret(), fast).sign(Purpose.UNSUBSCRIBE, GUEST)


def test_a_link_made_a_minute_ahead_of_the_servers_clock_works(site: Site) -> None:
    site.contact(confirmed=True)
    token = _signed_ahead(site, timedelta(minutes=1))

    page = site.client.get(f"/unsubscribe/{token}")
    one_click = site.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})

    assert page.status_code == 200
    assert "Me désinscrire" in page.text
    assert one_click.status_code == 200
    assert site.status()[:2] == ("opted_out", "contact")


def test_a_link_made_far_ahead_of_the_servers_clock_gets_the_invalid_page(site: Site) -> None:
    site.contact(confirmed=True)
    token = _signed_ahead(site, timedelta(hours=2))

    page = site.client.get(f"/unsubscribe/{token}")
    one_click = site.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})

    assert page.status_code == one_click.status_code == 400
    assert "Ce lien n’est pas valide" in page.text
    assert site.status()[0] == "ok"


# -- no address in any URL ---------------------------------------------------------------------


def test_no_link_in_an_email_shows_the_address(site: Site) -> None:
    site.send_confirmation()
    [message] = site.world.mail_server.to(GUEST)
    urls = re.findall(r"https?://[^\s<>\"]+", message.part("plain") + message.part("html"))
    urls += re.findall(r"<(https?://[^>]+)>", str(message.message["List-Unsubscribe"]))

    assert {url.split("/")[3] for url in urls} >= {"confirm", "unsubscribe"}
    for url in urls:
        for token in url.split("/")[4:]:
            padded = token + "=" * (-len(token) % 4)
            readable = token + base64.urlsafe_b64decode(padded).decode("latin-1")
            assert "guest" not in readable and "example.com" not in readable, url
        assert site.client.get(url.removeprefix(BASE_URL)).status_code == 200


# -- posts forged by another site's page ----------------------------------------------------

#: What a browser says when a page of another site makes it post to us.
FROM_ELSEWHERE = [
    {"Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://www.links.example"},
    {"Origin": "null"},
]


@pytest.mark.parametrize(
    "path", ["/confirm/{c}", "/confirm/{c}/renew", "/unsubscribe/{u}", "/unsubscribe/{u}/renew"]
)
def test_a_post_from_another_site_or_with_a_wrong_field_is_refused_and_changes_nothing(
    site: Site, path: str
) -> None:
    url = path.format(c=site.send_confirmation(), u=site.unsubscribe_token())
    site.world.clock.advance(minutes=11)  # a renewal would be allowed
    before, sent = site.status(), len(site.world.mail_server.messages())

    attempts = [(headers, {}) for headers in FROM_ELSEWHERE]
    attempts += [({}, {"csrf": ""}), ({}, {"csrf": "0" * 64})]
    attempts += [({"Origin": "https://evil.example"}, {"List-Unsubscribe": "Yes"})]
    for headers, fields in attempts:
        response = site.client.post(url, data=fields, headers=headers)

        assert response.status_code == 403, (headers, fields)
        assert "Ce formulaire ne peut pas être utilisé" in response.text
    assert site.status() == before
    assert len(site.world.mail_server.messages()) == sent


def test_a_client_holding_the_link_may_post_without_a_browser(site: Site) -> None:
    # No cookies: the token is the only authority, and a script that has the link could
    # read the form's field anyway. Only a browser sent by another site is refused.
    token = site.send_confirmation()
    same_site = {"Sec-Fetch-Site": "same-origin", "Origin": "https://links.example"}

    plain = site.client.post(f"/confirm/{token}")
    again = site.client.post(f"/confirm/{token}", headers=same_site)

    assert plain.status_code == 200
    assert site.status()[0] == "ok"
    assert again.status_code == 409  # used once already: not refused as a forgery


def test_a_form_field_is_good_for_its_own_form_only(site: Site) -> None:
    confirm = site.send_confirmation()
    [(_action, fields)] = forms_in(site.client.get(f"/confirm/{confirm}").text)
    unsubscribe = site.unsubscribe_token()
    before = site.status()

    renew = site.client.post(f"/confirm/{confirm}/renew", data=fields)
    other = site.client.post(f"/unsubscribe/{unsubscribe}", data=fields)

    assert renew.status_code == other.status_code == 403
    assert site.status() == before


# -- every response ----------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(site: Site) -> None:
    token = site.send_confirmation()
    responses = {
        "page": site.client.get(f"/confirm/{token}"),
        "stylesheet": site.client.get("/style.css"),
        "not found": site.client.get("/nothing-here"),
        "method not allowed": site.client.put(f"/confirm/{token}"),
        "forbidden": site.client.post(f"/confirm/{token}"),
        "invalid": site.client.get("/unsubscribe/forged"),
        "one-click": site.client.post(
            f"/unsubscribe/{site.unsubscribe_token()}", data={"List-Unsubscribe": "One-Click"}
        ),
        "too large": site.client.post(f"/confirm/{token}", data={"csrf": "x" * 20_000}),
    }

    for name, response in responses.items():
        csp = response.headers.get("content-security-policy", "")
        directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
        assert directives.get("default-src") == ["'none'"], name
        assert directives.get("form-action") == ["'self'"], name
        assert directives.get("frame-ancestors") == ["'none'"], name
        assert directives.get("base-uri") == ["'none'"], name
        assert "script-src" not in directives, name
        assert "'unsafe-inline'" not in csp, name
        for header, value in EXPECTED_HEADERS.items():
            assert response.headers.get(header) == value, (name, header)
        assert "server" not in response.headers, name
    assert responses["stylesheet"].headers["content-type"].startswith("text/css")
    assert responses["not found"].status_code == 404
    assert responses["method not allowed"].status_code == 405
    assert "GET" in responses["method not allowed"].headers["allow"]
    assert responses["too large"].status_code == 413


def test_unknown_paths_and_methods_get_clear_pages(site: Site) -> None:
    token = site.send_confirmation()

    missing = site.client.get("/admin", headers={"accept-language": "fr-FR,fr;q=0.9,en;q=0.5"})
    renew_by_get = site.client.get(f"/confirm/{token}/renew")
    delete = site.client.delete(f"/unsubscribe/{token}")

    english = site.client.get("/admin", headers={"accept-language": "en-GB, fr;q=0.8"})

    assert missing.status_code == english.status_code == 404
    assert "Page introuvable" in missing.text
    assert "Page not found" in english.text
    assert renew_by_get.status_code == delete.status_code == 405
    assert "<h1>" in renew_by_get.text
    assert site.status()[0] == "confirmation_pending"


def test_pages_speak_the_contacts_language(site: Site) -> None:
    site.contact("olivia@example.ca", locale="en", ref="C-2", confirmed=True)
    site.contact("lea@example.fr", locale="fr", ref="C-3", confirmed=True)

    english = site.client.get(f"/unsubscribe/{site.unsubscribe_token('olivia@example.ca')}")
    french = site.client.get(f"/unsubscribe/{site.unsubscribe_token('lea@example.fr')}")

    assert '<html lang="en">' in english.text
    assert "<h1>Unsubscribe</h1>" in english.text
    assert '<html lang="fr">' in french.text
    assert "<h1>Se désinscrire</h1>" in french.text


def test_request_logs_name_routes_never_tokens(site: Site) -> None:
    token = site.send_confirmation()
    site.submit(site.client.get(f"/confirm/{token}"))
    site.client.get("/nothing-here")

    log = site.log.getvalue()

    assert "route=/confirm/{token}" in log
    assert "status=200" in log and "status=404" in log
    assert token not in log
    assert token.split(".")[0] not in log


def test_a_database_out_of_reach_gets_a_503_page(site: Site, tmp_path: Path) -> None:
    token = site.unsubscribe_token()
    engine = create_engine(f"sqlite:///{tmp_path / 'missing-folder' / 'reminders.db'}")
    unreachable = Database(engine, site.world.clock)
    log = io.StringIO()
    app = create_app(site.world.settings, unreachable, log=EventLog(site.world.clock, stream=log))
    live = LiveServer(app).start()
    try:
        with httpx.Client(base_url=live.url, timeout=20) as client:
            page = client.get(f"/unsubscribe/{token}")
    finally:
        live.stop()
        engine.dispose()

    assert page.status_code == 503
    assert "Merci de réessayer plus tard" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "sqlite" not in page.text.lower() and "missing-folder" not in page.text
    assert "status=503" in log.getvalue()


def test_a_mail_server_out_of_reach_gets_a_503_page_and_nothing_recorded(site: Site) -> None:
    token = site.send_confirmation()
    site.world.clock.advance(days=31)
    expired = site.client.get(f"/confirm/{token}")
    before = site.status()
    site.world.mail_server.stop()

    response = site.submit(expired)

    assert response.status_code == 503
    assert "Merci de réessayer plus tard" in response.text
    assert site.status() == before
