"""Sending: `send`, `send-all`, `resend` and `mark-sent`.

Each item's outcome is one line on stdout; when anything was not sent for a reason
other than consent, one line on stderr says so and what to do, and the exit code is 1.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import Any

import click

from .. import dispatch, service, views
from ..consent import ConsentReason
from ..delivery import Delivery, DispatchReport, Result
from ..dispatch import Dispatcher, mailer_for
from ..errors import ReminderError
from ..queue import Status
from .app import App, cli, fails_cleanly, pass_app


def _dispatcher(app: App, **options: Any) -> Dispatcher:
    return Dispatcher(
        app.database, app.settings, mailer_for(app.settings), actor=app.actor, **options
    )


def _print(delivery: Delivery) -> None:
    click.echo(views.delivery_text(delivery))


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
    report = _dispatcher(app, on_result=_print).send(list(item_ids))
    _finish(report, held_is_failure=True)


@cli.command("send-all")
@click.option("--agency", metavar="CODE", required=True, help="The agency whose tab to send.")
@click.option("--kind", metavar="KIND", required=True, help="The tab (kind) to send.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
@fails_cleanly
def send_all(app: App, agency: str, kind: str, yes: bool) -> None:
    """Approve and send every email of one tab; those without consent stay pending."""
    settings = app.settings
    tab = (
        settings.agency_by_code(agency)
        .kind(kind)
        .tab_label(settings.agency_by_code(agency).language)
    )
    with app.database.transaction() as store:
        items = store.items(agency=agency, kind=kind, statuses=[Status.PENDING, Status.APPROVED])
    now = app.clock.now()
    ready = sum(1 for i in items if service.consent_of(i, now, settings) is ConsentReason.OK)
    blocked = len(items) - ready
    without = f" ({blocked} without consent stay pending)" if blocked else ""
    if not ready:
        click.echo(f"nothing to send in {tab} ({kind}) of {agency}{without}")
        return
    if not yes:
        click.confirm(
            f"Send {ready} email{'s' if ready != 1 else ''} of {tab} ({kind}) for {agency}"
            f"{without}?",
            abort=True,
        )
    with ExitStack() as stack:
        on_result = _print
        if sys.stderr.isatty():
            bar = stack.enter_context(
                click.progressbar(length=len(items), label=f"sending {tab}", file=sys.stderr)
            )

            def on_result(delivery: Delivery) -> None:
                bar.update(1)
                if delivery.result is not Result.SENT:
                    _print(delivery)

        report = _dispatcher(app, on_result=on_result).send_tab(agency, kind)
    _finish(report, held_is_failure=False)


@cli.command()
@click.argument("item_ids", type=int, nargs=-1, required=True, metavar="ID...")
@pass_app
@fails_cleanly
def resend(app: App, item_ids: tuple[int, ...]) -> None:
    """Send again items whose delivery is unknown (or that failed), after checking."""
    report = _dispatcher(app, on_result=_print).resend(list(item_ids))
    _finish(report, held_is_failure=True)


@cli.command("mark-sent")
@click.argument("item_ids", type=int, nargs=-1, required=True, metavar="ID...")
@pass_app
@fails_cleanly
def mark_sent(app: App, item_ids: tuple[int, ...]) -> None:
    """Record that unknown items did arrive (checked by a person): nothing is sent."""
    for item_id in item_ids:
        item = dispatch.mark_sent(app.database, item_id, app.actor)
        click.echo(f"item {item.id} marked sent ({item.kind}, booking {item.booking_ref})")
