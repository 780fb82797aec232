"""How the CLI shows things: plain tables for people, JSON objects for programs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from babel.dates import format_date

from .clock import local_time
from .config import Settings
from .consent import ConsentEvent, ConsentReason
from .delivery import Delivery, DispatchReport, Result
from .dkim import Alignment, DkimSigner
from .queue import QueueItem
from .registry import AddressStatus
from .service import AgencyPlan

if TYPE_CHECKING:
    from .explain import Explanation
    from .forecast import TabDay


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def item_object(item: QueueItem, consent: ConsentReason, tab: str) -> dict[str, Any]:
    """The JSON object of one queue item (SPEC §5 fields and a few more)."""
    return {
        "id": item.id,
        "agency": item.agency,
        "kind": item.kind,
        "tab": tab,
        "status": item.status,
        "booking_ref": item.booking_ref,
        "contact_ref": item.contact_ref,
        "contact_name": item.contact_name,
        "to": item.to,
        "subject": item.subject,
        "anchor_on": item.anchor_on,
        "visible_from": item.visible_from,
        "visible_until": item.visible_until,
        "consent": consent,
        "edited": item.edited,
        "reason": item.reason,
        "locale": item.locale,
        "approved_by": item.approved_by,
        "attempts": item.attempts,
        "next_attempt_at": item.next_attempt_at,
        "sent_at": item.sent_at,
        "message_id": item.message_id,
        "last_error": item.last_error,
    }


#: Cells are cut at this many characters, unless the table is given a width.
CELL_CHARS = 60
#: The last column keeps at least this many characters on a narrow terminal.
MIN_LAST_CHARS = 20


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    indent: str = "  ",
    *,
    width: int | None = None,
) -> str:
    """Lay out rows in aligned columns (the last column is not padded).

    With a `width` (the terminal's; 0: no terminal), the last column takes the room
    the others leave on the line, however long, instead of being cut at CELL_CHARS.
    """
    last_limit = None if width is not None else CELL_CHARS
    cells = [[str(h) for h in headers]] + [
        [*(_cell(c) for c in row[:-1]), _cell(row[-1], last_limit)] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if width:
        room = max(width - len(indent) - sum(w + 2 for w in widths[:-1]), MIN_LAST_CHARS)
        cells = [[*r[:-1], _cut(r[-1], room)] for r in cells]
    lines = []
    for row in cells:
        padded = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)] + [row[-1]]
        lines.append(indent + "  ".join(padded).rstrip())
    return "\n".join(lines)


def _cell(value: Any, limit: int | None = CELL_CHARS) -> str:
    if value is None:
        return "-"
    if isinstance(value, date):
        return value.isoformat()
    return _cut(str(value), limit)


def _cut(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def plan_object(report: AgencyPlan, dry_run: bool) -> dict[str, Any]:
    return {
        "agency": report.agency,
        "date": report.today,
        "dry_run": dry_run,
        "first_pass": report.first_pass,
        "created": {k.kind: k.created for k in report.kinds},
        "withdrawn": {k.kind: dict(k.withdrawn) for k in report.kinds if k.withdrawn},
        "expired": report.expired,
        "rerendered": {k.kind: k.rerendered for k in report.kinds if k.rerendered},
        "missed": [
            {
                "id": m.id if not dry_run else None,
                "kind": m.kind,
                "booking_ref": m.booking_ref,
                "contact_ref": m.contact_ref,
                "anchor_on": m.anchor_on,
                "visible_from": m.visible_from,
                "visible_until": m.visible_until,
            }
            for m in report.missed
        ],
        "errors": report.errors,
        "skipped": report.skipped,
        "unchanged": report.unchanged,
    }


def plan_text(report: AgencyPlan, dry_run: bool) -> str:
    if report.unchanged:
        return (
            f"{report.agency} {report.today.isoformat()}{' (dry run)' if dry_run else ''}: "
            "unchanged since today's pass (nothing imported, no kind changed)"
        )
    withdrawn = ", ".join(
        f"{reason} {n}" for k in report.kinds for reason, n in k.withdrawn.items()
    )
    head = (
        f"{report.agency} {report.today.isoformat()}{' (dry run)' if dry_run else ''}: "
        f"{report.created} queued, {len(report.missed)} missed, "
        f"{report.withdrawn} withdrawn{f' ({withdrawn})' if withdrawn else ''}, "
        f"{report.expired} expired"
        + (f", {report.rerendered} updated from changed bookings" if report.rerendered else "")
        + (f", {report.skipped} skipped (template errors)" if report.skipped else "")
    )
    lines = [head]
    lines += [f"  {k.kind}: {k.created} queued" for k in report.kinds if k.created]
    for m in report.missed:
        ident = "" if dry_run else f"#{m.id} "
        lines.append(
            f"  missed: {ident}{m.kind} booking {m.booking_ref} ({m.contact_name}): its window "
            f"{m.visible_from.isoformat()}..{m.visible_until.isoformat()} went by unplanned"
        )
    return "\n".join(lines)


def agencies_text(settings: Settings) -> str:
    lines = []
    for agency in settings.agency:
        lines.append(
            f"{agency.code}: {agency.name} ({agency.timezone}, {agency.locale}, "
            f"plans at {agency.plan_at})"
        )
        rows = [
            (
                kind.name,
                kind.tab_label(agency.language),
                f"{kind.delay_days} days {kind.direction.value} {kind.anchor}",
                f"{kind.retention_days} days",
                "yes" if kind.auto_send else "no",
            )
            for kind in agency.enabled_kinds()
        ]
        if rows:
            lines.append(table(("KIND", "TAB", "DELAY", "RETENTION", "AUTO_SEND"), rows))
        else:
            lines.append("  no kind enabled (add delays under [agency.delays])")
    return "\n".join(lines)


def dkim_text(signer: DkimSigner, alignments: Sequence[Alignment]) -> str:
    """Say how emails are signed, the DNS record to publish, and each agency's alignment."""
    lines = [
        f"DKIM: every email is signed d={signer.domain} s={signer.selector} "
        f"(RSA {signer.key_bits} bits); publish this DNS record:",
        signer.dns_record(),
    ]
    for entry in alignments:
        if entry.aligned:
            lines.append(
                f"  {entry.agency}: sender domain {entry.sender_domain} aligns with {signer.domain}"
            )
        else:
            lines.append(
                f"  {entry.agency}: sender domain {entry.sender_domain} does NOT align with "
                f"{signer.domain}: DMARC cannot pass on this signature: send from an address "
                f"at {signer.domain} or under it, or sign with that domain"
            )
    return "\n".join(lines)


def agencies_objects(settings: Settings) -> list[dict[str, Any]]:
    return [
        {
            "code": a.code,
            "name": a.name,
            "timezone": a.timezone,
            "locale": a.locale,
            "plan_at": a.plan_at,
            "kinds": [
                {
                    "kind": k.name,
                    "tab": k.tab_label(a.language),
                    "anchor": k.anchor,
                    "direction": k.direction,
                    "delay_days": k.delay_days,
                    "retention_days": k.retention_days,
                    "auto_send": k.auto_send,
                }
                for k in a.enabled_kinds()
            ],
        }
        for a in settings.agency
    ]


def tab_label(settings: Settings, code: str, kind: str) -> str:
    """Return the tab a kind is listed under, in the agency's language."""
    agency = settings.find_agency(code)
    definition = agency.definitions().get(kind) if agency else None
    if agency is None or definition is None:
        return kind
    return definition.tab.get(agency.language) or definition.tab.get("en") or kind


def _tab_order(settings: Settings, code: str, kind: str) -> tuple[int, int, str]:
    """Sort tabs as the configuration lists agencies and delays (unknown ones last)."""
    agency = settings.find_agency(code)
    if agency is None:
        return (len(settings.agency), 0, f"{code}/{kind}")
    kinds = list(agency.delays)
    position = settings.agency.index(agency)
    return (position, kinds.index(kind) if kind in kinds else len(kinds), kind)


def _agency_name(settings: Settings, code: str) -> str:
    agency = settings.find_agency(code)
    return agency.name if agency else "(no longer in the configuration)"


QUEUE_HEADERS = (
    "ID",
    "STATUS",
    "BOOKING",
    "CONTACT",
    "TO",
    "ANCHOR",
    "LISTED",
    "CONSENT",
    "SUBJECT",
)


def queue_text(
    objects: list[dict[str, Any]], settings: Settings, status: str, width: int = 0
) -> str:
    """Lay out queue items by agency, then tab, in the configuration's order.

    Subjects take the room the terminal's `width` leaves (0, not a terminal: whole).
    """
    if not objects:
        return f"no {'' if status == 'all' else status + ' '}items"
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for obj in objects:
        groups.setdefault((obj["agency"], obj["kind"]), []).append(obj)
    lines: list[str] = []
    current_agency = None
    for (code, kind), rows in sorted(groups.items(), key=lambda g: _tab_order(settings, *g[0])):
        if code != current_agency:
            current_agency = code
            lines.append(f"{code} — {_agency_name(settings, code)}")
        lines.append(f"  {rows[0]['tab']} ({kind}): {len(rows)} {status}")
        cells = [
            (
                r["id"],
                r["status"],
                r["booking_ref"],
                r["contact_name"],
                r["to"],
                r["anchor_on"],
                f"{r['visible_from'].isoformat()}..{r['visible_until'].isoformat()}",
                r["consent"],
                ("(edited) " if r["edited"] else "") + r["subject"],
            )
            for r in rows
        ]
        lines.append(table(QUEUE_HEADERS, cells, indent="    ", width=width))
    return "\n".join(lines)


def today_text(summary: list[dict[str, Any]], settings: Settings) -> str:
    lines = []
    for agency in settings.agency:
        rows = [s for s in summary if s["agency"] == agency.code]
        when = rows[0]["date"].isoformat() if rows else ""
        total = sum(r["pending"] for r in rows)
        lines.append(f"{agency.code} — {agency.name}, {when}: {total} emails to send")
        if rows:
            lines.append(
                table(
                    ("TAB", "PENDING", "READY", "NO CONSENT"),
                    [(r["tab"], r["pending"], r["ready"], r["blocked"]) for r in rows],
                )
            )
    return "\n".join(lines)


def show_text(
    item: QueueItem,
    consent: ConsentReason,
    tab: str,
    sender: str,
    reply_to: str | None,
    *,
    html: bool = False,
) -> str:
    """Show one email: what it is, its headers, then its text (or HTML) part."""
    lines = [
        f"Item {item.id} · {item.agency} · {tab} ({item.kind}) · {item.status}"
        f"{' · edited' if item.edited else ''}{f' ({item.reason})' if item.reason else ''}"
        f" · consent {consent}",
        f"Booking {item.booking_ref} · anchor {item.anchor_on.isoformat()} · listed "
        f"{item.visible_from.isoformat()}..{item.visible_until.isoformat()}",
        f"From: {sender}",
        *([f"Reply-To: {reply_to}"] if reply_to else []),
        f"To: {item.contact_name} <{item.to or 'no address'}>",
        f"Subject: {item.subject}",
        *([f"Message-ID: {item.message_id}"] if item.message_id else []),
        f"Content-Language: {item.locale}",
        "",
        item.html if html else item.text,
    ]
    return "\n".join(lines)


def delivery_text(delivery: Delivery, zone: ZoneInfo) -> str:
    """One line about what happened to one item when sending (times in its agency's `zone`)."""
    what = f" ({delivery.kind}, booking {delivery.booking_ref})" if delivery.kind else ""
    result = delivery.result
    if result is Result.SENT:
        return f"item {delivery.item_id} sent to {delivery.to}{what} {delivery.message_id}"
    if result is Result.RETRY:
        when = local_time(delivery.next_attempt_at, zone) if delivery.next_attempt_at else "later"
        return (
            f"item {delivery.item_id} not sent{what}: {delivery.detail}: it stays approved and is "
            f"retried from {when} (or run 'reminders send {delivery.item_id}' again)"
        )
    if result is Result.NOT_TRIED:
        return f"item {delivery.item_id}{what}: {delivery.detail}"
    labels = {
        Result.HELD: "not sent",
        Result.FAILED: "failed",
        Result.UNKNOWN: "unknown",
        Result.WITHDRAWN: "not sent",
        Result.EXPIRED: "not sent",
        Result.REFUSED: "not sent",
        Result.TAKEN: "not sent by this process",
    }
    return f"item {delivery.item_id} {labels[result]}{what}: {delivery.detail}"


def dispatch_summary(report: DispatchReport) -> str:
    parts = [
        f"{report.count(Result.SENT)} sent",
        f"{report.count(Result.HELD)} held for consent",
        f"{report.count(Result.RETRY)} to retry",
        f"{report.count(Result.FAILED)} failed",
        f"{report.count(Result.UNKNOWN)} unknown",
    ]
    others = report.count(Result.REFUSED, Result.WITHDRAWN, Result.NOT_TRIED, Result.EXPIRED)
    if others:
        parts.append(f"{others} not sendable or not tried")
    taken = report.count(Result.TAKEN)
    if taken:
        parts.append(f"{taken} sent by another process")
    return ", ".join(parts)


def dispatch_problem(report: DispatchReport, *, held_is_failure: bool) -> str | None:
    """Return the one line that says what went wrong and what to do, or None."""
    held = report.count(Result.HELD)
    if report.stopped:
        waiting = report.count(Result.RETRY, Result.NOT_TRIED)
        given_up = report.count(Result.FAILED)
        parts = []
        if waiting or not given_up:
            parts.append(
                f"{waiting} email{'s' if waiting != 1 else ''} not sent, nothing lost: they "
                "stay approved and the daemon retries them (or send them again)"
            )
        if given_up:
            parts.append(
                f"{given_up} email{'s' if given_up != 1 else ''} failed for good after "
                "its last retry (see the lines above)"
            )
        return f"{report.stopped}: " + "; ".join(parts)
    failed = report.count(Result.RETRY, Result.FAILED, Result.UNKNOWN, Result.REFUSED)
    failed += report.count(Result.NOT_TRIED)
    if held_is_failure:
        # Items a person named: any that did not go is worth an exit code.
        failed += held + report.count(Result.WITHDRAWN, Result.EXPIRED)
    if not failed:
        return None
    total = len(report.deliveries)
    return (
        f"{failed} of {total} email{'s' if total != 1 else ''} not sent: see the lines above "
        "for each one and what to do"
    )


def health_text(rows: list[dict[str, Any]]) -> str:
    """One line per agency; its last run in its own zone (which `timezone` names)."""
    return table(
        ("AGENCY", "STATE", "LAST PLANNED", "LAST RUN", "PLANS AT", "UNKNOWN", "STUCK"),
        [
            (
                r["agency"],
                "ok" if r["ok"] else ("LATE" if r["planning_late"] else "CHECK"),
                r["last_planned_on"],
                _local(r["last_run_at"], ZoneInfo(r["timezone"])),
                f"{r['plan_at']} {r['timezone']}",
                r["unknown"],
                r["stuck_sending"],
            )
            for r in rows
        ],
        indent="",
    )


def deliveries_text(deliveries: list[dict[str, Any]], zone: ZoneInfo) -> str:
    """The delivery attempts of one item, oldest first, in its agency's `zone`."""
    rows = [
        (
            d["attempt"],
            _local(d["started_at"], zone),
            d["outcome"] or "in flight",
            d["actor"],
            d["message_id"],
            d["detail"] or "",
        )
        for d in deliveries
    ]
    return "Delivery attempts:\n" + table(
        ("#", "STARTED", "OUTCOME", "BY", "MESSAGE-ID", "DETAIL"), rows
    )


def plain_cell(value: Any) -> str:
    """A value as one CSV cell: ISO dates, empty for none."""
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


#: What a spreadsheet takes for the start of a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A value as one CSV cell a spreadsheet shows and never runs.

    A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return (an address
    `=1+2@example.fr`, a method typed by staff, a bounce's diagnostic written by
    whoever mailed it) gets a leading `'`, which spreadsheets read as "text".
    Every CSV this product writes goes through here; JSON keeps values as they are.
    """
    text = plain_cell(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def consent_object(found: AddressStatus) -> dict[str, Any]:
    """`consent status --json`: SPEC §5 fields, and a few more."""
    record = found.record
    return {
        "address": found.address,
        "consent": found.consent,
        "source": record.opted_out_by,
        "opted_out_at": record.opted_out_at,
        "confirmed_at": record.confirmed_at,
        "confirmation_sent_at": record.confirmation_sent_at,
        "contacts": [{"name": name, "agency": agency} for name, agency in found.contacts],
        "timezone": found.zone.key,
        # The contact's choices per kind of email: {kind: false} for a refused kind.
        "kinds": dict(found.kinds),
        "history": [
            {
                "action": e.action,
                "source": e.source,
                "method": e.method,
                "actor": e.actor,
                "occurred_at": e.occurred_at,
                "recorded_at": e.recorded_at,
                "detail": e.detail,
                "kind": e.kind,
            }
            for e in found.history
        ],
    }


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    return local_time(value, zone) if value else "-"


def consent_text(found: AddressStatus) -> str:
    """The address's state and history, in the zone of the agency that last wrote to it."""
    record = found.record

    def _when(value: datetime | None) -> str:
        return _local(value, found.zone)

    head = f"{found.address}: {found.consent}"
    if record.opted_out_by:
        head += f" (source {record.opted_out_by}, since {_when(record.opted_out_at)})"
    lines = [head]
    if found.contacts:
        lines.append(
            "  used by: " + ", ".join(f"{name} ({agency})" for name, agency in found.contacts)
        )
    lines.append(
        f"  confirmed: {_when(record.confirmed_at)} · confirmation sent: "
        f"{_when(record.confirmation_sent_at)}"
    )
    refused = [kind for kind, receive in found.kinds.items() if not receive]
    if refused:
        lines.append("  refused kinds: " + ", ".join(refused) + " (the other kinds are sent)")
    if found.history:
        lines.append("History, oldest first:")
        rows = [
            (_when(e.occurred_at), e.action, e.source, e.method, e.actor, _when(e.recorded_at),
             _event_detail(e))
            for e in found.history
        ]  # fmt: skip
        lines.append(
            table(("WHEN", "ACTION", "SOURCE", "METHOD", "BY", "RECORDED", "DETAIL"), rows)
        )
    else:
        lines.append("No history yet.")
    return "\n".join(lines)


def _event_detail(event: ConsentEvent) -> str:
    """The DETAIL cell of a history line: the kind of a kind choice, then the detail."""
    parts = [f"kind {event.kind}" if event.kind else "", event.detail or ""]
    return "; ".join(part for part in parts if part)


def report_text(rows: list[dict[str, Any]], kind: str | None = None) -> str:
    """The opted-out addresses, each one's time in the zone its row names."""
    if not rows:
        return f"no address refused {kind}" if kind else "no opted-out address matches"
    cells = [
        (
            r["address"],
            r["source"],
            r["method"],
            _local(r["occurred_at"], ZoneInfo(r["timezone"])),
            r["actor"],
        )
        for r in rows
    ]
    what = f"address{'es' if len(rows) != 1 else ''}"
    return table(("ADDRESS", "SOURCE", "METHOD", "SINCE", "BY"), cells, indent="") + (
        f"\n{len(rows)} {what} refused {kind} (the other kinds are sent)"
        if kind
        else f"\n{len(rows)} opted-out {what}"
    )


def forecast_text(rows: Sequence[TabDay], settings: Settings) -> str:
    """One table per agency: a line per day, a column per tab."""
    lines: list[str] = []
    for agency in settings.agency:
        mine = [r for r in rows if r.agency == agency.code]
        if not mine:
            continue
        tabs = list(dict.fromkeys(r.tab for r in mine))
        days = list(dict.fromkeys(r.day for r in mine))
        counts = {(r.day, r.tab): r.count for r in mine}
        lines.append(f"{agency.code} — {agency.name}: emails each tab will hold")
        lines.append(
            table(
                ("DAY", *tabs, "TOTAL"),
                [
                    (
                        f"{day.isoformat()} {format_date(day, 'EEE', locale=agency.locale)}",
                        *(counts[(day, tab)] for tab in tabs),
                        sum(counts[(day, tab)] for tab in tabs),
                    )
                    for day in days
                ],
            )
        )
    return "\n".join(lines) or "no kind is enabled: add delays under [agency.delays]"


def explanation_object(explanation: Explanation) -> dict[str, Any]:
    """`explain --json`: SPEC §9 fields, and the tab and what happens next."""
    return {
        "kind": explanation.kind,
        "tab": explanation.tab,
        "anchor_on": explanation.anchor_on,
        "visible_from": explanation.visible_from,
        "visible_until": explanation.visible_until,
        "eligible": explanation.eligible,
        "reason": explanation.reason,
        "item": explanation.item,
        "status": explanation.status,
        "consent": explanation.consent,
        "next": explanation.next,
    }


def explanation_text(booking_ref: str, explanations: Sequence[Explanation]) -> str:
    if not explanations:
        return f"booking {booking_ref}: its agency has no kind enabled"
    lines = [f"booking {booking_ref} ({explanations[0].agency}), contact consent: "
             f"{explanations[0].consent}"]  # fmt: skip
    for e in explanations:
        listed = (
            f"listed {e.visible_from.isoformat()}..{e.visible_until.isoformat()}"
            if e.visible_from and e.visible_until
            else "no window"
        )
        anchor = e.anchor_on.isoformat() if e.anchor_on else "-"
        state = f"item {e.item} {e.status}" if e.item is not None else "no item"
        verdict = "eligible" if e.eligible else f"not eligible: {e.reason}"
        lines.append(f"  {e.tab} ({e.kind}): anchor {anchor}, {listed}; {verdict}; {state}")
        lines.append(f"    next: {e.next}")
    return "\n".join(lines)
