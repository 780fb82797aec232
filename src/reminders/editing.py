"""The file staff edit an email in: a Subject line, the text, then the HTML part."""

from __future__ import annotations

import re

import markupsafe

from .errors import UsageError
from .queue import QueueItem, Rendered

MARKER = "-----8<----- HTML part: leave it as it is to rebuild it from the text above"


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
    text, marker, html = rest.partition(MARKER)
    text = text.strip() + "\n"
    if not text.strip():
        raise UsageError("the text body is empty: nothing saved (use 'reminders discard')")
    html = html.lstrip("\n")
    html_untouched = not marker or html.strip() == item.html.strip()
    if html_untouched:
        # Keep the designed HTML unless the text it mirrors changed.
        html = item.html if text.strip() == item.text.strip() else html_from_text(text, item.locale)
    return Rendered(subject=subject, text=text, html=html, locale=item.locale)


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
