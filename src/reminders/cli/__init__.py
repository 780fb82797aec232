"""The `reminders` command: parses arguments, calls the service, prints.

Exit codes: 0 success, 1 the command failed, 2 bad usage or invalid configuration;
every failure is one line per problem on stderr that says what to do. One module
per group of commands; importing them registers their commands on `cli`.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from . import admin, api_keys, consent, delivery, operations, outlook, review, screen, web
from .app import App, cli

__all__ = [
    "App",
    "admin",
    "api_keys",
    "cli",
    "consent",
    "delivery",
    "main",
    "operations",
    "outlook",
    "review",
    "screen",
    "web",
]


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
    """Run the CLI; usage errors become one line and exit code 2.

    The `reminders` command starts here through `reminders.__main__`, which sets the
    garbage collector for bulk work first.
    """
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
