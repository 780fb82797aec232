"""Setting up: the database schema, the configuration check, CSV imports."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .. import service, views
from ..database import create_engine, describe, upgrade
from ..dkim import alignments, signer_for
from ..errors import ConfigError, UsageError
from ..imports import Entity, import_file
from .app import App, cli, fails_cleanly, json_option, pass_app

#: A file smaller than this (bytes, a few thousand rows) is imported without a progress bar.
_PROGRESS_MIN_BYTES = 200_000


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
    """Validate the TOML file, the templates and the DKIM key; print the agencies and their
    delays, and the DNS record of the DKIM key."""
    settings = app.settings
    problems = service.check_templates(settings)
    try:
        signer = signer_for(settings)
    except ConfigError as error:
        signer = None
        problems.insert(0, str(error))
    aligned = alignments(signer, settings.agency) if signer else []
    if as_json:
        objects = views.agencies_objects(settings)
        by_code = {a.agency: a.aligned for a in aligned}
        for entry in objects:
            # null: emails are not signed
            entry["dkim_aligned"] = by_code.get(entry["code"])
        click.echo(views.to_json(objects))
    else:
        click.echo(views.agencies_text(settings) or "no agency configured")
        if signer is not None:
            click.echo(views.dkim_text(signer, aligned))
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
        # On a terminal only: a log or a pipe gets no half-drawn bar on stderr.
        if total < _PROGRESS_MIN_BYTES or not sys.stderr.isatty():
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
    if report.invalid > len(report.skipped):
        click.echo(
            f"reminders: skipped {report.invalid - len(report.skipped)} more invalid rows",
            err=True,
        )
    click.echo(
        f"{entity}: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged"
        + (f", {report.invalid} invalid rows skipped" if report.invalid else "")
        + (
            f"; {report.consent_changes} consent flags recorded in the registry"
            if report.consent_changes
            else ""
        )
    )
