"""`reminders review`: the terminal screen (the screen itself lives in `reminders.screen`)."""

from __future__ import annotations

import sys

import click

from ..errors import UsageError
from .app import App, cli, fails_cleanly, pass_app


@cli.command()
@click.option(
    "--agency", metavar="CODE", help="Open this agency (default: pick one when there are several)."
)
@pass_app
@fails_cleanly
def review(app: App, agency: str | None) -> None:
    """Review the day's emails on a screen: edit, send, send a tab, discard, restore."""
    settings = app.settings
    if agency is not None:
        settings.agency_by_code(agency)
    if not settings.agency:
        raise UsageError("no agency is configured: add an [[agency]] table to the config file")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "review needs a terminal: run it in one (over ssh, with 'ssh -t'); "
            "'reminders queue' and 'reminders today' print the same lists"
        )
    from ..screen import ReviewApp  # Textual is loaded by this command only

    ReviewApp(database=app.database, settings=settings, actor=app.actor, agency=agency).run()
