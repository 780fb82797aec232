"""`reminders consent ...` and `reminders bounces import`: the consent registry for staff."""

from __future__ import annotations

import csv
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from .. import registry, views
from ..clock import local_today
from ..consent import Action, Source
from ..errors import InvalidAddress, UsageError
from ..mailer import mailer_for
from ..planning import EARLIEST_DAY, LATEST_DAY
from .app import App, cli, fails_cleanly, json_option, pass_app


@cli.group("consent")
def consent_group() -> None:
    """Look up and record consent, per email address."""


def _instant(
    value: str | None, zone: ZoneInfo, option: str, now: datetime | None = None
) -> datetime | None:
    """Read an ISO date or date-time; one without an offset is in `zone`.

    With `now`, a bare time (`09:15`) is that time today, the day it is in `zone`
    at `now`. A local time the clocks skip or repeat at a DST change is read as
    Python does (fold 0: the first of two 02:30, the offset before a gap).
    """
    if value is None:
        return None
    if now is not None and _is_bare_time(value):
        time_of_day = time.fromisoformat(value)
        return datetime.combine(local_today(now, zone), time_of_day, time_of_day.tzinfo or zone)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        today = "09:15 (today), " if now is not None else ""
        raise UsageError(
            f"{option} {value!r} is not a date or time: write e.g. {today}2026-11-20 or "
            "2026-11-20T14:30 (or with an offset, 2026-11-20T14:30+01:00)"
        ) from None
    if not EARLIEST_DAY <= parsed.date() <= LATEST_DAY:
        # Converting or widening an instant at the calendar's ends would overflow.
        raise UsageError(
            f"{option} {value!r} is out of range: give a day from {EARLIEST_DAY.isoformat()} "
            f"to {LATEST_DAY.isoformat()}"
        )
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def _is_bare_time(value: str) -> bool:
    """Tell whether `value` is a time of day alone (`09:15`, `09:15:30`), no date."""
    if len(value) < 5 or value[2] != ":":
        return False
    try:
        time.fromisoformat(value)
    except ValueError:
        return False
    return True


@consent_group.command("status")
@click.argument("address")
@json_option
@pass_app
@fails_cleanly
def consent_status(app: App, address: str, as_json: bool) -> None:
    """Show an address's consent, the source of its opt-out and its whole history."""
    found = registry.status(app.database, app.settings, address)
    if as_json:
        click.echo(views.to_json(views.consent_object(found)))
    else:
        click.echo(views.consent_text(found))


def _record(app: App, address: str, action: Action, method: str, at: str | None) -> None:
    zone = registry.zone_of(app.database, app.settings, address)
    occurred_at = _instant(at, zone, "--at", app.clock.now())
    decision = registry.record_by_staff(
        app.database,
        address,
        action,
        method=method,
        actor=app.actor,
        occurred_at=occurred_at,
        zone=zone,
    )
    found = registry.status(app.database, app.settings, address)
    verb = "opted out" if action is Action.OPT_OUT else "opted in"
    if decision.changes:
        click.echo(f"{found.address} {verb} (source agent, method {method}): now {found.consent}")
    else:
        source = found.record.opted_out_by
        why = f" by {source}" if source else ""
        click.echo(f"{found.address} already {found.consent}{why}: nothing changed")


_method_option = click.option(
    "--method",
    required=True,
    metavar="M",
    help="How it reached you: phone, email, letter, paper form, in person, ...",
)
_at_option = click.option(
    "--at",
    metavar="ISO",
    help=(
        "When it happened, if not now: 09:15 (today) or 2026-11-20T14:30, in the time zone "
        "of the agency that last wrote to the address."
    ),
)


@consent_group.command("opt-out")
@click.argument("address")
@_method_option
@_at_option
@pass_app
@fails_cleanly
def consent_opt_out(app: App, address: str, method: str, at: str | None) -> None:
    """Record that an address must not be written to (source agent)."""
    _record(app, address, Action.OPT_OUT, method, at)


@consent_group.command("opt-in")
@click.argument("address")
@_method_option
@_at_option
@pass_app
@fails_cleanly
def consent_opt_in(app: App, address: str, method: str, at: str | None) -> None:
    """Lift an opt-out staff or an import recorded (a contact's own only they can lift)."""
    _record(app, address, Action.OPT_IN, method, at)


@consent_group.command("send-confirmation")
@click.argument("address")
@pass_app
@fails_cleanly
def consent_send_confirmation(app: App, address: str) -> None:
    """Send the confirmation email (double opt-in) of an address: once per address."""
    sent_to = registry.send_confirmation(
        app.database,
        app.settings,
        mailer_for(app.settings),
        address,
        by=Source.AGENT,
        actor=app.actor,
        method="email",
    )
    days = app.settings.consent.confirmation_valid_days
    click.echo(
        f"confirmation email sent to {sent_to}: it stays confirmation_pending until the "
        f"contact clicks the link (valid {days} days)"
    )


