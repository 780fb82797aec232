"""The link pages: every page in every language renders, escapes, and forms are keyed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reminders.consent import ConsentReason
from reminders.pages import FOLDER, LANGUAGES, Form, FormSigner, Pages, Reader, accepted_language
from reminders.preferences import AddressSettings, KindSwitch

FORM = Form(action="/confirm/TOKEN", csrf="f" * 64)
#: Every page, with the context the web app gives it.
PAGES = {
    "confirm": {"address": "a@example.com", "form": FORM},
    "confirmed": {"address": "a@example.com"},
    "used": {"address": "a@example.com", "already_ok": False, "form": FORM},
    "expired": {"address": "a@example.com", "purpose": "confirm", "form": FORM, "valid_days": 30},
    "invalid": {},
    "unsubscribe": {"address": "a@example.com", "form": FORM},
    "unsubscribed": {"address": "a@example.com", "form": FORM},
    "renewed": {"address": "a@example.com", "valid_days": 30},
    "too_soon": {"address": "a@example.com", "wait_minutes": 10},
    "problem": {"status": 404},
    "settings": {
        "address": "a@example.com",
        "view": AddressSettings(
            address="a@example.com",
            consent=ConsentReason.INACTIVE,
            opted_out_by=None,
            switches=[
                KindSwitch(kind="arrival", label="Arrival", receive=True, required=False),
                KindSwitch(kind="post_departure", label="After", receive=False, required=False),
                KindSwitch(kind="balance_due", label="Balance", receive=True, required=True),
            ],
        ),
        "notice": "saved",
        "kind_forms": {
            "arrival": Form(action="/settings/T/kinds/arrival", csrf="a" * 64),
            "post_departure": Form(action="/settings/T/kinds/post_departure", csrf="b" * 64),
        },
        "renew": Form(action="/settings/T/renew", csrf="c" * 64),
        "unsubscribe": Form(action="/settings/T/unsubscribe", csrf="d" * 64),
    },
}


def test_every_page_file_is_one_the_app_renders() -> None:
    names = {p.name.split(".")[0] for p in FOLDER.glob("*.*.html")}
    assert names == set(PAGES)
    for name in PAGES:
        for language in LANGUAGES:
            assert (FOLDER / f"{name}.{language}.html").is_file(), (name, language)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_page_renders_in_every_language(name: str, language: str) -> None:
    for agency in ("Agence du Lac", None):
        html = Pages().html(
            name, Reader(language=language, agency=agency), root="/links", **PAGES[name]
        )

        assert f'<html lang="{language}">' in html
        assert re.search(r"<h1>\S.*</h1>", html), html
        assert '<link rel="stylesheet" href="/links/style.css">' in html
        assert "<script" not in html and "style=" not in html
        if "form" in PAGES[name]:
            assert '<form method="post" action="/confirm/TOKEN">' in html
            assert f'<input type="hidden" name="csrf" value="{"f" * 64}">' in html


def test_addresses_and_agency_names_are_escaped_in_pages_not_in_text() -> None:
    reader = Reader(language="en", agency="Lac & <Montagne>")
    address = '"<b>"@example.com'

    html = Pages().html("confirmed", reader, root="", address=address)
    text = Pages().text("one_click", reader, address=address)

    assert "Lac &amp; &lt;Montagne&gt;" in html
    assert "&#34;&lt;b&gt;&#34;@example.com" in html
    assert "<b>" not in html
    assert text == (
        f"You are unsubscribed: {address} will receive no more emails from {reader.agency}."
    )


def test_the_stylesheet_ships_with_the_pages() -> None:
    assert "button" in Pages.stylesheet()
    assert Path(FOLDER / "style.css").is_file()


def test_a_form_field_belongs_to_one_form_of_one_token_under_one_key() -> None:
    forms = FormSigner("a-secret-key-of-32-characters-xx")
    form = forms.form("", "confirm", "TOKEN")

    assert form.action == "/confirm/TOKEN"
    assert forms.form("/links", "unsubscribe/renew", "T").action == "/links/unsubscribe/T/renew"
    assert forms.is_authentic(form.csrf, "confirm", "TOKEN")
    assert not forms.is_authentic(form.csrf, "confirm/renew", "TOKEN")
    assert not forms.is_authentic(form.csrf, "confirm", "TOKEN2")
    assert not forms.is_authentic(form.csrf, "unsubscribe", "TOKEN")
    assert not FormSigner("another-key-of-32-characters-xxxx").is_authentic(
        form.csrf, "confirm", "TOKEN"
    )
    for value in (None, "", form.csrf.upper(), ["list"]):
        assert not forms.is_authentic(value, "confirm", "TOKEN")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("", None, id="none"),
        pytest.param("fr-FR,fr;q=0.9,en;q=0.5", "fr", id="french first"),
        pytest.param("en-GB, fr;q=0.8", "en", id="english first"),
        pytest.param("de-DE,de;q=0.9,fr;q=0.4,en;q=0.3", "fr", id="ours by weight"),
        pytest.param("de, es", None, id="none of ours"),
        pytest.param("fr;q=0.5, en;q=0.5", "fr", id="tie: first listed"),
        pytest.param("en;q=0, fr;q=0.1", "fr", id="q=0 is not acceptable"),
        pytest.param("en;q=x, fr", "fr", id="malformed weight skipped"),
        pytest.param("FR-ca", "fr", id="any case"),
    ],
)
def test_accepted_language(header: str, expected: str | None) -> None:
    assert accepted_language(header) == expected


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_settings_page_has_a_switch_per_kind_but_the_required_one(language: str) -> None:
    html = Pages().html("settings", Reader(language=language), root="", **PAGES["settings"])

    switches = re.findall(r'<button type="submit" class="switch" role="switch" [^>]*>', html)
    assert [re.search(r'data-kind="([^"]+)"', b)[1] for b in switches] == [  # type: ignore[index]
        "arrival",
        "post_departure",
    ]
    assert 'aria-checked="true"' in switches[0] and 'aria-checked="false"' in switches[1]
    # Each form posts the opposite of the current choice.
    assert '<input type="hidden" name="receive" value="false">' in html
    assert '<input type="hidden" name="receive" value="true">' in html
    assert "/settings/T/kinds/balance_due" not in html
    assert html.count('<form method="post"') == 4  # two switches, confirm, unsubscribe
