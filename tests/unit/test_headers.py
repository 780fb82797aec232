"""Text that may reach an email header: control characters, plain or in encoded words."""

from __future__ import annotations

import pytest

from reminders.headers import control_character, header_problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("Marie\rBcc: x", "CR", id="CR"),
        pytest.param("Marie\nBcc: x", "LF", id="LF"),
        pytest.param("Marie\r\nBcc: x", "CR", id="CRLF-names-the-first"),
        pytest.param("Marie\0", "NUL", id="NUL"),
        pytest.param("\x1b[31mMarie", "ESC", id="ESC"),
        pytest.param("Marie\x7f", "U+007F", id="DEL"),
        pytest.param("Marie\tDupont", "TAB", id="TAB"),
        pytest.param("Marie\x0bDupont", "U+000B", id="vertical-tab"),
        pytest.param("Marie\u2028Dupont", "U+2028", id="U+2028-line-separator"),
        pytest.param("Marie\u2029Dupont", "U+2029", id="U+2029-paragraph-separator"),
        pytest.param("Marie\x85Dupont", "U+0085", id="C1-NEL"),
        pytest.param("Marie\x9bDupont", "U+009B", id="C1-CSI"),
        pytest.param("Marie Dupont", None, id="plain"),
        pytest.param("Sophie Lefèvre-Øberg", None, id="accented"),
        pytest.param("Chalet 🏔️ des Aravis", None, id="emoji"),
        pytest.param("=1+2", None, id="formula-prefix-is-fine-here"),
        pytest.param("Marie\u200bDupont", None, id="zero-width-space-is-not-a-control"),
        pytest.param("", None, id="empty"),
    ],
)
def test_the_first_control_character_is_named(value: str, expected: str | None) -> None:
    assert control_character(value) == expected


@pytest.mark.parametrize(
    ("value", "allow", "expected"),
    [
        pytest.param("Ligne 1\r\nLigne 2\tfin", "\n\r\t", None, id="body-breaks-allowed"),
        pytest.param("Ligne 1\nLigne\0 2", "\n\r\t", "NUL", id="NUL-not-allowed"),
        pytest.param("Ligne 1\n\x0cLigne 2", "\n\r\t", "U+000C", id="form-feed-not-allowed"),
    ],
)
def test_allowed_characters_are_skipped(value: str, allow: str, expected: str | None) -> None:
    assert control_character(value, allow=allow) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("Marie\r\nBcc: x", "holds a control character (CR)", id="CRLF"),
        pytest.param("Marie\0", "holds a control character (NUL)", id="NUL"),
        pytest.param("=?utf-8?q?Marie=0D=0ABcc:_evil@evil.example?=",
                     "is an encoded word holding a control character (CR)",
                     id="encoded-word-q-CRLF"),
        pytest.param("=?UTF-8?B?TWFyaWUNCkJjYzogeA==?=",
                     "is an encoded word holding a control character (CR)",
                     id="encoded-word-b-CRLF"),
        pytest.param("Marie =?iso-8859-1?q?Dupont=00?=",
                     "is an encoded word holding a control character (NUL)",
                     id="encoded-word-after-text"),
        pytest.param("=?utf-8*fr?q?Marie=0A?=",
                     "is an encoded word holding a control character (LF)",
                     id="encoded-word-with-language"),
        pytest.param("=?x-unknown?q?Marie=1B?=",
                     "is an encoded word holding a control character (ESC)",
                     id="encoded-word-unknown-charset"),
        pytest.param("=?utf-8?q?Marie=C2=85?=",
                     "is an encoded word holding a control character (U+0085)",
                     id="encoded-word-C1-NEL"),
        pytest.param("=?utf-8?q?Ren=C3=A9_Dupont?=", None, id="encoded-word-benign"),
        pytest.param("Sophie =?utf-8?q?Lef=C3=A8vre?=", None, id="encoded-word-after-accents"),
        pytest.param("=?utf-8?q?Marie=FF=0?=", None, id="encoded-word-bad-utf8"),
        pytest.param("=?utf-8?b?not*base64?=", None, id="encoded-word-broken-base64"),
        pytest.param("=?utf-8?q?unfinished", None, id="not-an-encoded-word"),
        pytest.param("Sophie Lefèvre", None, id="accented"),
        pytest.param("Chalet 🏔️", None, id="emoji"),
        pytest.param("=1+2", None, id="formula-prefix"),
    ],
)  # fmt: skip
def test_a_header_problem_is_said_in_a_few_words(value: str, expected: str | None) -> None:
    assert header_problem(value) == expected


def test_the_control_characters_are_exactly_category_cc_and_the_two_separators() -> None:
    import unicodedata

    expected = {
        chr(code)
        for code in range(0x110000)
        if unicodedata.category(chr(code)) == "Cc" or chr(code) in "\u2028\u2029"
    }
    found = {chr(code) for code in range(0x3000) if control_character(chr(code))}

    assert found == {c for c in expected if ord(c) < 0x3000}
    assert all(ord(c) < 0x3000 for c in expected)
