"""The application `reminders web` serves: routing, error handling, headers, request logs.

Two parts share it: the pages contacts reach from the links in emails (`links.py`,
HTML) and the API other systems call (`api.py`, JSON under `/api/v1`). Each request
calls the service for what it asks; the app turns what goes wrong into the answer
of its part: an HTML page for the contact pages, an RFC 9457 problem for the API.

Every response carries a strict Content-Security-Policy and the other headers of
`SECURITY_HEADERS`. Each request is logged by its route's template, never its path
(the link pages' tokens are capabilities, the API's paths hold addresses), with the
name of the API key that made it, never the key.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..errors import DatabaseError
from ..logs import EventLog
from ..store import Database
from . import problems
from .api import KEY_NAME, Api, is_api_path
from .links import LinkPages
from .settings import SettingsPage

#: A form or API body is a few hundred bytes; anything much larger is refused (413).
MAX_BODY_BYTES = 16 * 1024

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    # Tokens are in the URLs: never send them on to another site.
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def create_app(settings: Settings, database: Database, *, log: EventLog | None = None) -> Starlette:
    """Return the ASGI application of the link pages and the API (no I/O until it serves).

    Raises `ConfigError` when REMINDERS_WEB__SECRET_KEY is missing or too short.
    """
    links = LinkPages(settings, database)
    errors = _Errors(links)
    app = Starlette(
        routes=[*links.routes(), *SettingsPage(links).routes(), *Api(settings, database).routes()],
        exception_handlers={
            HTTPException: errors.http,
            DatabaseError: errors.unavailable,
            Exception: errors.failure,
        },
    )
    # The last added is the outermost: the guard also sees the body limit's 413.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY_BYTES)
    app.add_middleware(_Guard, log=log or EventLog(database.clock))
    return app


def server(app: Starlette, *, graceful_stop_s: int = 10) -> uvicorn.Server:
    """Return the uvicorn server of `app`: no access log, no Server header, our logging.

    Run it with `.run(sockets=[...])`; in the main thread SIGTERM and SIGINT stop it
    after the requests in flight (at most `graceful_stop_s`).
    """
    config = uvicorn.Config(
        app,
        # Its lines hold the paths, and so the tokens: `_Guard` logs the routes instead.
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=graceful_stop_s,
    )
    return _Server(config)


class _Server(uvicorn.Server):
    """Uvicorn's server, which exits 0 once stopped by a signal (as `reminders run` does).

    Uvicorn itself raises the signal again once stopped, which would end the
    process with the signal's status instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only
            return
        stopping = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stopping}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class _Errors:
    """What goes wrong outside an endpoint's own answers, answered in the request's part."""

    def __init__(self, links: LinkPages) -> None:
        self.links = links

    def _answer(self, request: Request, status: int, headers: dict[str, str] | None) -> Response:
        if is_api_path(request.url.path):
            return problems.of_status(status, headers).response()
        return self.links.problem(request, status, headers)

    async def http(self, request: Request, error: Exception) -> Response:
        """Unknown paths (404), methods (405), unreadable or oversized bodies (400, 413)."""
        assert isinstance(error, HTTPException)
        return self._answer(request, error.status_code, dict(error.headers or {}))

    async def unavailable(self, request: Request, error: Exception) -> Response:
        return self._answer(request, 503, None)

    def failure(self, request: Request, error: Exception) -> Response:
        """500: a bug. Outside `_Guard`, so it logs itself and sets the headers itself."""
        log = request.scope.get("reminders.log")
        if isinstance(log, EventLog):
            log.error(
                "web.failed",
                route=route_of(request.scope),
                error=repr(error),
                traceback="".join(traceback.format_exception(error)),
            )
        response = self._answer(request, 500, None)
        response.headers.update(SECURITY_HEADERS)
        return response


def route_of(scope: Scope) -> str | None:
    """Return the path template of the matched route (`/confirm/{token}`), never the path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


class _Guard:
    """Adds the security headers to every response and logs each request by its route."""

    def __init__(self, app: ASGIApp, log: EventLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["reminders.log"] = self.log
        started = time.perf_counter()
        status: list[int] = []

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                names = {name.encode() for name in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_secured)
        finally:
            self.log.info(
                "web.request",
                method=scope["method"],
                route=route_of(scope),
                key=scope.get(KEY_NAME),
                status=status[0] if status else 500,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
