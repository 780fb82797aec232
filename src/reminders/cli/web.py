"""`reminders web`: the pages contacts reach from the links in emails."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import click
import uvicorn

from ..errors import ReminderError
from ..logs import EventLog
from ..web import create_app, server_config
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
    settings = app.settings
    settings.link_secret()  # refuse to start without it, before touching anything
    log = EventLog(app.clock, json_lines=settings.daemon.log_format == "json")
    application = create_app(settings, app.database, log=log)
    base = urlsplit(settings.web.base_url)
    host = host or base.hostname or "127.0.0.1"
    port = port or base.port or (443 if base.scheme == "https" else 80)
    listener = _listen(host, port)
    log.capture_library_logs("uvicorn")
    config = server_config(application, graceful_stop_s=GRACEFUL_STOP_S)
    log.info("web.started", host=host, port=port, base_url=settings.web.base_url)
    try:
        _Server(config).run(sockets=[listener])
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


class _Server(uvicorn.Server):
    """Uvicorn's server, stopped by SIGTERM or SIGINT with exit code 0 (as `reminders run`).

    Uvicorn itself re-raises the signal once stopped, which would end the
    process with the signal's status instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
