"""Looking ahead and asking why: `forecast` and `explain`."""

from __future__ import annotations

import click

from .. import views
from ..explain import explain as explain_booking
from ..forecast import MAX_FORECAST_DAYS
from ..forecast import forecast as forecast_tabs
from .app import App, cli, fails_cleanly, json_option, pass_app


@cli.command()
@click.option(
    "--days",
    type=click.IntRange(1, MAX_FORECAST_DAYS),
    default=14,
    show_default=True,
    metavar="N",
    help="How many days ahead, from tomorrow.",
)
@click.option("--agency", metavar="CODE", help="Only this agency.")
@json_option
@pass_app
@fails_cleanly
def forecast(app: App, days: int, agency: str | None, as_json: bool) -> None:
    """Count the emails each tab will hold on each of the next N days."""
    rows = forecast_tabs(app.database, app.settings, days=days, agency=agency)
    if as_json:
        click.echo(
            views.to_json(
                [
                    {
                        "agency": r.agency,
                        "kind": r.kind,
                        "tab": r.tab,
                        "day": r.day,
                        "count": r.count,
                    }
                    for r in rows
                ]
            )
        )
    else:
        click.echo(views.forecast_text(rows, app.settings))


@cli.command()
@click.argument("booking_ref", metavar="BOOKING_REF")
@json_option
@pass_app
@fails_cleanly
def explain(app: App, booking_ref: str, as_json: bool) -> None:
    """Explain, kind by kind, why a booking got (or will get, or not) an email."""
    found = explain_booking(app.database, app.settings, booking_ref)
    if as_json:
        click.echo(views.to_json([views.explanation_object(e) for e in found]))
    else:
        click.echo(views.explanation_text(booking_ref, found))
