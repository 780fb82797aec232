"""Rendering emails from admins' Jinja templates: sandbox, escaping, languages, filters."""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup

from factories import booking, day
from reminders.bookings import ANCHOR_FIELDS, Booking, BookingStatus, Contact
from reminders.config import AgencySettings, KindSettings
from reminders.errors import TemplateError
from reminders.kinds import Direction, Kind
from reminders.messages import UNSUBSCRIBE_URL_PLACEHOLDER
from reminders.queue import Rendered
from reminders.registry import confirmation_context
from reminders.service import email_context
from reminders.store import Candidate
from reminders.templates import Renderer, local_date

#: The templates shipped with the project, which agencies start from.
SHIPPED_TEMPLATES = Path(__file__).parents[2] / "templates"

#: A value no template may ever print, however it tries to reach it.
SECRET = "s3cr3t-do-not-leak"

#: Babel separates thousands with a narrow no-break space in French, and a currency
#: sign with a no-break space.
NARROW_NBSP = "\u202f"
NBSP = "\xa0"

#: A kind's three parts, plain enough that only what a test changes matters.
PLAIN = {
    "k/subject.en.txt": "Reminder {{ booking.ref }}",
    "k/body.en.txt": "Booking {{ booking.ref }}",
    "k/body.en.html": "<p>Booking {{ booking.ref }}</p>",
}


def write(folder: Path, files: Mapping[str, str]) -> Path:
    """Write `files` (relative name -> text) under `folder` and return it."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def renderer(tmp_path: Path, files: Mapping[str, str]) -> Renderer:
    """Return a renderer over a defaults folder holding `PLAIN` overridden by `files`."""
    return Renderer(write(tmp_path / "defaults", {**PLAIN, **files}))


def context(**booking_values: Any) -> dict[str, Any]:
    return {"booking": {"ref": "B-1001", "property": "Chalet des Aravis", **booking_values}}


def render_error(tmp_path: Path, files: Mapping[str, str], values: Mapping[str, Any]) -> str:
    """Render kind `k` in English and return the message of the `TemplateError` raised."""
    with pytest.raises(TemplateError) as caught:
        renderer(tmp_path, files).render("k", "en", values)
    return str(caught.value)


def spaced(text: str) -> str:
    """Return `text` with Babel's no-break spaces made ordinary spaces."""
    return text.replace(NARROW_NBSP, " ").replace(NBSP, " ")


# -- the subject ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("Reminder {{ booking.ref }}", "Reminder B-1001", id="one-line"),
        pytest.param("Reminder\n{{ booking.ref }}\n", "Reminder B-1001",
                     id="line-break-becomes-space"),
        pytest.param("  Reminder {{ booking.ref }}  \n\n", "Reminder B-1001",
                     id="outer-whitespace-stripped"),
        pytest.param("Reminder\r\n\t{{ booking.ref }}", "Reminder B-1001",
                     id="crlf-and-tab-become-one-space"),
        pytest.param("Reminder   for\n\n\n{{ booking.ref }}", "Reminder for B-1001",
                     id="runs-of-whitespace-become-one-space"),
    ],
)  # fmt: skip
def test_the_subject_is_folded_onto_one_line(tmp_path: Path, source: str, expected: str) -> None:
    rendered = renderer(tmp_path, {"k/subject.en.txt": source}).render("k", "en", context())
    assert rendered.subject == expected


def test_a_newline_in_a_value_cannot_add_a_header_to_the_subject(tmp_path: Path) -> None:
    values = context(property="Chalet\nBcc: victim@example.com")
    source = "Stay at {{ booking.property }}"

    rendered = renderer(tmp_path, {"k/subject.en.txt": source}).render("k", "en", values)

    assert rendered.subject == "Stay at Chalet Bcc: victim@example.com"
    assert "\n" not in rendered.subject


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("", id="empty-file"),
        pytest.param("   \n\n", id="only-whitespace"),
        pytest.param("{% if booking.ref == 'other' %}Reminder{% endif %}\n",
                     id="condition-leaves-nothing"),
    ],
)  # fmt: skip
def test_an_empty_subject_is_an_error_naming_the_file(tmp_path: Path, source: str) -> None:
    message = render_error(tmp_path, {"k/subject.en.txt": source}, context())

    assert "k/subject.en.txt" in message
    assert "empty subject" in message


# -- escaping ---------------------------------------------------------------------------

HOSTILE = "<script>x</script> & Co"


def test_the_html_part_is_escaped_and_the_text_parts_are_not(tmp_path: Path) -> None:
    files = {
        "k/subject.en.txt": "Stay at {{ booking.property }}",
        "k/body.en.txt": "Stay at {{ booking.property }}",
        "k/body.en.html": "<p>Stay at {{ booking.property }}</p>",
    }

    rendered = renderer(tmp_path, files).render("k", "en", context(property=HOSTILE))

    assert rendered.html == "<p>Stay at &lt;script&gt;x&lt;/script&gt; &amp; Co</p>\n"
    assert rendered.text == f"Stay at {HOSTILE}\n"
    assert rendered.subject == f"Stay at {HOSTILE}"