@consent_group.command("report")
@click.option(
    "--source",
    type=click.Choice([s.value for s in Source]),
    help="Only opt-outs from this source.",
)
@click.option("--since", metavar="D", help="Opted out on or after this date (or ISO time).")
@click.option(
    "--until", metavar="D", help="Opted out on or before this date (or before this time)."
)
@click.option("--prefix", metavar="P", help="Addresses starting with this (any letter case).")
@click.option(
    "--kind",
    metavar="KIND",
    help="Instead, the addresses that refused this kind of email (a name or a tab label).",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (for a spreadsheet).")
@json_option
@pass_app
@fails_cleanly
def consent_report(
    app: App,
    source: str | None,
    since: str | None,
    until: str | None,
    prefix: str | None,
    kind: str | None,
    as_csv: bool,
    as_json: bool,
) -> None:
    """List the opted-out addresses, for auditors: why and since when.

    With --kind, the addresses that refused that kind of email (on their settings
    page), whose other emails still go. Dates without a time are whole days in UTC:
    --until 2026-11-30 includes that day.
    """
    if as_csv and as_json:
        raise UsageError("--csv and --json exclude each other: choose one")
    utc = ZoneInfo("UTC")
    start = _instant(since, utc, "--since")
    end = _instant(until, utc, "--until")
    if end is not None and until is not None and _is_date(until):
        end += timedelta(days=1)  # the whole day
    if start is not None and end is not None and end <= start:
        raise UsageError(f"--until {until} is before --since {since}: swap them")
    rows = registry.report(
        app.database,
        app.settings,
        source=Source(source) if source else None,
        since=start,
        until=end,
        prefix=prefix,
        kind=_kind_name(app, kind) if kind else None,
    )
    if as_json:
        click.echo(views.to_json(rows))
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        columns = ["address", "source", "method", "occurred_at", "actor", "detail", "kind"]
        writer.writerow(columns)
        for row in rows:
            writer.writerow([views.csv_cell(row[c]) for c in columns])
    else:
        click.echo(views.report_text(rows, _kind_name(app, kind) if kind else None))


def _kind_name(app: App, name_or_tab: str) -> str:
    """Return the kind `name_or_tab` names in any agency (a name, or a tab label)."""
    for agency in app.settings.agency:
        found = agency.kind_name(name_or_tab)
        if found is not None:
            return found
    known = sorted({k for a in app.settings.agency for k in a.definitions()})
    raise UsageError(f"unknown kind {name_or_tab!r}: known kinds are {', '.join(known)}")


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


@cli.group("bounces")
def bounces_group() -> None:
    """Read bounce reports and complaints."""


@bounces_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
@pass_app
@fails_cleanly
def bounces_import(app: App, path: Path, as_json: bool) -> None:
    """Opt out addresses that bounced for good or complained (an .eml, an mbox, a Maildir).

    Temporary failures are counted, not acted on; a message that cannot be read, or
    that names no valid address, is listed (one line each) and skipped. Every message
    is read: the exit code is 0 when some were skipped (a bounce mailbox always holds
    some junk); 1 only when the path itself cannot be read.
    """
    database = app.database
    summary: dict[str, Any] = {"reports": 0, "opted_out": [], "temporary": 0, "skipped": []}
    from .. import bounces  # the bounce parsers are loaded by this command only

    for where, found in bounces.read_path(path):
        if isinstance(found, bounces.Unreadable):
            summary["skipped"].append({"where": found.where, "reason": found.reason})
            if not as_json:
                click.echo(f"skipped {found.where}: {found.reason}")
            continue
        summary["reports"] += 1
        for finding in found:
            if finding.outcome is bounces.Outcome.DELAYED:
                summary["temporary"] += 1
                continue
            method = "complaint" if finding.outcome is bounces.Outcome.COMPLAINT else "bounce"
            try:
                decision = registry.record_bounce(
                    database,
                    finding.address,
                    complaint=finding.outcome is bounces.Outcome.COMPLAINT,
                    diagnostic=finding.diagnostic + (f" (in {where})" if where else ""),
                    arrived_at=finding.arrived_at,
                )
            except InvalidAddress as error:
                # Nothing was ever sent there: nothing to opt out. The rest still counts.
                reason = f"{error}: nothing to opt out, skipped"
                summary["skipped"].append(
                    {"where": where, "reason": reason, "address": finding.address}
                )
                if not as_json:
                    click.echo(f"skipped {where}: {reason}")
                continue
            summary["opted_out"].append(
                {
                    "address": finding.address,
                    "method": method,
                    "status": finding.status,
                    "changed": decision.changes,
                    "diagnostic": finding.diagnostic,
                }
            )
            if not as_json:
                state = "opted out" if decision.changes else "already opted out"
                click.echo(f"{finding.address}: {state} (system, {method}): {finding.diagnostic}")
    if as_json:
        click.echo(views.to_json(summary))
        return
    click.echo(
        f"{summary['reports']} reports read: {len(summary['opted_out'])} permanent failures or "
        f"complaints, {summary['temporary']} temporary failures counted (nothing done), "
        f"{len(summary['skipped'])} messages skipped (not readable as reports, or no valid address)"
    )
