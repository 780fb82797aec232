"""The day's summary email ("infos du jour"): what waits in each of an agency's tabs."""

from __future__ import annotations

from typing import Any

import pytest

from factories import day
from reminders.summary import summary_email

DAY = day("2026-07-03")


def row(tab: str, pending: int, ready: int, blocked: int) -> dict[str, Any]:
    """Return one tab's counts, as `service.today_summary` gives them."""
    return {"agency": "annecy", "date": DAY, "tab": tab, "pending": pending, "ready": ready,
            "blocked": blocked}  # fmt: skip


ROWS = [
    row("Solde dû", 3, 2, 1),
    row("Arrivée", 0, 0, 0),
    row("Option", 1, 1, 0),
]
ALL_ZERO = [row("Solde dû", 0, 0, 0), row("Arrivée", 0, 0, 0)]


def summary(language: str, rows: list[dict[str, Any]] = ROWS) -> Any:
    return summary_email(code="annecy", name="Agence du Lac", language=language, day=DAY, rows=rows)


@pytest.mark.parametrize(
    ("language", "subject"),
    [
        pytest.param("fr", "Infos du jour – Agence du Lac – 2026-07-03", id="fr"),
        pytest.param("en", "Today's summary – Agence du Lac – 2026-07-03", id="en"),
    ],
)
def test_the_subject_names_the_agency_and_the_iso_day(language: str, subject: str) -> None:
    assert summary(language).subject == subject


@pytest.mark.parametrize(
    ("language", "listed"),
    [
        pytest.param("fr", ["- Solde dû : 3 à envoyer (2 prêts, 1 sans consentement)",
                            "- Option : 1 à envoyer (1 prêt, 0 sans consentement)"], id="fr"),
        pytest.param("en", ["- Solde dû: 3 to send (2 ready, 1 without consent)",
                            "- Option: 1 to send (1 ready, 0 without consent)"], id="en"),
    ],
)  # fmt: skip
def test_the_text_lists_only_tabs_with_something_pending(language: str, listed: list[str]) -> None:
    text = summary(language).text

    assert [line for line in text.splitlines() if line.startswith("- ")] == listed
    assert "Arrivée" not in text


@pytest.mark.parametrize(
    ("language", "lines"),
    [
        pytest.param("fr", ["Total : 4 à envoyer.",
                            "Pour les voir : reminders queue --agency annecy"], id="fr"),
        pytest.param("en", ["Total: 4 to send.",
                            "To see them: reminders queue --agency annecy"], id="en"),
    ],
)  # fmt: skip
def test_the_text_gives_the_total_and_how_to_see_the_emails(
    language: str, lines: list[str]
) -> None:
    text_lines = summary(language).text.splitlines()

    for line in lines:
        assert line in text_lines


@pytest.mark.parametrize(
    ("language", "day_words"),
    [
        pytest.param("fr", "vendredi 3 juillet 2026", id="fr"),
        pytest.param("en", "Friday, July 3, 2026", id="en"),
    ],
)
def test_the_introduction_names_the_day_in_words(language: str, day_words: str) -> None:
    content = summary(language)

    assert day_words in content.text
    assert day_words in content.html


@pytest.mark.parametrize(
    ("language", "rows", "sentence"),
    [
        pytest.param("fr", ALL_ZERO, "Aucun email n'attend aujourd'hui.", id="fr-all-zero"),
        pytest.param("en", ALL_ZERO, "No email waits today.", id="en-all-zero"),
        pytest.param("fr", [], "Aucun email n'attend aujourd'hui.", id="fr-no-tab"),
        pytest.param("en", [], "No email waits today.", id="en-no-tab"),
    ],
)
def test_nothing_waits(language: str, rows: list[dict[str, Any]], sentence: str) -> None:
    content = summary(language, rows)

    text_lines = content.text.splitlines()
    assert sentence in text_lines
    assert not [line for line in text_lines if line.startswith("- ")]
    assert "<ul>" not in content.html
    assert "<li>" not in content.html


@pytest.mark.parametrize(
    ("language", "sentence"),
    [
        pytest.param("fr", "Aucun email n'attend aujourd'hui.", id="fr"),
        pytest.param("en", "No email waits today.", id="en"),
    ],
)
def test_nothing_waits_is_not_said_when_something_does(language: str, sentence: str) -> None:
    assert sentence not in summary(language).text


def test_the_html_lists_the_same_tabs() -> None:
    html = summary("en").html

    assert html.count("<li>") == 2
    assert "<li>Solde dû: 3 to send (2 ready, 1 without consent)</li>" in html
    assert "Arrivée" not in html


def test_the_html_escapes_a_tab_name() -> None:
    content = summary("en", [row("Solde <&> dû", 2, 1, 1)])

    assert "Solde &lt;&amp;&gt; dû" in content.html
    assert "<&>" not in content.html
    assert "- Solde <&> dû: 2 to send" in content.text


def test_the_html_is_a_utf8_page_in_the_language() -> None:
    html = summary("fr").html

    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="fr">' in html
    assert '<meta charset="utf-8">' in html


@pytest.mark.parametrize(
    "language",
    [
        pytest.param("de", id="german"),
        pytest.param("xx", id="unknown-code"),
        pytest.param("", id="empty"),
    ],
)
def test_an_unknown_language_falls_back_to_english(language: str) -> None:
    content = summary(language)

    assert content == summary("en")
    assert content.locale == "en"


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_locale_is_the_language(language: str) -> None:
    assert summary(language).locale == language