def test_markup_the_template_writes_itself_is_kept(tmp_path: Path) -> None:
    files = {"k/body.en.html": "<p><strong>{{ booking.property }}</strong></p>"}

    rendered = renderer(tmp_path, files).render("k", "en", context(property="A & B"))

    assert rendered.html == "<p><strong>A &amp; B</strong></p>\n"


# -- errors name the file and the line --------------------------------------------------


@pytest.mark.parametrize(
    ("files", "where", "name"),
    [
        pytest.param({"k/subject.en.txt": "Reminder {{ booking.nope }}"},
                     "k/subject.en.txt line 1", "'nope'", id="subject"),
        pytest.param({"k/body.en.txt": "Hello,\n\nYour {{ booking.nope }}\n"},
                     "k/body.en.txt line 3", "'nope'", id="text-body"),
        pytest.param({"k/body.en.html": "<p>Hello</p>\n<p>{{ booking.nope }}</p>"},
                     "k/body.en.html line 2", "'nope'", id="html-body"),
        pytest.param({"k/body.en.txt": "{% if booking.nope %}x{% endif %}"},
                     "k/body.en.txt line 1", "'nope'", id="undefined-in-a-condition"),
        pytest.param({"k/body.en.txt": "{{ missing_variable }}"},
                     "k/body.en.txt line 1", "'missing_variable'",
                     id="undefined-top-level-variable"),
        pytest.param({"k/body.en.txt": "{{ booking.ref.nope }}"},
                     "k/body.en.txt line 1", "'nope'", id="attribute-of-a-string"),
        pytest.param({"layout.html": "<html>\n{% block content %}{% endblock %}\n"
                                     "{{ booking.nope }}\n</html>",
                      "k/body.en.html": '{% extends "layout.html" %}'
                                        "{% block content %}x{% endblock %}"},
                     "layout.html line 3", "'nope'", id="in-the-extended-layout"),
        pytest.param({"macros.html": "{% macro box() %}\n{{ nope }}\n{% endmacro %}",
                      "k/body.en.html": '{% from "macros.html" import box %}{{ box() }}'},
                     "macros.html line 2", "'nope'", id="in-an-imported-macro"),
    ],
)  # fmt: skip
def test_an_undefined_name_is_an_error_naming_file_and_line(
    tmp_path: Path, files: dict[str, str], where: str, name: str
) -> None:
    message = render_error(tmp_path, files, context())

    assert where in message
    assert name in message


@pytest.mark.parametrize(
    ("files", "where"),
    [
        pytest.param({"k/body.en.txt": "Hello\n\n{% if %}x{% endif %}"},
                     "k/body.en.txt line 3", id="if-without-condition"),
        pytest.param({"k/body.en.txt": "Hello\n{% if booking.ref %}x"},
                     "k/body.en.txt line 2", id="unclosed-if"),
        pytest.param({"k/body.en.html": "<p>{{ booking.ref }</p>"},
                     "k/body.en.html line 1", id="unclosed-expression"),
        pytest.param({"k/subject.en.txt": "Hi {{ booking.ref | }}"},
                     "k/subject.en.txt line 1", id="filter-missing"),
        pytest.param({"k/body.en.txt": "{{ booking.ref|no_such_filter }}"},
                     "k/body.en.txt line 1", id="unknown-filter"),
    ],
)  # fmt: skip
def test_a_syntax_error_names_file_and_line(
    tmp_path: Path, files: dict[str, str], where: str
) -> None:
    message = render_error(tmp_path, files, context())

    assert where in message
    assert "reminders config check" in message


def test_a_missing_part_is_an_error_naming_it(tmp_path: Path) -> None:
    folder = write(tmp_path, {"k/subject.en.txt": "Hi", "k/body.en.txt": "Hello"})

    with pytest.raises(TemplateError, match=r"k/body\.en\.html is missing"):
        Renderer(folder).render("k", "en", context())


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("{{ booking.balance / 0 }}", id="division-by-zero"),
        pytest.param("{{ booking.ref + 1 }}", id="type-error"),
        pytest.param("{{ booking.balance|money }}", id="filter-missing-argument"),
        pytest.param("{{ range(10**9)|list|length }}", id="range-too-big"),
    ],
)
def test_a_failing_expression_is_a_template_error(tmp_path: Path, source: str) -> None:
    message = render_error(tmp_path, {"k/body.en.txt": source}, context(balance=Decimal(5)))

    assert "k/body.en.txt" in message


# -- the sandbox ------------------------------------------------------------------------


