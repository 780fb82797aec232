"""The file staff edit an email in: a Subject line, the text, then the HTML part.

When staff change only the text, the HTML part is built again around it: the
service renders the kind's branded layout (header, footer and its unsubscribe link)
with `paragraphs(text)` in place of the kind's own content; where that layout cannot
be rendered, `html_from_text` makes a plain page. The text is untrusted: it is
HTML-escaped either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Edit:
    """Staff's version of an email, as read back from the edited document."""

    subject: str
    text: str
    #: the HTML part to keep; None: build it again around the changed text
    html: str | None
    locale: str

    def rendered(self, html: str) -> Rendered:
        """Return the content to store, with `html` as the HTML part."""
        return Rendered(subject=self.subject, text=self.text, html=html, locale=self.locale)


def parse_edit(edited: str, item: QueueItem) -> Edit:
    """Read staff's edited document back; a changed text with untouched HTML asks a new one."""
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
    kept: str | None = html
    if html_untouched:
        # Keep the designed HTML unless the text it mirrors changed.
        kept = item.html if text.strip() == item.text.strip() else None
    return Edit(subject=subject, text=text, html=kept, locale=item.locale)


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


#: How the branded layout's own paragraphs are spaced (templates/<kind>/body.*.html).
LAYOUT_PARAGRAPH = markupsafe.Markup('<p style="margin:0 0 16px 0;">')
#: A paragraph of the plain page.
PLAIN_PARAGRAPH = markupsafe.Markup("<p>")


def paragraphs(text: str, opening: markupsafe.Markup = PLAIN_PARAGRAPH) -> markupsafe.Markup:
    """Write staff's text as HTML paragraphs: a blank line parts two, a line break is <br>.

    Every character of the text is escaped (`<script>` is shown, never run); line
    ends are LF, CRLF or CR alike.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    found = [p.strip() for p in re.split(r"\n\s*\n", lines.strip()) if p.strip()]
    return markupsafe.Markup("\n").join(
        opening
        + markupsafe.Markup("<br>\n").join(markupsafe.escape(line) for line in p.split("\n"))
        + markupsafe.Markup("</p>")
        for p in found
    )


def without_footer(text: str, footer: str | None) -> str:
    """Return staff's text without `footer` (the layout shows its own), if it ends with it."""
    body, ending = text.strip(), (footer or "").strip()
    if ending and body.endswith(ending) and body != ending:
        return body[: -len(ending)].rstrip() + "\n"
    return text


def html_from_text(text: str, language: str) -> str:
    """Build a plain HTML part from staff's edited text: paragraphs, line breaks, escaped."""
    return (
        f'<!DOCTYPE html>\n<html lang="{markupsafe.escape(language)}">\n'
        f'<head><meta charset="utf-8"></head>\n<body>\n{paragraphs(text)}\n</body>\n</html>\n'
    )
