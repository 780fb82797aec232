"""Sending: `send`, `send-all`, `resend` and `mark-sent`.

Each item's outcome is one line on stdout; when anything was not sent for a reason
other than consent, one line on stderr says so and what to do, and the exit code is 1.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import ExitStack

import click

from .. import sending, views
from ..delivery import Delivery, DispatchReport, Result
from ..errors import ReminderError
from ..queue import QueueItem
from .app import App, cli, fails_cleanly, pass_app

#: A confirmation lists the recipients by name when there are at most this many.
_LIST_UP_TO = 10


def _run(app: App, on_result: Callable[[Delivery], None] | None = None) -> sending.Run:
    return sending.Run(
        database=app.database,
        settings=app.settings,
        actor=app.actor,
        on_result=on_result or _printer(app),
    )


#: Outcome lines reach stdout at least this often (seconds), not with a write each.
_FLUSH_EVERY_S = 0.5


def _printer(app: App) -> Callable[[Delivery], None]:
    """Print each item's outcome, its times in its agency's zone.

    A tab of thousands of emails would cost a system call (and a terminal check) an
    email with `click.echo`: the lines go to stdout's buffer and are flushed every
    `_FLUSH_EVERY_S`, and by whatever is printed next (the summary) or at exit.
    """
    flushed = [time.monotonic()]

    def print_delivery(delivery: Delivery) -> None:
        out = sys.stdout
        out.write(views.delivery_text(delivery, app.settings.agency_zone(delivery.agency)) + "\n")
        if time.monotonic() - flushed[0] >= _FLUSH_EVERY_S:
            out.flush()
            flushed[0] = time.monotonic()

    return print_delivery


def _finish(report: DispatchReport, *, held_is_failure: bool) -> None:
    """Print the summary; fail with one line unless everything asked for went out."""
    for item_id in report.recovered:
        click.echo(
            f"item {item_id} was left in sending by a process that stopped: it is now unknown "
            f"(see 'reminders show {item_id}')"
        )
    click.echo(views.dispatch_summary(report))
    problem = views.dispatch_problem(report, held_is_failure=held_is_failure)
    if problem:
        raise ReminderError(problem)


@cli.command()
@click.argument("item_ids", type=int, nargs=-1, required=True, metavar="ID...")
@pass_app
@fails_cleanly
def send(app: App, item_ids: tuple[int, ...]) -> None:
    """Approve and send these items now (consent is checked again first)."""
    report = sending.send(_run(app), list(item_ids))
    _finish(report, held_is_failure=True)


@cli.command("send-all")
@click.option("--agency", metavar="CODE", required=True, help="The agency whose tab to send.")
@click.option(
    "--kind", metavar="KIND", required=True, help="The tab to send: a kind or its tab label."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
@fails_cleanly
def send_all(app: App, agency: str, kind: str, yes: bool) -> None:
    """Approve and send every email of one tab; those without consent stay pending."""
    settings = app.settings
    agency_settings = settings.agency_by_code(agency)
    kind = agency_settings.kind(kind).name  # a tab label names its kind
    tab = agency_settings.kind(kind).tab_label(agency_settings.language)
    ready, blocked, edited, few = sending.tab_overview(
        app.database, settings, agency, kind, list_up_to=_LIST_UP_TO
    )
    without = f" ({blocked} without consent stay pending)" if blocked else ""
    if not ready:
        click.echo(f"nothing to send in {tab} ({kind}) of {agency}{without}")
        return
    if not yes:
        question, *details = _question(
            ready,
            edited,
            few,
            f"{tab} ({kind}) for {agency}{without}",
            agency_settings.max_per_minute,
        )
        for line in details:
            click.echo(line)
        click.confirm(question, abort=True)
    with ExitStack() as stack:
        print_delivery = _printer(app)
        on_result: Callable[[Delivery], None] = print_delivery
        if sys.stderr.isatty():
            bar = stack.enter_context(
                click.progressbar(
                    length=ready,
                    label=f"sending {tab}",
                    file=sys.stderr,
                    show_pos=True,
                    item_show_func=_rate(time.monotonic()),
                )
            )

            def on_result(delivery: Delivery) -> None:
                if delivery.result in (Result.SENT, Result.TAKEN):
                    bar.update(1, delivery)
                elif delivery.result is not Result.HELD:
                    print_delivery(delivery)

        report = sending.send_tab(_run(app, on_result), agency, kind)
    _finish(report, held_is_failure=False)


def _question(
    count: int, edited: int, few: list[QueueItem], what: str, per_minute: float | None
) -> list[str]:
    """The confirmation, then what it says more: to whom when few, how long if paced."""
    question = f"Send {count} email{'s' if count != 1 else ''} of {what}?"
    if edited:
        question = question[:-1] + f"; {edited} of them edited by staff?"
    lines = [question]
    lines += [
        f"  - {views.plain_cell(i.contact_name)} <{i.to}> (booking {i.booking_ref})"
        + (" (edited)" if i.edited else "")
        for i in few
    ]
    if per_minute:
        minutes = count / per_minute
        lines.append(
            f"  at max_per_minute = {per_minute:g} this takes about {minutes:.0f} minute"
            f"{'s' if round(minutes) != 1 else ''}"
        )
    return lines


def _rate(started: float) -> Callable[[Delivery | None], str]:
    """Show the sending rate beside the progress bar."""
    count = [0]

    def show(_delivery: Delivery | None) -> str:
        count[0] += 1
        elapsed = max(time.monotonic() - started, 1e-6)
        return f"{count[0] / elapsed:.0f}/s"

    return show


@cli.command()
@click.argument("item_ids", type=int, nargs=-1, required=True, metavar="ID...")
@pass_app
@fails_cleanly
def resend(app: App, item_ids: tuple[int, ...]) -> None:
    """Send again items whose delivery is unknown (or that failed), after checking."""
    report = sending.resend(_run(app), list(item_ids))
    _finish(report, held_is_failure=True)


@cli.command("mark-sent")
@click.argument("item_ids", type=int, nargs=-1, required=True, metavar="ID...")
@pass_app
@fails_cleanly
def mark_sent(app: App, item_ids: tuple[int, ...]) -> None:
    """Record that unknown items did arrive (checked by a person): nothing is sent."""
    for item_id in item_ids:
        item = sending.mark_sent(app.database, item_id, app.actor)
        click.echo(f"item {item.id} marked sent ({item.kind}, booking {item.booking_ref})")
