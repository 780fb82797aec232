"""What the review screen writes: rows, filter, counts, send results, in both languages."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from reminders.consent import ConsentReason
from reminders.delivery import Delivery, DispatchReport, Result
from reminders.queue import QueueItem, Status
from reminders.screen.listing import (
    confirm_tab_text,
    delivery_line,
    keys_text,
    matches,
    report_line,
    row_cells,
    summary_text,
    tab_title,
)
from reminders.screen.words import CONSENT_WORDS, KEYS, WORDS, consent_words, plural, say

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def item(**overrides: object) -> QueueItem:
    values: dict[str, object] = {
        "id": 7,
        "agency": "annecy",
        "kind": "arrival",
        "status": Status.PENDING,
        "booking_ref": "B-9",
        "contact_ref": "C-8",
        "contact_name": "Élodie Roux",
        "to": "elodie.roux@example.fr",
        "anchor_on": date(2026, 12, 6),
        "visible_from": date(2026, 11, 29),
        "visible_until": date(2026, 12, 6),
        "subject": "Votre arrivée",
        "text": "Bonjour",
        "html": "<p>Bonjour</p>",
        "locale": "fr",
        "edited": False,
        "reason": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(overrides)
    return QueueItem(**values)  # type: ignore[arg-type]


def test_both_languages_have_every_sentence_and_every_consent_reason() -> None:
    assert WORDS["fr"].keys() == WORDS["en"].keys()
    assert CONSENT_WORDS["fr"].keys() == CONSENT_WORDS["en"].keys()
    assert {r.value for r in ConsentReason} <= CONSENT_WORDS["en"].keys()
    assert [k and k[0] for k in KEYS["fr"]] == [k and k[0] for k in KEYS["en"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", True, id="empty-matches-all"),
        pytest.param("roux", True, id="guest-any-case"),
        pytest.param("ÉLODIE", True, id="guest-accented-upper-case"),
        pytest.param("b-9", True, id="booking"),
        pytest.param("C-8", True, id="contact-ref"),
        pytest.param("@example.fr", True, id="address"),
        pytest.param("  roux ", True, id="spaces-around"),
        pytest.param("martin", False, id="another-guest"),
    ],
)
def test_filter(text: str, expected: bool) -> None:
    assert matches(item(), text) is expected


def test_filter_on_an_item_without_address() -> None:
    assert not matches(item(to=None), "example")


@pytest.mark.parametrize(
    ("language", "count", "ending"),
    [("fr", 0, ""), ("fr", 1, ""), ("fr", 2, "s"), ("en", 0, "s"), ("en", 1, ""), ("en", 2, "s")],
)
def test_plural(language: str, count: int, ending: str) -> None:
    assert plural(language, count) == ending


def test_a_language_without_a_table_gets_english() -> None:
    assert say("de", "yes") == "Yes"
    assert consent_words("de", "opted_out") == "opted out"
    assert consent_words("fr", "some_new_reason") == "some_new_reason"


@pytest.mark.parametrize(
    ("edited", "consent", "language", "locale", "cells"),
    [
        pytest.param(False, ConsentReason.OK, "fr", "fr",
                     (" ", "Élodie Roux\nprêt", "B-9\n6 déc. 2026"), id="fr-ready"),
        pytest.param(True, ConsentReason.UNCONFIRMED, "fr", "fr",
                     ("✎", "Élodie Roux\nadresse non confirmée", "B-9\n6 déc. 2026"),
                     id="fr-edited-unconfirmed"),
        pytest.param(False, ConsentReason.NO_ADDRESS, "en", "en_CA",
                     (" ", "Élodie Roux\nno address", "B-9\nDec 6, 2026"), id="en-no-address"),
    ],
)  # fmt: skip
def test_row_cells(
    edited: bool, consent: ConsentReason, language: str, locale: str, cells: tuple[str, ...]
) -> None:
    row = row_cells(item(edited=edited), consent, language, locale)
    assert tuple(cell.plain for cell in row) == cells


def test_tab_title_fits_the_four_french_tabs_in_80_columns() -> None:
    titles = [tab_title(t, 12) for t in ("Rappel solde", "Rappel arrivées",
                                         "Expiration Options", "Après départ")]  # fmt: skip
    assert sum(len(t) + 2 for t in titles) <= 80  # each tab is padded by one column a side


def test_summary_counts_as_today_does() -> None:
    rows = [
        {"date": date(2026, 12, 1), "tab": "Rappel solde", "pending": 1, "ready": 1},
        {"date": date(2026, 12, 1), "tab": "Rappel arrivées", "pending": 3, "ready": 2},
    ]
    assert summary_text(rows, "Agence du Lac", "fr", "fr").splitlines() == [
        "Infos du jour · mardi 1 décembre 2026 · Agence du Lac",
        "4 e-mails à envoyer : 3 prêts, 1 sans consentement",
    ]
    assert summary_text(rows[:1], "Lake Agency", "en", "en").splitlines() == [
        "Today · Tuesday, December 1, 2026 · Lake Agency",
        "1 email to send: 1 ready, 0 without consent",
    ]


@pytest.mark.parametrize(
    ("ready", "blocked", "edited", "language", "lines"),
    [
        pytest.param(1, 0, 0, "fr", ["Envoyer 1 e-mail de l'onglet Rappel solde ?"], id="fr-one"),
        pytest.param(3, 2, 1, "fr", [
            "Envoyer 3 e-mails de l'onglet Rappel solde ?",
            "Dont 1 modifié par l'agence.",
            "2 e-mails sans consentement ne seront pas envoyés (ils restent en attente).",
        ], id="fr-blocked-and-edited"),
        pytest.param(2, 1, 0, "en", [
            "Send 2 emails of the tab Rappel solde?",
            "1 email without consent will not be sent (it stays pending).",
        ], id="en-one-blocked"),
    ],
)  # fmt: skip
def test_confirm_tab_text(
    ready: int, blocked: int, edited: int, language: str, lines: list[str]
) -> None:
    assert confirm_tab_text("Rappel solde", ready, blocked, edited, language).splitlines() == lines


GUESTS = {7: ("Élodie Roux", "B-9")}


@pytest.mark.parametrize(
    ("delivery", "language", "line"),
    [
        pytest.param(Delivery(item_id=7, result=Result.SENT, to="e@example.fr"), "fr",
                     "#7 Élodie Roux (B-9) : envoyé à e@example.fr", id="fr-sent"),
        pytest.param(Delivery(item_id=7, result=Result.HELD,
                              detail="no consent (opted_out): it stays pending"), "fr",
                     "#7 Élodie Roux (B-9) : non envoyé, sans consentement (désinscrit) : "
                     "reste en attente", id="fr-held"),
        pytest.param(Delivery(item_id=7, result=Result.REFUSED, detail="item 7 was already sent"),
                     "en", "#7 Élodie Roux (B-9): not sent: item 7 was already sent",
                     id="en-refused"),
        pytest.param(Delivery(item_id=8, result=Result.RETRY, booking_ref="B-1",
                              to="m@example.fr", detail="451 try later"), "en",
                     "#8 m@example.fr (B-1): not sent: 451 try later; tried again later",
                     id="en-retry-of-an-unlisted-item"),
    ],
)  # fmt: skip
def test_delivery_line(delivery: Delivery, language: str, line: str) -> None:
    assert delivery_line(delivery, language, GUESTS) == line


def test_report_line_counts_what_went_and_what_did_not() -> None:
    report = DispatchReport(
        deliveries=[
            Delivery(item_id=1, result=Result.SENT),
            Delivery(item_id=2, result=Result.SENT),
            Delivery(item_id=3, result=Result.HELD),
            Delivery(item_id=4, result=Result.TAKEN),
        ]
    )
    assert report_line(report, "Rappel solde", "fr") == "Rappel solde : 2 envoyés, 1 non envoyé"
    report.stopped = "the mail server is unreachable"
    assert report_line(report, "Tab", "en") == (
        "Tab: 2 sent, 1 not sent · Sending stopped: the mail server is unreachable"
    )


@pytest.mark.parametrize("language", ["fr", "en"])
def test_keys_fit_two_lines_of_80_columns(language: str) -> None:
    lines = keys_text(language).plain.splitlines()
    assert len(lines) == 2
    assert all(len(line) <= 78 for line in lines)  # the bar has one column of padding a side
