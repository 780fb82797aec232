"""What the review screen writes: list rows, the day's summary, send results (pure).

Every function takes the values the services returned and the agency's language,
and returns text; the screen only places it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from babel.dates import format_date
from rich.text import Text

from ..consent import ConsentReason
from ..delivery import Delivery, DispatchReport, Result
from ..queue import QueueItem
from .words import anchor_words, consent_words, keys, plural, say

#: The list's first column: staff changed this email.
EDITED_MARK = "✎"


def day_text(day: date, locale: str, style: str = "medium") -> str:
    """Return a date as the agency's locale writes it."""
    return format_date(day, format=style, locale=locale)


def matches(item: QueueItem, text: str) -> bool:
    """Tell whether the filter `text` is in the item's guest, booking, contact or address."""
    wanted = text.strip().casefold()
    if not wanted:
        return True
    fields = (item.contact_name, item.booking_ref, item.contact_ref, item.to or "")
    return any(wanted in field.casefold() for field in fields)


def row_cells(
    item: QueueItem, consent: ConsentReason, language: str, locale: str
) -> tuple[Text, Text, Text]:
    """Return one list row of two lines: the edited mark; guest and consent; booking and date.

    Two lines keep the five facts within the left half of an 80-column terminal.
    """
    consent_style = "green" if consent is ConsentReason.OK else "yellow"
    return (
        Text(EDITED_MARK if item.edited else " "),
        Text.assemble(item.contact_name, "\n", (consent_words(language, consent), consent_style)),
        Text(f"{item.booking_ref}\n{day_text(item.anchor_on, locale)}"),
    )


def headers(language: str, anchor: str) -> tuple[Text, Text, Text]:
    """Return the list's column headers, two lines each as the rows."""
    return (
        Text(" "),
        Text(f"{say(language, 'guest')}\n{say(language, 'consent')}"),
        Text(f"{say(language, 'booking')}\n{anchor_words(language, anchor)}"),
    )


def tab_title(tab: str, pending: int) -> str:
    """Return a tab's label with the count of its emails to send.

    No brackets: the four French tabs and their counts then fit in 80 columns.
    """
    return f"{tab} {pending}"


def summary_text(rows: Sequence[Mapping[str, Any]], name: str, language: str, locale: str) -> str:
    """Return the day's summary ("infos du jour") of one agency, as `reminders today` counts it.

    Two lines: the day and the agency, then the totals; the tabs below carry each count.
    """
    pending = sum(r["pending"] for r in rows)
    ready = sum(r["ready"] for r in rows)
    day = rows[0]["date"] if rows else None
    head = say(language, "summary", name=name, day=day_text(day, locale, "full") if day else "")
    counts = say(
        language,
        "summary_counts",
        pending=pending,
        s=plural(language, pending),
        ready=ready,
        rs=plural(language, ready),
        blocked=pending - ready,
    )
    return f"{head}\n{counts}"


def keys_text(language: str) -> Text:
    """Return the keys lines: each key in bold, then what it does."""
    text = Text()
    first = True
    for pair in keys(language):
        if pair is None:
            text.append("\n")
            first = True
            continue
        key, what = pair
        if not first:
            text.append("  ")
        first = False
        text.append(key, style="bold reverse")
        text.append(f" {what}")
    return text


def delivery_line(delivery: Delivery, language: str, guests: Mapping[int, tuple[str, str]]) -> str:
    """Say what happened to one email, by the guest's name and booking."""
    guest, booking = guests.get(delivery.item_id, ("", delivery.booking_ref))
    values = {
        "id": delivery.item_id,
        "guest": guest or delivery.to or "?",
        "booking": booking or delivery.booking_ref,
        "to": delivery.to,
        "detail": delivery.detail or delivery.result.value,
    }
    result = delivery.result
    if result is Result.SENT:
        return say(language, "sent", **values)
    if result is Result.HELD:
        reason = (delivery.detail or "").partition("(")[2].partition(")")[0]
        return say(language, "held", reason=consent_words(language, reason), **values)
    if result is Result.RETRY:
        return say(language, "retry", **values)
    if result is Result.NOT_TRIED:
        return say(language, "not_tried", **values)
    if result is Result.TAKEN:
        return say(language, "taken", **values)
    return say(language, "not_sent", **values)


def report_line(report: DispatchReport, what: str, language: str) -> str:
    """Sum up a send: how many went, how many did not."""
    sent = report.count(Result.SENT)
    not_sent = len(report.deliveries) - sent - report.count(Result.TAKEN)
    line = say(
        language,
        "report",
        what=what,
        sent=sent,
        s=plural(language, sent),
        not_sent=not_sent,
        ns=plural(language, not_sent),
    )
    if report.stopped:
        line += " · " + say(language, "stopped", reason=report.stopped)
    return line


def confirm_tab_text(tab: str, ready: int, blocked: int, edited: int, language: str) -> str:
    """The question asked before a whole tab is sent: the count, and who will not get it."""
    lines = [say(language, "confirm_tab", ready=ready, tab=tab, s=plural(language, ready))]
    if edited:
        lines.append(say(language, "confirm_tab_edited", edited=edited, s=plural(language, edited)))
    if blocked == 1:
        lines.append(say(language, "confirm_tab_blocked_one"))
    elif blocked:
        lines.append(say(language, "confirm_tab_blocked_many", blocked=blocked))
    return "\n".join(lines)
