"""The file staff edit an email in: a Subject line, the text, then the HTML part."""

from __future__ import annotations

import re

import markupsafe

from .errors import UsageError
from .headers import control_character, header_problem
from .queue import QueueItem, Rendered

MARKER = "-----8<----- HTML part: leave it as it is to rebuild it from the text above"
#: Line breaks and tabs belong in a body; other control characters do not.
_BODY_ALLOWS = "\n\r\t\u2028\u2029"
#: At most this many characters of its line are quoted either side of a control character.
_EXCERPT = 30


def edit_document(item: QueueItem) -> str:
    """Return the text opened in the editor for `item`."""
    return f"Subject: {item.subject}\n\n{item.text.rstrip()}\n\n{MARKER}\n{item.html}"


def parse_edit(edited: str, item: QueueItem) -> Rendered:
    """Read staff's edited document back; a changed text with untouched HTML rebuilds it."""
    head, _, rest = edited.partition("\n")
    if not head.startswith("Subject:"):
        raise UsageError("the edited file must start with a 'Subject:' line: nothing saved")
    subject = " ".join(head.removeprefix("Subject:").split())
    if not subject:
        raise UsageError("the subject is empty: nothing saved")
    problem = header_problem(subject)
    if problem:
        raise UsageError(
            f"the subject {subject!r} {problem}: remove it and edit again; nothing saved"
        )
    text, marker, html = rest.partition(MARKER)
    _refuse_control_characters("text body", text)
    _refuse_control_characters("HTML part", html)
    text = text.strip() + "\n"
    if not text.strip():
        raise UsageError("the text body is empty: nothing saved (use 'reminders discard')")
    html = html.lstrip("\n")
    html_untouched = not marker or html.strip() == item.html.strip()
    if html_untouched:
        # Keep the designed HTML unless the text it mirrors changed.
        html = item.html if text.strip() == item.text.strip() else html_from_text(text, item.locale)
    return Rendered(subject=subject, text=text, html=html, locale=item.locale)


def _refuse_control_characters(part: str, body: str) -> None:
    """Refuse a body holding a control character other than a line break or a tab."""
    found = (i for i, char in enumerate(body) if control_character(char, allow=_BODY_ALLOWS))
    at = next(found, None)
    if at is not None:
        # Quote its line, or a part of it around the character when the line is long.
        start = max(body.rfind("\n", 0, at) + 1, at - _EXCERPT)
        line_end = body.find("\n", at)
        end = min(len(body) if line_end < 0 else line_end, at + _EXCERPT)
        excerpt = body[start:end]
        raise UsageError(
            f"the {part} holds a control character ({control_character(body[at])}) "
            f"in {excerpt!r}: remove it and edit again; nothing saved"
        )


def html_from_text(text: str, language: str) -> str:
    """Build a plain HTML part from staff's edited text: paragraphs, line breaks, escaped."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    body = "\n".join(
        "<p>" + str(markupsafe.escape(p)).replace("\n", "<br>\n") + "</p>" for p in paragraphs
    )
    return (
        f'<!DOCTYPE html>\n<html lang="{markupsafe.escape(language)}">\n'
        f'<head><meta charset="utf-8"></head>\n<body>\n{body}\n</body>\n</html>\n'
    )