def helper() -> str:
    """A function in the context: its globals hold `SECRET`."""
    return "ok"


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("{{ ''.__class__ }}", id="class-of-a-string"),
        pytest.param("{{ ''.__class__.__mro__ }}", id="mro-of-str"),
        pytest.param("{{ ''.__class__.__mro__[1].__subclasses__() }}", id="object-subclasses"),
        pytest.param("{{ booking.__class__ }}", id="class-of-a-context-value"),
        pytest.param("{{ booking.ref.__class__.__base__ }}", id="base-of-a-value"),
        pytest.param("{{ cycler.__init__.__globals__ }}", id="globals-of-cycler"),
        pytest.param("{{ cycler.__init__.__globals__.os.environ }}", id="environ-via-cycler"),
        pytest.param("{{ lipsum.__globals__ }}", id="globals-of-lipsum"),
        pytest.param("{{ joiner.__init__.__globals__['__builtins__'] }}", id="builtins"),
        pytest.param("{{ self.__init__.__globals__ }}", id="globals-via-self"),
        pytest.param("{{ helper.__globals__ }}", id="globals-of-a-context-function"),
        pytest.param("{{ helper.__globals__.SECRET }}", id="module-secret-via-function"),
        pytest.param("{{ '{0.__globals__}'.format(helper) }}", id="str-format-escape"),
        pytest.param("{{ booking|attr('__class__') }}", id="attr-filter"),
        pytest.param("{{ helper.__code__ }}", id="code-object"),
    ],
)  # fmt: skip
def test_templates_cannot_reach_python_internals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    monkeypatch.setenv("REMINDERS_WEB__SECRET_KEY", SECRET)
    values = {**context(), "helper": helper}

    message = render_error(tmp_path, {"k/body.en.txt": source}, values)

    assert "k/body.en.txt line 1" in message
    assert "is unsafe" in message
    assert SECRET not in message


def test_templates_cannot_change_the_values_they_are_given(tmp_path: Path) -> None:
    values = context()
    before = copy.deepcopy(values)
    files = {"k/subject.en.txt": "Reminder{{ booking.clear() or '' }}"}

    with contextlib.suppress(TemplateError):
        renderer(tmp_path, files).render("k", "en", values)

    assert values == before


# -- edited files -----------------------------------------------------------------------


def rewrite(path: Path, text: str) -> None:
    """Write `text` to `path` with a later modification time (as an edit a moment later)."""
    seconds = path.stat().st_mtime
    path.write_text(text, encoding="utf-8")
    os.utime(path, (seconds + 10, seconds + 10))


def test_a_new_renderer_sees_a_template_edited_since_the_last_one(tmp_path: Path) -> None:
    files = {
        "layout.en.html": "<p>Old layout {% block content %}{% endblock %}</p>",
        "k/subject.en.txt": "Old subject",
        "k/body.en.txt": "Body",
        "k/body.en.html": "{% extends 'layout.en.html' %}{% block content %}B{% endblock %}",
    }
    folder = write(tmp_path, files)
    first = Renderer(folder)
    assert first.render("k", "en", {}).subject == "Old subject"

    rewrite(folder / "k/subject.en.txt", "New subject")
    rewrite(folder / "layout.en.html", "<p>New layout {% block content %}{% endblock %}</p>")

    # The first renderer keeps to the files as they were; the next one reads them again.
    assert first.render("k", "en", {}).subject == "Old subject"
    rendered = Renderer(folder).render("k", "en", {})
    assert (rendered.subject, rendered.html) == ("New subject", "<p>New layout B</p>\n")


def test_a_new_renderer_sees_a_language_added_since_the_last_one(tmp_path: Path) -> None:
    folder = write(tmp_path, {k: v for k, v in BILINGUAL.items() if ".fr." not in k})
    assert Renderer(folder).language_for("k", "fr") == "en"

    write(folder, BILINGUAL)

    assert Renderer(folder).language_for("k", "fr") == "fr"


# -- which language ---------------------------------------------------------------------

BILINGUAL = {
    f"k/{name}.{lang}.{ext}": "x"
    for lang in ("fr", "en")
    for name, ext in (("subject", "txt"), ("body", "txt"), ("body", "html"))
}


