"""The document staff edit an email in: a Subject line, the text, then the HTML part."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from reminders.editing import (
    LAYOUT_PARAGRAPH,
    MARKER,
    Edit,
    edit_document,
    html_from_text,
    paragraphs,
    parse_edit,
    without_footer,
)
from reminders.errors import UsageError
from reminders.queue import QueueItem, Status

RENDERED_HTML = (
    '<!DOCTYPE html>\n<html lang="fr">\n<body>\n'
    '<p style="margin:0">Bonjour Jeanne,</p>\n<table><tr><td>B-1001</td></tr></table>\n'
    "</body>\n</html>\n"
)
TEXT = "Bonjour Jeanne,\n\nVotre arrivée approche.\nÀ très bientôt.\n"


def queue_item(**overrides: Any) -> QueueItem:
    """Return a pending French arrival reminder, as rendered from the templates."""
    values: dict[str, Any] = {
        "id": 7,
        "agency": "annecy",
        "kind": "arrival",
        "status": Status.PENDING,
        "booking_ref": "B-1001",
        "contact_ref": "C-1",
        "contact_name": "Jeanne Martin",
        "to": "jeanne@example.com",
        "anchor_on": date(2026, 7, 10),
        "visible_from": date(2026, 7, 3),
        "visible_until": date(2026, 7, 10),
        "subject": "Votre arrivée le 10 juillet 2026",
        "text": TEXT,
        "html": RENDERED_HTML,
        "locale": "fr",
        "edited": False,
        "reason": None,
        "created_at": datetime(2026, 7, 3, 4, 30, tzinfo=UTC),
        "updated_at": datetime(2026, 7, 3, 4, 30, tzinfo=UTC),
    }
    values.update(overrides)
    return QueueItem(**values)


ITEM = queue_item()


def document(subject: str, text: str, html: str | None = RENDERED_HTML) -> str:
    """Return an edited document as staff would save it (`html=None`: marker deleted)."""
    tail = "" if html is None else f"\n{MARKER}\n{html}"
    return f"Subject: {subject}\n\n{text}\n{tail}"


def page(lang: str, body: str) -> str:
    """Return the plain HTML part `html_from_text` builds around `body`."""
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head><meta charset="utf-8"></head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def test_the_document_shows_subject_text_marker_and_html() -> None:
    assert edit_document(ITEM) == (
        f"Subject: {ITEM.subject}\n\n{ITEM.text.rstrip()}\n\n{MARKER}\n{RENDERED_HTML}"
    )


def test_an_unchanged_round_trip_keeps_subject_text_and_locale() -> None:
    parsed = parse_edit(edit_document(ITEM), ITEM)

    assert parsed.subject == ITEM.subject
    assert parsed.text == ITEM.text
    assert parsed.locale == ITEM.locale


@pytest.mark.parametrize(
    ("text", "body"),
    [
        pytest.param("Bonjour,", "<p>Bonjour,</p>", id="one-line"),
        pytest.param("Bonjour,\n\nÀ bientôt.", "<p>Bonjour,</p>\n<p>À bientôt.</p>",
                     id="blank-line-separates-paragraphs"),
        pytest.param("Ligne 1\nLigne 2", "<p>Ligne 1<br>\nLigne 2</p>",
                     id="single-newline-is-a-line-break"),
        pytest.param("Un\n\n\n\nDeux", "<p>Un</p>\n<p>Deux</p>",
                     id="several-blank-lines-one-paragraph-break"),
        pytest.param("Un\n   \nDeux", "<p>Un</p>\n<p>Deux</p>",
                     id="line-of-spaces-separates-paragraphs"),
        pytest.param("  Un  \n\n  Deux  ", "<p>Un</p>\n<p>Deux</p>",
                     id="paragraphs-stripped"),
        pytest.param("<b>Chalet</b> & Co", "<p>&lt;b&gt;Chalet&lt;/b&gt; &amp; Co</p>",
                     id="markup-escaped"),
        pytest.param('Il a dit "oui" l\'été', "<p>Il a dit &#34;oui&#34; l&#39;été</p>",
                     id="quotes-escaped"),
    ],
)  # fmt: skip
def test_a_text_only_change_asks_for_html_built_from_the_text(text: str, body: str) -> None:
    parsed = parse_edit(document(ITEM.subject, text), ITEM)

    assert parsed.text == text.strip() + "\n"
    assert parsed.html is None  # the service builds it in the kind's layout
    assert paragraphs(parsed.text) == body
    assert html_from_text(parsed.text, "fr") == page("fr", body)


@pytest.mark.parametrize(
    ("text", "body"),
    [
        pytest.param("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>",
                     id="script-shown-not-run"),
        pytest.param("Un\r\nDeux\r\n\r\nTrois", "<p>Un<br>\nDeux</p>\n<p>Trois</p>",
                     id="crlf-line-ends"),
        pytest.param("Un\rDeux\r\rTrois", "<p>Un<br>\nDeux</p>\n<p>Trois</p>",
                     id="cr-line-ends"),
        pytest.param("%UNSUBSCRIBE_URL%", "<p>%UNSUBSCRIBE_URL%</p>", id="placeholder-kept"),
    ],
)  # fmt: skip
def test_paragraphs_escape_staffs_text_whatever_its_line_ends(text: str, body: str) -> None:
    assert paragraphs(text) == body


def test_paragraphs_take_the_layouts_opening_tag() -> None:
    opening = LAYOUT_PARAGRAPH

    assert paragraphs("Un\n\nDeux", opening) == f"{opening}Un</p>\n{opening}Deux</p>"


FOOTER = "--\nSe désinscrire : %UNSUBSCRIBE_URL%\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"Bonjour,\n\n{FOOTER}", "Bonjour,\n", id="footer-dropped"),
        pytest.param(f"Bonjour,\n\n{FOOTER}\n\n", "Bonjour,\n", id="blank-lines-after-it"),
        pytest.param("Bonjour,\n\n--\nÉcrivez-nous pour vous désinscrire\n",
                     "Bonjour,\n\n--\nÉcrivez-nous pour vous désinscrire\n",
                     id="a-changed-footer-is-staffs-text"),
        pytest.param(FOOTER, FOOTER, id="nothing-but-the-footer-is-kept"),
        pytest.param("Bonjour,\n", "Bonjour,\n", id="no-footer"),
    ],
)  # fmt: skip
def test_the_text_footer_goes_where_the_layout_shows_its_own(text: str, expected: str) -> None:
    assert without_footer(text, FOOTER) == expected
    assert without_footer(text, None) == text


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        pytest.param("fr", '<html lang="fr">', id="french"),
        pytest.param("en", '<html lang="en">', id="english"),
        pytest.param('x"><script>', '<html lang="x&#34;&gt;&lt;script&gt;">', id="escaped"),
    ],
)
def test_the_rebuilt_html_carries_the_items_language(language: str, expected: str) -> None:
    assert expected in html_from_text("Bonjour", language)


def test_an_edited_html_part_is_kept_as_written() -> None:
    edited_html = RENDERED_HTML.replace("Bonjour Jeanne,", "Chère Jeanne,")

    parsed = parse_edit(document(ITEM.subject, "Chère Jeanne,", edited_html), ITEM)

    assert parsed.html == edited_html
    assert parsed.text == "Chère Jeanne,\n"


def test_blank_lines_before_an_edited_html_part_are_dropped() -> None:
    edited_html = "<p>Chère Jeanne,</p>\n"

    parsed = parse_edit(document(ITEM.subject, "Chère Jeanne,", f"\n\n{edited_html}"), ITEM)

    assert parsed.html == edited_html


@pytest.mark.parametrize(
    "html",
    [
        pytest.param(RENDERED_HTML, id="html-left-as-it-was"),
        pytest.param(f"\n\n{RENDERED_HTML}\n\n", id="html-left-with-extra-blank-lines"),
        pytest.param(None, id="marker-and-html-deleted"),
    ],
)
def test_html_left_alone_or_deleted_is_rebuilt_from_the_edited_text(html: str | None) -> None:
    parsed = parse_edit(document(ITEM.subject, "Bonjour,\n\nÀ demain.", html), ITEM)

    assert parsed == Edit(subject=ITEM.subject, text="Bonjour,\n\nÀ demain.\n", html=None,
                          locale="fr")  # fmt: skip


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param("Subject: Votre arrivée", "Votre arrivée", id="as-written"),
        pytest.param("Subject:Votre arrivée", "Votre arrivée", id="no-space-after-colon"),
        pytest.param("Subject:    Votre    arrivée   ", "Votre arrivée",
                     id="extra-spaces-normalised"),
        pytest.param("Subject:\tVotre\t arrivée\r", "Votre arrivée",
                     id="tabs-and-carriage-return"),
    ],
)  # fmt: skip
def test_the_subject_is_one_normalised_line(head: str, expected: str) -> None:
    edited = f"{head}\n\n{TEXT}\n{MARKER}\n{RENDERED_HTML}"

    assert parse_edit(edited, ITEM).subject == expected


def test_a_subject_only_change_keeps_the_rendered_html() -> None:
    edited = edit_document(ITEM).replace(ITEM.subject, "Votre arrivée demain", 1)

    parsed = parse_edit(edited, ITEM)

    assert parsed == Edit(
        subject="Votre arrivée demain", text=ITEM.text, html=RENDERED_HTML, locale="fr"
    )


@pytest.mark.parametrize(
    ("edited", "message"),
    [
        pytest.param(f"Votre arrivée\n\n{TEXT}", "must start with a 'Subject:' line",
                     id="subject-line-missing"),
        pytest.param(f"\nSubject: Votre arrivée\n\n{TEXT}", "must start with a 'Subject:' line",
                     id="blank-line-before-subject"),
        pytest.param(f"subject: Votre arrivée\n\n{TEXT}", "must start with a 'Subject:' line",
                     id="lower-case-subject"),
        pytest.param("", "must start with a 'Subject:' line", id="empty-file"),
        pytest.param(f"Subject:\n\n{TEXT}", "the subject is empty", id="empty-subject"),
        pytest.param(f"Subject:    \n\n{TEXT}", "the subject is empty",
                     id="blank-subject"),
        pytest.param(f"Subject: Votre arrivée\n\n\n{MARKER}\n{RENDERED_HTML}",
                     "the text body is empty", id="empty-body-with-html"),
        pytest.param("Subject: Votre arrivée\n  \n\n", "the text body is empty",
                     id="blank-body-without-marker"),
        pytest.param("Subject: Votre arrivée", "the text body is empty",
                     id="subject-line-only"),
    ],
)  # fmt: skip
def test_an_unusable_document_is_refused_and_nothing_saved(edited: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_edit(edited, ITEM)

    assert message in str(caught.value)
    assert "nothing saved" in str(caught.value)
    assert caught.value.exit_code == 2


def test_the_empty_body_message_points_to_discard() -> None:
    with pytest.raises(UsageError, match=r"reminders discard"):
        parse_edit("Subject: Votre arrivée\n\n", ITEM)


# -- control characters: none in the subject, only line breaks and tabs in the bodies ---

AGAIN = "remove it and edit again; nothing saved"


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        pytest.param("Votre arrivée\0", "the subject 'Votre arrivée\\x00' holds a control "
                     f"character (NUL): {AGAIN}", id="NUL"),
        pytest.param("\x1b[31mVotre arrivée", "the subject '\\x1b[31mVotre arrivée' holds a "
                     f"control character (ESC): {AGAIN}", id="ESC"),
        pytest.param("Votre\x7f arrivée", "the subject 'Votre\\x7f arrivée' holds a control "
                     f"character (U+007F): {AGAIN}", id="DEL"),
        pytest.param("Votre\x9b arrivée", "the subject 'Votre\\x9b arrivée' holds a control "
                     f"character (U+009B): {AGAIN}", id="C1-CSI"),
        pytest.param("=?utf-8?q?Votre_arriv=C3=A9e=0D=0ABcc:_evil@evil.example?=",
                     "the subject '=?utf-8?q?Votre_arriv=C3=A9e=0D=0ABcc:_evil@evil.example?=' "
                     f"is an encoded word holding a control character (CR): {AGAIN}",
                     id="encoded-word-CRLF"),
    ],
)  # fmt: skip
def test_a_subject_with_a_control_character_is_refused(subject: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_edit(document(subject, TEXT), ITEM)

    assert str(caught.value) == message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param("Subject: Votre\x85arrivée\u2028demain", "Votre arrivée demain",
                     id="NEL-and-U+2028-are-spaces-like-tabs"),
        pytest.param("Subject: =?utf-8?q?Votre_arriv=C3=A9e?=",
                     "=?utf-8?q?Votre_arriv=C3=A9e?=", id="benign-encoded-word-kept"),
        pytest.param("Subject: =1+2 🏔️", "=1+2 🏔️", id="formula-prefix-and-emoji"),
    ],
)  # fmt: skip
def test_whitespace_controls_in_the_subject_line_become_spaces(head: str, expected: str) -> None:
    edited = f"{head}\n\n{TEXT}\n{MARKER}\n{RENDERED_HTML}"

    assert parse_edit(edited, ITEM).subject == expected


@pytest.mark.parametrize(
    ("text", "html", "message"),
    [
        pytest.param("Bonjour\0 Jeanne,", RENDERED_HTML,
                     f"the text body holds a control character (NUL) in 'Bonjour\\x00 Jeanne,': "
                     f"{AGAIN}", id="text-NUL"),
        pytest.param("Bonjour,\n\n\x1b[2JÀ bientôt.", RENDERED_HTML,
                     "the text body holds a control character (ESC) in "
                     f"'\\x1b[2JÀ bientôt.': {AGAIN}", id="text-ESC"),
        pytest.param("Bonjour,\x0c", RENDERED_HTML,
                     f"the text body holds a control character (U+000C) in 'Bonjour,\\x0c': "
                     f"{AGAIN}", id="text-form-feed"),
        pytest.param("Bonjour,", "<p>" + "x" * 100 + "\x00" + "y" * 100 + "</p>",
                     "the HTML part holds a control character (NUL) in "
                     f"'{'x' * 30}\\x00{'y' * 29}': {AGAIN}", id="html-NUL-quoted-around-it"),
        pytest.param("Bonjour,", RENDERED_HTML.replace("<table>", "<table>\x7f"),
                     "the HTML part holds a control character (U+007F) in "
                     f"'<table>\\x7f<tr><td>B-1001</td></tr></tab': "
                     f"{AGAIN}", id="html-DEL"),
    ],
)  # fmt: skip
def test_a_body_with_a_control_character_is_refused(text: str, html: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_edit(document(ITEM.subject, text, html), ITEM)

    assert str(caught.value) == message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Bonjour,\r\n\r\nÀ bientôt.", id="CRLF-line-breaks"),
        pytest.param("Chalet\tdes Aravis\nArrivée\t16 h", id="tabs"),
        pytest.param("Bonjour\u2028Jeanne", id="U+2028"),
        pytest.param("=?utf-8?q?=0D=0A?= is text here", id="encoded-word-is-only-text"),
    ],
)
def test_a_body_may_hold_line_breaks_and_tabs(text: str) -> None:
    parsed = parse_edit(document(ITEM.subject, text), ITEM)

    assert parsed.text == text.strip() + "\n"
