"""The `reminders` command: parses arguments, calls the service, prints.

Exit codes: 0 success, 1 the command failed, 2 bad usage or invalid configuration;
every failure is one line per problem on stderr that says what to do.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from . import editing, service, views
from .clock import Clock, SystemClock
from .config import Settings, config_path, load_settings
from .database import create_engine, describe, upgrade
from .errors import ConfigError, ReminderError, TransitionError, UsageError
from .imports import Entity, import_file
from .queue import Status
from .store import Database

F = TypeVar("F", bound=Callable[..., Any])

_PROGRESS_MIN_ROWS = 2000


@dataclass
class App:
    """What every command needs, built lazily so `--help` needs no config file."""

    clock: Clock = field(default_factory=SystemClock)
    config: str | None = None

    @cached_property
    def settings(self) -> Settings:
        return load_settings(config_path(self.config))

    @cached_property
    def database(self) -> Database:
        database = Database(create_engine(self.settings.database_url), self.clock)
        database.check()
        return database


def fails_cleanly(command: F) -> F:
    """Turn a `ReminderError` into its message on stderr and its exit code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ReminderError as error:
            for line in str(error).splitlines():
                click.echo(f"reminders: {line}", err=True)
            sys.exit(error.exit_code)

    return wrapper  # type: ignore[return-value]


json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    metavar="PATH",
    help="TOML file (default: $REMINDERS_CONFIG, then ./reminders.toml).",
)
@click.version_option(package_name="reminders")
@click.pass_context
def cli(context: click.Context, config: str | None) -> None:
    """Prepare reminder emails on each agency's retro-planning and let staff send them."""
    app = context.ensure_object(App)
    app.config = config


pass_app = click.make_pass_decorator(App)


@cli.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@pass_app
@fails_cleanly
def db_upgrade(app: App) -> None:
    """Create or migrate the schema to the current version."""
    engine = create_engine(app.settings.database_url)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    where = describe(app.settings.database_url)
    if before == after:
        click.echo(f"database {where} is up to date (revision {after})")
    else:
        click.echo(f"database {where} upgraded from {before or 'empty'} to revision {after}")


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@json_option
@pass_app
@fails_cleanly
def config_check(app: App, as_json: bool) -> None:
    """Validate the TOML file and the templates; print the agencies and their delays."""
    settings = app.settings
    problems = service.check_templates(settings)
    if as_json:
        click.echo(views.to_json(views.agencies_objects(settings)))
    else:
        click.echo(views.agencies_text(settings) or "no agency configured")
    if problems:
        raise ConfigError("\n".join(problems))
    if not settings.agency:
        raise UsageError("no agency configured: add an [[agency]] table (see config.example.toml)")


