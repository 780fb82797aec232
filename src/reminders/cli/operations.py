"""Operating the service: the `run` daemon and the `health` check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from .. import views
from ..config import config_path
from ..daemon import Daemon
from ..errors import ReminderError
from ..logs import EventLog
from ..queue import Status
from ..schedule import plan_is_late
from .app import App, cli, fails_cleanly, json_option, pass_app


@cli.command()
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines as key=value text or JSON objects (default: daemon.log_format).",
)
@pass_app
@fails_cleanly
def run(app: App, log_format: str | None) -> None:
    """Run the daemon: planning at each agency's plan_at, dispatch, maintenance.

    SIGTERM lets the email in flight finish and exits 0; SIGHUP reloads the
    configuration file (an invalid file is logged and the old one kept).
    """
    settings = app.settings
    log = EventLog(app.clock, json_lines=(log_format or settings.daemon.log_format) == "json")
    Daemon(config_path(app.config), settings, app.database, log).run()


@cli.command()
@json_option
@pass_app
@fails_cleanly
def health(app: App, as_json: bool) -> None:
    """Exit 0 when every agency's last planning pass is recent, 1 otherwise."""
    settings = app.settings
    now = app.clock.now()
    grace = timedelta(minutes=settings.daemon.health_grace_minutes)
    with app.database.transaction() as store:
        passes = store.last_passes()
        unknown = len(store.items(statuses=[Status.UNKNOWN]))
    rows: list[dict[str, Any]] = []
    for agency in settings.agency:
        last_day, last_run = passes.get(agency.code, (None, None))
        late = plan_is_late(last_day, now, agency.zone, agency.plan_time, grace)
        rows.append(
            {
                "agency": agency.code,
                "ok": not late,
                "last_planned_on": last_day,
                "last_run_at": last_run,
                "plan_at": agency.plan_at,
                "timezone": agency.timezone,
            }
        )
    if as_json:
        click.echo(views.to_json(rows))
    else:
        click.echo(views.health_text(rows, unknown))
    late_codes = [r["agency"] for r in rows if not r["ok"]]
    if late_codes:
        raise ReminderError(
            f"planning is late for {', '.join(late_codes)}: check that 'reminders run' is "
            "running and read its log (a template error stops a pass from being recorded)"
        )
