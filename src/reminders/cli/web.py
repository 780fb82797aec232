"""`reminders web`: the pages contacts reach from the links in emails."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import click

from ..dkim import signer_for
from ..errors import ReminderError
from ..logs import EventLog
from .app import App, cli, fails_cleanly, pass_app

#: Seconds a stopping server waits for the requests in flight.
GRACEFUL_STOP_S = 10


@cli.command()
@click.option("--host", help="Address to listen on (default: the host of web.base_url).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port to listen on (default: the port of web.base_url).",
)
@pass_app
@fails_cleanly
def web(app: App, host: str | None, port: int | None) -> None:
    """Serve the confirm and unsubscribe pages of the links in emails.

    Needs REMINDERS_WEB__SECRET_KEY (the key the links were signed with). Put it
    behind an HTTPS reverse proxy serving web.base_url. SIGTERM stops it cleanly.
    """
    from ..web import create_app, server  # only this command needs the web stack

    settings = app.settings
    settings.link_secret()  # refuse to start without it, before touching anything
    signer_for(settings)  # it sends confirmation emails: a DKIM key must sign
    log = EventLog(app.clock, json_lines=settings.daemon.log_format == "json")
    application = create_app(settings, app.database, log=log)
    base = urlsplit(settings.web.base_url)
    host = host or base.hostname or "127.0.0.1"
    port = port or base.port or (443 if base.scheme == "https" else 80)
    listener = _listen(host, port)
    log.capture_library_logs("uvicorn")
    log.info("web.started", host=host, port=port, base_url=settings.web.base_url)
    try:
        server(application, graceful_stop_s=GRACEFUL_STOP_S).run(sockets=[listener])
    finally:
        listener.close()
    log.info("web.stopped")


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket here, so a busy port is one clear line, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as error:
        raise ReminderError(
            f"cannot listen on {host}:{port}: {error.strerror or error}: give a free port "
            "with --port, or a local address with --host"
        ) from None
