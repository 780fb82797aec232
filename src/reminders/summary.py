"""The day's summary ("infos du jour"): how many emails wait in each of an agency's tabs.

Pure: the rows come from `service.today_summary`; this turns one agency's rows
into the subject, text and HTML of the email sent to the agency's `summary_to`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import markupsafe
from babel.dates import format_date

from .queue import Rendered

_WORDS = {
    "fr": {
        "subject": "Infos du jour – {name} – {day}",
        "intro": "Bonjour,\n\nVoici les emails qui attendent dans vos onglets ce {day} :",
        "row": "{tab} : {pending} à envoyer ({ready} prêt{s}, {blocked} sans consentement)",
        "none": "Aucun email n'attend aujourd'hui.",
        "total": "Total : {pending} à envoyer.",
        "how": "Pour les voir : reminders queue --agency {code}",
    },
    "en": {
        "subject": "Today's summary – {name} – {day}",
        "intro": "Hello,\n\nThese emails wait in your tabs on {day}:",
        "row": "{tab}: {pending} to send ({ready} ready, {blocked} without consent)",
        "none": "No email waits today.",
        "total": "Total: {pending} to send.",
        "how": "To see them: reminders queue --agency {code}",
    },
}


def summary_email(
    *, code: str, name: str, language: str, day: date, rows: Sequence[dict[str, Any]]
) -> Rendered:
    """Return the summary email of one agency's day (French or English)."""
    lang = language if language in _WORDS else "en"
    words = _WORDS[lang]
    when = format_date(day, format="full", locale=lang)
    lines = [
        words["row"].format(
            tab=row["tab"],
            pending=row["pending"],
            ready=row["ready"],
            blocked=row["blocked"],
            s="s" if row["ready"] > 1 else "",
        )
        for row in rows
        if row["pending"]
    ]
    total = sum(row["pending"] for row in rows)
    body = [words["intro"].format(day=when), ""]
    body += [f"- {line}" for line in lines] or [words["none"]]
    body += ["", words["total"].format(pending=total), "", words["how"].format(code=code)]
    text = "\n".join(body) + "\n"
    html_lines = "".join(f"<li>{markupsafe.escape(line)}</li>" for line in lines)
    html = (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head><meta charset="utf-8"></head>\n<body>\n'
        + "".join(
            f"<p>{markupsafe.escape(p)}</p>\n"
            for p in words["intro"].format(day=when).split("\n\n")
        )
        + (f"<ul>{html_lines}</ul>\n" if lines else f"<p>{markupsafe.escape(words['none'])}</p>\n")
        + f"<p><strong>{markupsafe.escape(words['total'].format(pending=total))}</strong></p>\n"
        + f"<p>{markupsafe.escape(words['how'].format(code=code))}</p>\n</body>\n</html>\n"
    )
    subject = words["subject"].format(name=name, day=day.isoformat())
    return Rendered(subject=subject, text=text, html=html, locale=lang)