@pytest.mark.parametrize(
    ("contact_locale", "agency_locale", "expected"),
    [
        pytest.param("fr_FR", "en", "fr", id="contact-fr-FR"),
        pytest.param("fr-CA", "en", "fr", id="contact-fr-CA-with-hyphen"),
        pytest.param("fr", "en", "fr", id="contact-fr"),
        pytest.param("en_GB", "fr", "en", id="contact-en-GB-over-agency-fr"),
        pytest.param("de", "fr", "fr", id="contact-de-without-templates-gives-agency"),
        pytest.param("de_CH", "fr_FR", "fr", id="contact-de-CH-agency-fr-FR"),
        pytest.param(None, "fr", "fr", id="no-contact-locale-gives-agency"),
        pytest.param("", "fr", "fr", id="empty-contact-locale-gives-agency"),
        pytest.param("xx_NOPE", "fr", "fr", id="unknown-contact-locale-gives-agency"),
        pytest.param("de", "it", "en", id="neither-has-templates-gives-english"),
        pytest.param(None, None, "en", id="nothing-known-gives-english"),
    ],
)  # fmt: skip
def test_language_for(
    tmp_path: Path, contact_locale: str | None, agency_locale: str | None, expected: str
) -> None:
    subject = Renderer(write(tmp_path, BILINGUAL))
    assert subject.language_for("k", contact_locale, agency_locale) == expected


def test_a_language_counts_only_when_the_kind_has_a_subject_in_it(tmp_path: Path) -> None:
    folder = write(tmp_path, {**BILINGUAL, "k/body.de.txt": "x", "k/body.de.html": "x"})
    assert Renderer(folder).language_for("k", "de", None) == "en"


def test_a_kind_with_no_templates_at_all_is_an_error_listing_the_folders(
    tmp_path: Path,
) -> None:
    defaults = write(tmp_path / "defaults", BILINGUAL)
    override = write(tmp_path / "agency", {"other/subject.fr.txt": "x"})

    with pytest.raises(TemplateError) as caught:
        Renderer(override, defaults).language_for("missing_kind", "fr", "fr")

    message = str(caught.value)
    assert "missing_kind/subject.en.txt" in message
    assert str(defaults) in message
    assert str(override) in message


def test_a_kind_without_english_fails_when_no_candidate_matches(tmp_path: Path) -> None:
    folder = write(tmp_path, {"k/subject.fr.txt": "x"})
    renderer_ = Renderer(folder)

    assert renderer_.language_for("k", "de", "fr") == "fr"
    with pytest.raises(TemplateError, match=r"no templates for 'k'"):
        renderer_.language_for("k", "de", "it")


# -- an agency's own templates ----------------------------------------------------------

FRENCH_DEFAULTS = {
    "layout.fr.html": '<html lang="fr"><body>{% block content %}{% endblock %}'
    "<p>Défaut</p></body></html>",
    "k/subject.fr.txt": "Sujet par défaut",
    "k/body.fr.txt": "Corps par défaut",
    "k/body.fr.html": '{% extends "layout.fr.html" %}{% block content %}Corps{% endblock %}',
}


@pytest.mark.parametrize(
    ("override", "subject", "text", "html"),
    [
        pytest.param({}, "Sujet par défaut", "Corps par défaut\n",
                     '<html lang="fr"><body>Corps<p>Défaut</p></body></html>\n',
                     id="empty-override-folder"),
        pytest.param({"k/subject.fr.txt": "Sujet de l'agence"}, "Sujet de l'agence",
                     "Corps par défaut\n",
                     '<html lang="fr"><body>Corps<p>Défaut</p></body></html>\n',
                     id="subject-only"),
        pytest.param({"k/body.fr.txt": "Corps de l'agence"}, "Sujet par défaut",
                     "Corps de l'agence\n",
                     '<html lang="fr"><body>Corps<p>Défaut</p></body></html>\n',
                     id="text-body-only"),
        pytest.param({"layout.fr.html": "<div>{% block content %}{% endblock %}</div>"},
                     "Sujet par défaut", "Corps par défaut\n", "<div>Corps</div>\n",
                     id="layout-shared-by-default-bodies"),
    ],
)  # fmt: skip
def test_an_override_folder_shadows_the_defaults_file_by_file(
    tmp_path: Path, override: dict[str, str], subject: str, text: str, html: str
) -> None:
    defaults = write(tmp_path / "defaults", FRENCH_DEFAULTS)
    agency = write(tmp_path / "agency", override)

    rendered = Renderer(agency, defaults).render("k", "fr", {})

    assert (rendered.subject, rendered.text, rendered.html) == (subject, text, html)
    assert rendered.locale == "fr"


def test_a_missing_override_folder_is_fine(tmp_path: Path) -> None:
    defaults = write(tmp_path / "defaults", FRENCH_DEFAULTS)

    rendered = Renderer(tmp_path / "not-created", defaults).render("k", "fr", {})

    assert rendered.subject == "Sujet par défaut"


def test_an_override_adds_a_language_the_defaults_lack(tmp_path: Path) -> None:
    defaults = write(tmp_path / "defaults", FRENCH_DEFAULTS)
    agency = write(tmp_path / "agency", {"k/subject.de.txt": "Betreff"})
    renderer_ = Renderer(agency, defaults)

    assert renderer_.language_for("k", "de", "fr") == "de"
    assert renderer_.has("k", "de")
    assert not Renderer(defaults).has("k", "de")


# -- filters ----------------------------------------------------------------------------