@cli.command("import")
@click.argument("entity", type=click.Choice([e.value for e in Entity]))
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows, list the others.")
@pass_app
@fails_cleanly
def import_command(app: App, entity: str, file: Path, skip_invalid: bool) -> None:
    """Upsert contacts or bookings from a CSV file, by ref; nothing unless every row is valid."""
    codes = [a.code for a in app.settings.agency]
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if total < _PROGRESS_MIN_ROWS:
            return
        if bar is None:
            bar = click.progressbar(length=total, label=f"importing {entity}", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        report = import_file(
            app.database,
            Entity(entity),
            file,
            codes,
            skip_invalid=skip_invalid,
            on_progress=progress,
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for problem in report.skipped:
        click.echo(
            f"reminders: skipped {file.name} line {problem.line}: {problem.message}", err=True
        )
    click.echo(
        f"{entity}: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged"
        + (f", {len(report.skipped)} invalid rows skipped" if report.skipped else "")
    )


def _parse_day(_context: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date: write YYYY-MM-DD") from None


@cli.command()
@click.option(
    "--date",
    "day",
    callback=_parse_day,
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
    reports = [
        service.plan_agency(app.database, app.settings, a, today=day, dry_run=dry_run)
        for a in agencies
    ]
    if as_json:
        click.echo(views.to_json([views.plan_object(r, dry_run) for r in reports]))
    else:
        for report in reports:
            click.echo(views.plan_text(report, dry_run))
    errors = [e for r in reports for e in r.errors]
    if errors:
        raise ReminderError("\n".join(dict.fromkeys(errors)))


STATUS_CHOICES = [s.value for s in Status] + ["all"]


@cli.command()
@click.option("--agency", metavar="CODE", help="Only this agency.")
@click.option("--kind", metavar="KIND", help="Only this kind (tab).")
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
        _check_kind(settings, agency, kind)
    statuses = None if status == "all" else [Status(status)]
    with app.database.transaction() as store:
        items = store.items(agency=agency, kind=kind, statuses=statuses)
    objects = [
        views.item_object(i, service.consent_of(i), views.tab_label(settings, i.agency, i.kind))
        for i in items
    ]
    if as_json:
        click.echo(views.to_json(objects))
        return
    click.echo(views.queue_text(objects, settings, status))


def _check_kind(settings: Settings, agency: str | None, kind: str) -> None:
    known = {k for a in settings.agencies(agency) for k in a.definitions()}
    if kind not in known:
        raise UsageError(f"unknown kind {kind!r}: known kinds are {', '.join(sorted(known))}")


@cli.command()
@json_option
@pass_app
@fails_cleanly
def today(app: App, as_json: bool) -> None:
    """Summarise the day: how many emails wait in each agency's tabs."""
    summary = service.today_summary(app.database, app.settings)
    if as_json:
        click.echo(views.to_json(summary))
    else:
        click.echo(views.today_text(summary, app.settings))


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
    settings = app.settings
    consent = service.consent_of(item)
    sender, reply_to = "-", None
    try:
        agency = settings.agency_by_code(item.agency)
        sender, reply_to = agency.sender, agency.reply_to
    except UsageError:
        pass
    tab = views.tab_label(settings, item.agency, item.kind)
    if as_json:
        obj = views.item_object(item, consent, tab)
        obj.update({"from": sender, "reply_to": reply_to, "text": item.text, "html": item.html})
        click.echo(views.to_json(obj))
        return
    click.echo(views.show_text(item, consent, tab, sender, reply_to, html=html), nl=False)


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
    saved = service.save_edit(app.database, item_id, editing.parse_edit(edited, item))
    click.echo(f"item {saved.id} saved as edited: {saved.subject}")


@cli.command()
@click.argument("item_ids", type=int, nargs=-1, required=True, metavar="ID...")
@pass_app
@fails_cleanly
def discard(app: App, item_ids: tuple[int, ...]) -> None:
    """Discard items: they leave the list and are never sent."""
    items = service.discard(app.database, list(item_ids))
    for item in items:
        click.echo(f"item {item.id} discarded ({item.kind}, booking {item.booking_ref})")


def _config_after_command(context: click.Context, _param: click.Parameter, value: Any) -> None:
    if value is not None:
        context.ensure_object(App).config = value


def _accept_config_everywhere(group: click.Group) -> None:
    """Let `--config PATH` also come after the command name (`reminders plan --config x`)."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_config_everywhere(command)
        else:
            command.params.append(
                click.Option(
                    ["--config"],
                    metavar="PATH",
                    expose_value=False,
                    is_eager=True,
                    callback=_config_after_command,
                    help="TOML file (as the option before the command).",
                )
            )


_accept_config_everywhere(cli)


def main() -> None:
    """Run the CLI; usage errors become one line and exit code 2."""
    try:
        cli.main(prog_name="reminders", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.format_message(), err=True)
        sys.exit(2)
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx else "reminders"
        message = " ".join(error.format_message().split())
        click.echo(f"reminders: {message} (see '{where} --help')", err=True)
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"reminders: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("reminders: aborted", err=True)
        sys.exit(1)
