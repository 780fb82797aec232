"""`reminders api-key ...`: the keys other systems use on the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from .. import api_keys, views
from ..api_keys import ApiKey
from .app import App, cli, fails_cleanly, json_option, pass_app


@cli.group("api-key")
def api_key_group() -> None:
    """Create, list and revoke the keys of the HTTP API (under /api/v1)."""


@api_key_group.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (name, key, ...).")
@pass_app
@fails_cleanly
def api_key_create(app: App, name: str, as_json: bool) -> None:
    """Create a key named NAME (e.g. crm-sync) and print it, once: it is stored hashed.

    The key is the first line printed. What it records is in the consent history
    under the actor 'api:NAME'.
    """
    created, key = api_keys.create(app.database, name, created_by=app.actor)
    if as_json:
        click.echo(views.to_json({**_key_object(created), "key": key}))
        return
    click.echo(key)
    click.echo(
        f"API key {created.name!r} created: the line above is the key, shown only now; give "
        "it to the system that calls the API (header 'Authorization: Bearer KEY').\n"
        f"Revoke it with 'reminders api-key revoke {created.name}'."
    )


@api_key_group.command("list")
@json_option
@pass_app
@fails_cleanly
def api_key_list(app: App, as_json: bool) -> None:
    """List the keys: name, created, last used, revoked (never the keys themselves)."""
    keys = api_keys.list_keys(app.database)
    if as_json:
        click.echo(views.to_json([_key_object(key) for key in keys]))
        return
    if not keys:
        click.echo("no API key: create one with 'reminders api-key create NAME'")
        return
    rows = [
        [
            key.name,
            _when(key.created_at),
            key.created_by,
            _when(key.last_used_at),
            _when(key.revoked_at) if key.revoked_at else "in use",
        ]
        for key in keys
    ]
    click.echo(views.table(["name", "created", "by", "last used", "revoked"], rows))


@api_key_group.command("revoke")
@click.argument("name")
@pass_app
@fails_cleanly
def api_key_revoke(app: App, name: str) -> None:
    """Revoke the key named NAME: from now on it gets 401 (its name is never reused)."""
    key, revoked = api_keys.revoke(app.database, name)
    if revoked:
        click.echo(f"API key {key.name!r} revoked")
    else:
        click.echo(f"API key {key.name!r} was already revoked on {_when(key.revoked_at)}")


def _key_object(key: ApiKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "actor": key.actor,
        "created_at": key.created_at,
        "created_by": key.created_by,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
        "revoked": key.is_revoked,
    }


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value else "-"