DEC_5 = date(2026, 12, 5)
AMOUNT = Decimal("1250.00")


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        pytest.param("fr", "{{ d|date }}", "5 décembre 2026", id="date-fr-default-long"),
        pytest.param("en", "{{ d|date }}", "December 5, 2026", id="date-en-default-long"),
        pytest.param("fr", "{{ d|date('long') }}", "5 décembre 2026", id="date-fr-long"),
        pytest.param("fr", "{{ d|date('short') }}", "05/12/2026", id="date-fr-short"),
        pytest.param("en", "{{ d|date('short') }}", "12/5/26", id="date-en-short"),
        pytest.param("fr", "{{ d|date('full') }}", "samedi 5 décembre 2026", id="date-fr-full"),
        pytest.param("en", "{{ d|date('full') }}", "Saturday, December 5, 2026",
                     id="date-en-full"),
        pytest.param("fr", "[{{ none|date }}]", "[]", id="date-fr-none-is-empty"),
        pytest.param("en", "[{{ none|date('short') }}]", "[]", id="date-en-none-is-empty"),
        pytest.param("fr", "{{ m|money('EUR') }}", "1 250,00 €", id="money-eur-fr"),
        pytest.param("en", "{{ m|money('EUR') }}", "€1,250.00", id="money-eur-en"),
        pytest.param("en", "{{ m|money('CAD') }}", "CA$1,250.00", id="money-cad-en"),
        pytest.param("fr", "{{ m|money('CAD') }}", "1 250,00 $CA", id="money-cad-fr"),
        pytest.param("en", "{{ 1250|money('JPY') }}", "¥1,250", id="money-jpy-en-no-decimals"),
        pytest.param("fr", "{{ 0|money('EUR') }}", "0,00 €", id="money-zero-fr"),
        pytest.param("fr", "{{ m|number }}", "1 250", id="number-fr"),
        pytest.param("en", "{{ m|number }}", "1,250", id="number-en"),
        pytest.param("en", "{{ language }}", "en", id="language-variable-en"),
        pytest.param("fr", "{{ language }}", "fr", id="language-variable-fr"),
    ],
)  # fmt: skip
def test_filters_format_in_the_emails_language(
    tmp_path: Path, language: str, source: str, expected: str
) -> None:
    files = {
        f"k/subject.{language}.txt": "s",
        f"k/body.{language}.txt": source,
        f"k/body.{language}.html": "h",
    }
    values = {"d": DEC_5, "none": None, "m": AMOUNT}

    rendered = Renderer(write(tmp_path, files)).render("k", language, values)

    assert spaced(rendered.text) == expected + "\n"


def test_french_amounts_use_no_break_spaces(tmp_path: Path) -> None:
    files = {
        "k/subject.fr.txt": "s",
        "k/body.fr.txt": "{{ m|money('EUR') }}",
        "k/body.fr.html": "h",
    }

    text = Renderer(write(tmp_path, files)).render("k", "fr", {"m": AMOUNT}).text

    # A line break inside "1 250,00 €" would be wrong: no space there may break.
    assert text == f"1{NARROW_NBSP}250,00{NBSP}€\n"


def test_money_without_a_currency_is_a_template_error(tmp_path: Path) -> None:
    files = {"k/body.en.txt": "{{ m|money }}"}

    with pytest.raises(TemplateError, match=r"k/body\.en\.txt line 1"):
        renderer(tmp_path, files).render("k", "en", {**context(), "m": AMOUNT})


# -- check ------------------------------------------------------------------------------


def test_check_finds_nothing_wrong_in_good_templates(tmp_path: Path) -> None:
    assert Renderer(write(tmp_path, BILINGUAL)).check("k") == []


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        pytest.param("k/subject.fr.txt", "template k/subject.fr.txt is missing",
                     id="french-subject"),
        pytest.param("k/body.en.txt", "template k/body.en.txt is missing", id="english-text"),
        pytest.param("k/body.fr.html", "template k/body.fr.html is missing", id="french-html"),
    ],
)  # fmt: skip
def test_check_reports_a_missing_part(tmp_path: Path, missing: str, expected: str) -> None:
    files = {name: text for name, text in BILINGUAL.items() if name != missing}

    problems = Renderer(write(tmp_path, files)).check("k")

    assert len(problems) == 1
    assert problems[0].startswith(expected)
    assert str(tmp_path) in problems[0]


def test_check_reports_a_syntax_error_with_its_line(tmp_path: Path) -> None:
    files = {**BILINGUAL, "k/body.fr.txt": "Bonjour\n{% if %}\n"}

    problems = Renderer(write(tmp_path, files)).check("k")

    assert len(problems) == 1
    assert "k/body.fr.txt line 2" in problems[0]


