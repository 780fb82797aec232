"""What staff do each morning: plan, list, read, edit and discard emails."""

from __future__ import annotations

import shutil
from datetime import date

import click

from .. import editing, sending, service, views
from ..errors import ReminderError, TransitionError, UsageError
from ..mailer import mailer_for
from ..queue import Status
from .app import App, cli, fails_cleanly, json_option, parse_day, pass_app


@cli.command()
@click.option(
    "--date",
    "day",
    callback=parse_day,
    metavar="YYYY-MM-DD",
    help="Plan as if it were this local day (default: today in each agency's zone).",
)
@click.option("--agency", metavar="CODE", help="Only this agency.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@json_option
@pass_app
@fails_cleanly
def plan(app: App, day: date | None, agency: str | None, dry_run: bool, as_json: bool) -> None:
    """Run one planning pass: queue, withdraw, expire, and report missed windows."""
    agencies = app.settings.agencies(agency)
    reports = service.plan_agencies(
        app.database, app.settings, agencies, today=day, dry_run=dry_run
    )
    if as_json:
        click.echo(views.to_json([views.plan_object(r, dry_run) for r in reports]))
    else:
        for report in reports:
            click.echo(views.plan_text(report, dry_run))
    errors = [e for r in reports for e in r.errors]
    if errors:
        skipped = [
            f"{r.agency}: {r.skipped} email(s) skipped because of the template error(s) above; "
            "the others were planned: fix the templates, then run plan again"
            for r in reports
            if r.skipped
        ]
        raise ReminderError("\n".join([*dict.fromkeys(errors), *skipped]))


STATUS_CHOICES = [s.value for s in Status] + ["all"]


@cli.command()
@click.option("--agency", metavar="CODE", help="Only this agency.")
@click.option("--kind", metavar="KIND", help="Only this kind: its name or its tab label.")
@click.option(
    "--status",
    type=click.Choice(STATUS_CHOICES),
    default="pending",
    show_default=True,
    help="Which items; 'all' lists every status.",
)
@json_option
@pass_app
@fails_cleanly
def queue(app: App, agency: str | None, kind: str | None, status: str, as_json: bool) -> None:
    """List the queue, grouped by agency and tab, with each contact's consent."""
    settings = app.settings
    if agency:
        settings.agency_by_code(agency)
    if kind:
        kind = settings.kind_name(kind, agency)
    statuses = None if status == "all" else [Status(status)]
    with app.database.transaction() as store:
        items = store.items(agency=agency, kind=kind, statuses=statuses)
    now = app.clock.now()
    objects = [
        views.item_object(
            i, service.consent_of(i, now, settings), views.tab_label(settings, i.agency, i.kind)
        )
        for i in items
    ]
    if as_json:
        click.echo(views.to_json(objects))
        return
    # A pipe or a file gets whole subjects; a terminal, as much as fits on a line.
    width = shutil.get_terminal_size(fallback=(0, 0)).columns
    click.echo(views.queue_text(objects, settings, status, width))


@cli.command()
@click.option(
    "--email",
    is_flag=True,
    help="Also email each agency's summary to its summary_to address.",
)
@json_option
@pass_app
@fails_cleanly
def today(app: App, email: bool, as_json: bool) -> None:
    """Summarise the day: how many emails wait in each agency's tabs."""
    summary = service.today_summary(app.database, app.settings)
    if as_json:
        click.echo(views.to_json(summary))
    else:
        click.echo(views.today_text(summary, app.settings))
    if email:
        agencies = [a for a in app.settings.agency if a.summary_to]
        if not agencies:
            raise UsageError(
                'no agency has a summary_to address: add summary_to = "name@example.com" '
                "to an [[agency]] table"
            )
        for agency in agencies:
            sent_to = sending.email_summary(
                app.database, app.settings, agency, mailer_for(app.settings), again=True
            )
            click.echo(f"summary of {agency.code} emailed to {sent_to}", err=as_json)


@cli.command()
@click.argument("item_id", type=int, metavar="ID")
@click.option("--html", is_flag=True, help="Print the HTML part instead of the text part.")
@json_option
@pass_app
@fails_cleanly
def show(app: App, item_id: int, html: bool, as_json: bool) -> None:
    """Show one email as rendered, headers included."""
    with app.database.transaction() as store:
        item = store.item(item_id)
        deliveries = store.deliveries(item_id)
    settings = app.settings
    consent = service.consent_of(item, app.clock.now(), settings)
    sender, reply_to = "-", None
    try:
        agency = settings.agency_by_code(item.agency)
        sender, reply_to = agency.sender, agency.reply_to
    except UsageError:
        pass
    tab = views.tab_label(settings, item.agency, item.kind)
    if as_json:
        obj = views.item_object(item, consent, tab)
        obj.update(
            {
                "from": sender,
                "reply_to": reply_to,
                "text": item.text,
                "html": item.html,
                "deliveries": deliveries,
            }
        )
        click.echo(views.to_json(obj))
        return
    click.echo(views.show_text(item, consent, tab, sender, reply_to, html=html), nl=False)
    if deliveries:
        click.echo("\n" + views.deliveries_text(deliveries, settings.agency_zone(item.agency)))


@cli.command()
@click.argument("item_id", type=int, metavar="ID")
@pass_app
@fails_cleanly
def edit(app: App, item_id: int) -> None:
    """Open an email's subject and body in $EDITOR and save it as edited."""
    with app.database.transaction() as store:
        item = store.item(item_id)
    if item.status is not Status.PENDING:
        raise TransitionError(
            f"item {item_id} is {item.status}: only pending items can be edited "
            "(see 'reminders queue')"
        )
    original = editing.edit_document(item)
    try:
        edited = click.edit(original, extension=".txt", require_save=True)
    except click.UsageError as error:
        raise UsageError(f"cannot start the editor: {error.message}: set $EDITOR") from None
    if edited is None or edited == original:
        click.echo(f"item {item_id} unchanged")
        return
    saved = service.save_edit(
        app.database,
        app.settings,
        item_id,
        editing.parse_edit(edited, item),
        actor=app.actor,
        read_at=item.updated_at,
    )
    click.echo(f"item {saved.id} saved as edited: {saved.subject}")


@cli.command()
@click.argument("item_ids", type=int, nargs=-1, required=True, metavar="ID...")
@pass_app
@fails_cleanly
def discard(app: App, item_ids: tuple[int, ...]) -> None:
    """Discard items: they leave the list and are never sent."""
    items = service.discard(app.database, list(item_ids), app.actor)
    for item in items:
        click.echo(f"item {item.id} discarded ({item.kind}, booking {item.booking_ref})")


@cli.command()
@click.argument("item_ids", type=int, nargs=-1, required=True, metavar="ID...")
@pass_app
@fails_cleanly
def restore(app: App, item_ids: tuple[int, ...]) -> None:
    """Bring discarded items back to pending, while their window is open."""
    items = service.restore(app.database, app.settings, list(item_ids), app.actor)
    for item in items:
        click.echo(
            f"item {item.id} restored to pending ({item.kind}, booking {item.booking_ref}, "
            f"listed until {item.visible_until.isoformat()})"
        )
