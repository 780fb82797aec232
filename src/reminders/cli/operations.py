"""Operating the service: the `run` daemon and the `health` check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from .. import views
from ..config import config_path
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
    from ..daemon import Daemon  # APScheduler is loaded by the daemon only

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
        unknown = store.count_by_agency(Status.UNKNOWN)
        stuck: dict[str, int] = {}
        for _id, code, _claimant, _lease in store.stuck(now):
            stuck[code] = stuck.get(code, 0) + 1
    rows: list[dict[str, Any]] = []
    for agency in settings.agency:
        last_day, last_run = passes.get(agency.code, (None, None))
        late = plan_is_late(last_day, now, agency.zone, agency.plan_time, grace)
        rows.append(
            {
                "agency": agency.code,
                "ok": not late and not unknown.get(agency.code) and not stuck.get(agency.code),
                "planning_late": late,
                "unknown": unknown.get(agency.code, 0),
                "stuck_sending": stuck.get(agency.code, 0),
                "last_planned_on": last_day,
                "last_run_at": last_run,
                "plan_at": agency.plan_at,
                "timezone": agency.timezone,
            }
        )
    if as_json:
        click.echo(views.to_json(rows))
    else:
        click.echo(views.health_text(rows))
    problems = []
    late_codes = [r["agency"] for r in rows if r["planning_late"]]
    if late_codes:
        problems.append(
            f"planning is late for {', '.join(late_codes)}: check that 'reminders run' is "
            "running and read its log (a template error stops a pass from being recorded)"
        )
    stuck_count = sum(stuck.values())
    if stuck_count:
        problems.append(
            f"{stuck_count} email{'s' if stuck_count != 1 else ''} stuck in sending past "
            "their lease: the process sending them stopped; the next send or daemon tick "
            "makes them unknown ('reminders queue --status sending')"
        )
    unknown_count = sum(unknown.values())
    if unknown_count:
        problems.append(
            f"{unknown_count} email{'s' if unknown_count != 1 else ''} in state unknown wait "
            "for a person: 'reminders queue --status unknown', then 'reminders resend ID' or "
            "'reminders mark-sent ID'"
        )
    if problems:
        raise ReminderError("\n".join(problems))