def test_check_looks_only_at_the_languages_asked(tmp_path: Path) -> None:
    files = {name: text for name, text in BILINGUAL.items() if ".fr." not in name}

    assert Renderer(write(tmp_path, files)).check("k", ("en",)) == []
    assert len(Renderer(write(tmp_path, files)).check("k", ("fr", "en"))) == 3


# -- the shipped templates --------------------------------------------------------------

AGENCY = AgencySettings(
    code="annecy",
    name="Agence du Lac",
    timezone="Europe/Paris",
    locale="fr",
    sender="Agence du Lac <reservations@agence-du-lac.example>",
    reply_to="Agence du Lac – Accueil <accueil@agence-du-lac.example>",
    delays={
        "balance_due": 30,
        "arrival": 7,
        "option_expiry": 2,
        "post_departure": 7,
        "balance_overdue": 3,
    },
    kinds={
        "balance_overdue": KindSettings(
            anchor="balance_due_on",
            direction=Direction.AFTER,
            eligible_as="balance_due",
            retention=7,
            template="balance_overdue",
            tab={"fr": "Relance solde impayé", "en": "Overdue balance"},
        )
    },
)
KINDS = {kind.name: kind for kind in AGENCY.enabled_kinds()}
SHIPPED_KINDS = ("balance_due", "arrival", "option_expiry", "post_departure", "balance_overdue")
ANCHOR_ON = day("2026-12-05")
PROPERTY = "Gîte Lac & Montagne"


def shipped_booking(kind: Kind, shape: str) -> Booking:
    """Return a booking for `kind`: every date set, or only the kind's own anchor date."""
    status = BookingStatus.OPTION if kind.name == "option_expiry" else BookingStatus.CONFIRMED
    dates: dict[str, date | None] = {}
    if shape == "anchor-only":
        dates = dict.fromkeys(ANCHOR_FIELDS)
    dates[kind.anchor] = ANCHOR_ON
    return booking(
        ref="B-2042",
        property=PROPERTY,
        status=status,
        balance_outstanding=Decimal("1250.00"),
        **dates,
    )


def render_shipped(kind_name: str, language: str, shape: str) -> Rendered:
    """Render a shipped kind the way the planner does, for a contact speaking `language`."""
    kind = KINDS[kind_name]
    contact = Contact(
        ref="C-1", agency="annecy", name="Jeanne Martin", email="j@example.com", locale=language
    )
    candidate = Candidate(booking_id=1, booking=shipped_booking(kind, shape), contact=contact)
    renderer_ = Renderer(SHIPPED_TEMPLATES)
    chosen = renderer_.language_for(kind.template, contact.locale, AGENCY.locale)
    assert chosen == language
    return renderer_.render(
        kind.template, chosen, email_context(AGENCY, kind, candidate, ANCHOR_ON, chosen)
    )


SHIPPED_CASES = [
    (kind_name, language, shape)
    for kind_name in SHIPPED_KINDS
    for language in ("fr", "en")
    for shape in ("all-dates", "anchor-only")
]


@pytest.mark.parametrize(
    ("kind_name", "language", "shape"),
    [pytest.param(*case, id="-".join(case)) for case in SHIPPED_CASES],
)
def test_every_shipped_template_renders(kind_name: str, language: str, shape: str) -> None:
    rendered = render_shipped(kind_name, language, shape)

    assert rendered.locale == language
    assert rendered.subject.strip()
    assert "\n" not in rendered.subject
    assert "Jeanne Martin" in rendered.text
    assert f'lang="{language}"' in rendered.html
    assert "B-2042" in rendered.html
    assert rendered.html.count("<table") == rendered.html.count("</table>")
    assert PROPERTY not in rendered.html  # always escaped there
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "None" not in part
        assert "{{" not in part
        assert "{%" not in part


@pytest.mark.parametrize(
    ("kind_name", "language", "shape"),
    [pytest.param(*case, id="-".join(case)) for case in SHIPPED_CASES],
)
def test_every_shipped_text_part_names_the_booking(
    kind_name: str, language: str, shape: str
) -> None:
    assert "B-2042" in render_shipped(kind_name, language, shape).text


@pytest.mark.parametrize("kind_name", SHIPPED_KINDS)
def test_every_shipped_template_passes_check(kind_name: str) -> None:
    assert Renderer(SHIPPED_TEMPLATES).check(KINDS[kind_name].template) == []


# -- what a template may render ---------------------------------------------------------


class SteppingTimer:
    """A timer that moves `step_s` seconds each time it is read: time passes as code runs."""

    def __init__(self, step_s: float) -> None:
        self.now_s = 0.0
        self.step_s = step_s

    def __call__(self) -> float:
        self.now_s += self.step_s
        return self.now_s


NESTED_LOOP = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"


