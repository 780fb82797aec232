"""What every command shares: the lazily built application, error handling, options."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, wraps
from typing import Any, TypeVar

import click

from ..clock import Clock, SystemClock
from ..config import Settings, config_path, load_settings
from ..database import create_engine
from ..errors import ReminderError
from ..planning import EARLIEST_DAY, LATEST_DAY
from ..store import Database

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What every command needs, built lazily so `--help` needs no config file."""

    clock: Clock = field(default_factory=SystemClock)
    config: str | None = None

    @cached_property
    def settings(self) -> Settings:
        return load_settings(config_path(self.config))

    @property
    def actor(self) -> str:
        """Name the person running the command, for the records."""
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "staff"

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


def parse_day(_context: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date: write YYYY-MM-DD") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise click.BadParameter(
            f"{value!r} is out of range: give a day from {EARLIEST_DAY.isoformat()} "
            f"to {LATEST_DAY.isoformat()}"
        )
    return day
