"""Text that may reach an email header: control characters and encoded words."""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.header import decode_header

#: Short names of the control characters people meet; any other is written U+XXXX.
_NAMES = {"\r": "CR", "\n": "LF", "\0": "NUL", "\x1b": "ESC", "\t": "TAB"}
#: Category Cc (U+0000-U+001F, U+007F-U+009F), and the line and paragraph separators,
#: which are not Cc but break lines all the same.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_character(value: str, *, allow: str = "") -> str | None:
    """Return the short name of the first control character in `value` not in `allow`, or None.

    A control character is one of Unicode category Cc (C0 and C1 controls, DEL) or
    the line and paragraph separators U+2028 and U+2029.
    """
    # One regular expression search: this runs on every header of every email sent.
    for found in _CONTROL.finditer(value):
        char = found.group()
        if char not in allow:
            return _NAMES.get(char, f"U+{ord(char):04X}")
    return None


def header_problem(value: str) -> str | None:
    """Say why `value` cannot go into a header (a control character, maybe encoded), or None."""
    name = control_character(value)
    if name:
        return f"holds a control character ({name})"
    name = control_character(_decoded_words(value))
    if name:
        return f"is an encoded word holding a control character ({name})"
    return None


def _decoded_words(value: str) -> str:
    """Return what the RFC 2047 encoded words in `value` decode to ('' when there are none)."""
    if "=?" not in value:
        return ""
    try:
        parts = decode_header(value)
    except (HeaderParseError, ValueError):  # e.g. broken base64: not a word a reader decodes
        return ""
    decoded = []
    for part, charset in parts:
        if charset is None or isinstance(part, str):
            continue  # plain text around the words: `control_character(value)` saw it
        try:
            decoded.append(part.decode(charset.partition("*")[0], errors="replace"))
        except (LookupError, ValueError):
            # An unknown charset: its control bytes are still control characters in latin-1.
            decoded.append(part.decode("latin-1"))
    return "".join(decoded)