@pytest.mark.parametrize(
    ("source", "cap"),
    [
        pytest.param("{{ 'x' * 20000000 }}", "repeats a value to more than 1000000 characters",
                     id="string-repetition"),
        pytest.param("{{ 20000000 * 'x' }}", "repeats a value to more than 1000000 characters",
                     id="repetition-the-other-way"),
        pytest.param("{{ ([1] * 20000000)|length }}",
                     "repeats a value to more than 1000000 characters", id="list-repetition"),
        pytest.param("{{ 3 ** 100000000 }}", "computes a number too large to print",
                     id="power"),
        pytest.param("{{ '%020000000d' % 1 }}", "formats a value wider than 1000000 characters",
                     id="percent-width"),
        pytest.param("{{ '%*d' % (20000000, 1) }}",
                     "formats a value wider than 1000000 characters", id="percent-star-width"),
        pytest.param("{{ 'x'.ljust(20000000) }}", "renders more than 1000000 characters",
                     id="method-padding"),
        pytest.param("{{ 'x'|center(20000000) }}", "renders more than 1000000 characters",
                     id="filter-padding"),
        pytest.param("{% for i in range(100000) %}0123456789A{% endfor %}",
                     "renders more than 1000000 characters", id="loop-output"),
        pytest.param(NESTED_LOOP.replace("x", "xx"), "renders more than 1000000 characters",
                     id="nested-loop"),
    ],
)  # fmt: skip
def test_a_template_rendering_too_much_is_an_error_naming_file_and_cap(
    tmp_path: Path, source: str, cap: str
) -> None:
    message = render_error(tmp_path, {"k/body.en.txt": "Hello\n" + source}, context())

    assert message.startswith("template "), message
    assert "k/body.en.txt" in message
    assert cap in message
    assert "the cap of one part" in message
    assert len(message) < 500


#: Loops that print nothing while they run (their output is kept in memory, or empty).
SILENT_LOOPS = [
    pytest.param("{% set s %}" + NESTED_LOOP + "{% endset %}{{ s|length }}", id="set-block"),
    pytest.param("{% macro m() %}" + NESTED_LOOP + "{% endmacro %}{{ m()|length }}",
                 id="macro"),
    pytest.param("{% for a in range(100000) %}{% for b in range(100000) %}"
                 "{% endfor %}{% endfor %}", id="empty-loop-body"),
]  # fmt: skip


@pytest.mark.parametrize("source", SILENT_LOOPS)
def test_a_template_looping_too_much_is_stopped_by_counting_its_steps(
    tmp_path: Path, source: str
) -> None:
    message = render_error(tmp_path, {"k/body.en.txt": source}, context())

    assert "k/body.en.txt" in message
    assert "loops more than 1000000 times" in message


@pytest.mark.parametrize(
    "source",
    [
        *SILENT_LOOPS,
        pytest.param("{% for a in range(100000) %}{{ booking.ref.upper()|length * 0 }}"
                     "{% endfor %}", id="calls-in-a-loop"),
    ],
)  # fmt: skip
def test_a_template_rendering_too_long_is_stopped_at_its_deadline(
    tmp_path: Path, source: str
) -> None:
    folder = write(tmp_path / "defaults", {**PLAIN, "k/body.en.txt": source})
    timer = SteppingTimer(step_s=0.01)  # the deadline falls after 200 looks at the clock

    with pytest.raises(TemplateError) as caught:
        Renderer(folder, timer=timer).render("k", "en", context())

    assert "k/body.en.txt" in str(caught.value)
    assert "takes more than 2 s to render" in str(caught.value)
    assert timer.now_s < 3


def test_a_macro_calling_itself_without_end_is_a_template_error(tmp_path: Path) -> None:
    source = "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"

    message = render_error(tmp_path, {"k/body.en.txt": source}, context())

    assert "k/body.en.txt" in message
    assert "calls itself" in message


def test_the_caps_leave_ordinary_templates_alone(tmp_path: Path) -> None:
    source = (
        "{{ '-' * 40 }}\n{{ 'Total: %8.2f' % 12.5 }}\n{{ 2 ** 10 }}\n"
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ range(5)|list|length }} "
        "{{ range(10)[2:4]|join(',') }} {{ 'ab' * 3 }}"
    )

    rendered = renderer(tmp_path, {"k/body.en.txt": source}).render("k", "en", context())

    assert rendered.text == (
        "----------------------------------------\nTotal:    12.50\n1024\n012 5 2,3 ababab\n"
    )


def test_check_does_not_build_a_huge_constant(tmp_path: Path) -> None:
    # Without the sandbox's interception Jinja folds constants while compiling.
    folder = write(tmp_path / "defaults", {**PLAIN, "k/body.en.txt": "{{ 'x' * 2000000000 }}"})

    assert Renderer(folder).check("k", ("en",)) == []


# -- the visible unsubscribe link of every email ---------------------------------------------


def _visible_link(rendered: Rendered, url: str) -> None:
    """Assert the text and HTML parts both show `url` as the unsubscribe link."""
    assert url in rendered.text
    assert f'<a href="{url}"' in rendered.html
    label = "désinscrire" if rendered.locale == "fr" else "Unsubscribe"
    assert label in rendered.text and label in rendered.html


@pytest.mark.parametrize(
    ("kind_name", "language", "shape"),
    [pytest.param(*case, id="-".join(case)) for case in SHIPPED_CASES],
)
def test_every_shipped_template_shows_the_unsubscribe_link(
    kind_name: str, language: str, shape: str
) -> None:
    rendered = render_shipped(kind_name, language, shape)

    # Planned emails carry the placeholder; the link is made when each email is sent.
    _visible_link(rendered, UNSUBSCRIBE_URL_PLACEHOLDER)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_confirmation_email_shows_its_unsubscribe_link(language: str) -> None:
    url = "https://links.example/unsubscribe/gAAAAABopaque"
    context = confirmation_context(
        AGENCY,
        name="Jeanne Martin",
        address="j@example.com",
        url="https://links.example/confirm/gAAAAABother",
        unsubscribe_url=url,
        valid=timedelta(days=30),
        expires_on=date(2026, 12, 31),
    )

    rendered = Renderer(SHIPPED_TEMPLATES).render("confirmation", language, context)

    _visible_link(rendered, url)


@pytest.mark.parametrize(
    ("value", "style", "language", "expected"),
    [
        pytest.param(date(2026, 12, 1), "long", "fr", "1er décembre 2026", id="fr-first-long"),
        pytest.param(date(2026, 12, 2), "long", "fr", "2 décembre 2026", id="fr-second-long"),
        pytest.param(
            date(2026, 12, 1), "full", "fr", "mardi 1er décembre 2026", id="fr-first-full"
        ),
        pytest.param(date(2026, 12, 1), "medium", "fr", "1er déc. 2026", id="fr-first-medium"),
        pytest.param(date(2026, 12, 1), "short", "fr", "01/12/2026", id="fr-short-untouched"),
        pytest.param(date(2026, 12, 1), "d MMMM", "fr", "1er décembre", id="fr-own-pattern"),
        pytest.param(date(2026, 12, 1), "long", "en", "December 1, 2026", id="en-untouched"),
    ],
)
def test_french_writes_the_first_of_a_month_as_1er(
    value: date, style: str, language: str, expected: str
) -> None:
    assert local_date(value, style, language) == expected


# -- the HTML part around staff's edited text -------------------------------------------

#: A layout with the blocks of the shipped one, and a kind whose content has a summary.
AROUND = {
    "lay.html": (
        "<title>{% block title %}{% endblock %}</title><h1>{{ agency }}</h1>"
        "<main>{% block content %}{% endblock %}</main>"
        "<p>{% block signature %}Regards{% endblock %}</p>"
        '<footer><a href="{{ unsubscribe_url }}">Unsubscribe</a></footer>'
    ),
    "k/body.en.html": (
        '{% extends "lay.html" %}{% block title %}Your arrival{% endblock %}'
        "{% block content %}<table>summary of {{ booking.ref }}</table>{% endblock %}"
    ),
}


def test_edited_text_takes_the_place_of_the_kinds_content_in_its_layout(tmp_path: Path) -> None:
    edited = Markup("<p>Staff &amp; their &lt;text&gt;</p>")

    html = renderer(tmp_path, AROUND).render_around(
        "k",
        "en",
        {**context(), "agency": "Agence du Lac", "unsubscribe_url": UNSUBSCRIBE_URL_PLACEHOLDER},
        content=edited,
        title="Votre <b>arrivée</b>",
    )

    assert html == (
        "<title>Votre &lt;b&gt;arrivée&lt;/b&gt;</title><h1>Agence du Lac</h1>"
        "<main><p>Staff &amp; their &lt;text&gt;</p></main><p></p>"
        f'<footer><a href="{UNSUBSCRIBE_URL_PLACEHOLDER}">Unsubscribe</a></footer>\n'
    )


def test_a_kind_without_a_content_block_cannot_hold_edited_text(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as caught:
        renderer(tmp_path, {}).render_around(
            "k", "en", context(), content=Markup("<p>Staff</p>"), title="Reminder"
        )

    assert "k/body.en.html has no {% block content %} to hold edited text" in str(caught.value)


def test_the_text_footer_is_rendered_when_there_is_one(tmp_path: Path) -> None:
    files = {"footer.en.txt": "--\nUnsubscribe: {{ unsubscribe_url }}"}
    values = {"unsubscribe_url": UNSUBSCRIBE_URL_PLACEHOLDER}

    assert renderer(tmp_path, files).text_footer("en", values) == (
        f"--\nUnsubscribe: {UNSUBSCRIBE_URL_PLACEHOLDER}\n"
    )
    assert renderer(tmp_path, files).text_footer("xx", values) is None
