"""The pages contacts reach from the links in emails: confirm an address, unsubscribe.

Routes (a token is the signed capability of a link, see `tokens.py`):

- `GET /confirm/{token}`, `GET /unsubscribe/{token}`: a page naming the address with
  one button. GET never changes anything: mail scanners follow links.
- `POST /confirm/{token}`: confirm (200); link already used 409, expired 410 (with a
  button asking for a new email), not authentic 400.
- `POST /unsubscribe/{token}`: opt out (200), then offer a new confirmation email. The
  RFC 8058 one-click body `List-Unsubscribe=One-Click` (form-encoded or multipart, no
  cookie, no form field) opts out at once and answers 200 with a line of text.
- `POST /confirm/{token}/renew`, `POST /unsubscribe/{token}/renew`: send a new
  confirmation email, from an authentic link even when expired (200); asked again too
  soon 429; the mail server refusing it 503.

No cookies, so no ambient authority: a POST acts on the strength of its token. A
browser POST from another site (Sec-Fetch-Site, or an Origin that is not ours) is
refused (403) unless it carries its form's field, derived from the token by a keyed
HMAC; a field that is sent must be right. The one-click body needs neither. Results
are rendered in place (no redirect, so no open redirect). Every response carries a
strict Content-Security-Policy and the other headers of `SECURITY_HEADERS`; request
logs name the route, never the path (tokens are capabilities).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import registry
from .config import Settings
from .consent import CONTACT_RESEND_INTERVAL, ConsentReason, Source
from .errors import DatabaseError, NotFoundError
from .logs import EventLog
from .mailer import DeliveryError, mailer_for
from .pages import FORM_FIELD, LANGUAGES, Form, FormSigner, Pages, Reader, accepted_language
from .registry import ConsentRefused, UsedLink
from .settings_page import SettingsPage
from .store import Database
from .templates import language_of
from .tokens import ExpiredLink, InvalidLink, LinkSigner, Purpose

#: The field of the RFC 8058 one-click POST, and its only value.
ONE_CLICK = ("List-Unsubscribe", "One-Click")
#: A form body is a few hundred bytes; anything much larger is refused (413).
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

P = ParamSpec("P")
T = TypeVar("T")


def create_app(settings: Settings, database: Database, *, log: EventLog | None = None) -> Starlette:
    """Return the ASGI application of the link pages (no I/O until it serves).

    Raises `ConfigError` when REMINDERS_WEB__SECRET_KEY is missing or too short.
    """
    site = _Site(settings, database)
    routes = [
        Route("/style.css", site.stylesheet, methods=["GET"]),
        Route("/confirm/{token}", site.show_confirm, methods=["GET"]),
        Route("/confirm/{token}", site.confirm, methods=["POST"]),
        Route("/confirm/{token}/renew", site.renew_confirm, methods=["POST"]),
        Route("/unsubscribe/{token}", site.show_unsubscribe, methods=["GET"]),
        Route("/unsubscribe/{token}", site.unsubscribe, methods=["POST"]),
        Route("/unsubscribe/{token}/renew", site.renew_unsubscribe, methods=["POST"]),
        *SettingsPage(site).routes(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: site.http_problem,
            DatabaseError: site.unavailable,
            Exception: site.failure,
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


class _Site:
    """The endpoints, and what they share: settings, database, signer, pages."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        secret = settings.link_secret()
        self.signer = LinkSigner(secret, database.clock)
        self.forms = FormSigner(secret)
        self.pages = Pages()

    # -- confirm -------------------------------------------------------------------------

    async def show_confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            address = await _call(self._address, Purpose.CONFIRM, token)
        except ExpiredLink:
            return await self._expired(request, Purpose.CONFIRM, token)
        except InvalidLink:
            return self._invalid(request)
        form = self._form(request, "confirm", token)
        return await self._page(request, "confirm", address, form=form)

    async def confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        if not self._may_post(request, await _read_form(request), "confirm", token):
            return self._forbidden(request)
        try:
            found = await _call(registry.confirm, self.database, self.settings, self.signer, token)
        except UsedLink:
            return await self._used(request, token)
        except ExpiredLink:
            return await self._expired(request, Purpose.CONFIRM, token)
        except (InvalidLink, NotFoundError):
            return self._invalid(request)
        return await self._page(request, "confirmed", found.address)

    async def _used(self, request: Request, token: str) -> Response:
        """409: the link is authentic and in date, but its one use was taken."""
        address = await _call(self._address, Purpose.CONFIRM, token)
        found = await _call(registry.status, self.database, self.settings, address)
        return await self._page(
            request,
            "used",
            address,
            status_code=409,
            already_ok=found.consent is ConsentReason.OK,
            form=self._form(request, "confirm/renew", token),
        )

    async def renew_confirm(self, request: Request) -> Response:
        return await self._renew(request, Purpose.CONFIRM)

    # -- unsubscribe ---------------------------------------------------------------------

    async def show_unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            address = await _call(self._address, Purpose.UNSUBSCRIBE, token)
        except ExpiredLink:
            return await self._expired(request, Purpose.UNSUBSCRIBE, token)
        except InvalidLink:
            return self._invalid(request)
        form = self._form(request, "unsubscribe", token)
        return await self._page(request, "unsubscribe", address, form=form)

    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        fields = await _read_form(request)
        one_click = fields.get(ONE_CLICK[0]) == ONE_CLICK[1]
        if not one_click and not self._may_post(request, fields, "unsubscribe", token):
            return self._forbidden(request)
        try:
            address = await _call(
                registry.unsubscribe,
                self.database,
                self.settings,
                self.signer,
                token,
                method="one-click" if one_click else "web form",
            )
        except ExpiredLink:
            return await self._expired(request, Purpose.UNSUBSCRIBE, token)
        except InvalidLink:
            return self._invalid(request)
        if one_click:
            # RFC 8058: the mail client only reads the status; no redirect, no page.
            reader = await _call(self._reader, address)
            return PlainTextResponse(self.pages.text("one_click", reader, address=address))
        form = self._form(request, "unsubscribe/renew", token)
        return await self._page(request, "unsubscribed", address, form=form)

    async def renew_unsubscribe(self, request: Request) -> Response:
        return await self._renew(request, Purpose.UNSUBSCRIBE)

    # -- a new confirmation email, asked for by the contact ------------------------------

    async def _renew(self, request: Request, purpose: Purpose) -> Response:
        token = request.path_params["token"]
        if not self._may_post(request, await _read_form(request), f"{purpose}/renew", token):
            return self._forbidden(request)
        try:
            address = await _call(self._address, purpose, token, expired_ok=True)
            await _call(
                registry.send_confirmation,
                self.database,
                self.settings,
                mailer_for(self.settings),
                address,
                by=Source.CONTACT,
                actor="contact",
                method="web form",
            )
        except (InvalidLink, NotFoundError):
            return self._invalid(request)
        except ConsentRefused:
            wait_s = int(CONTACT_RESEND_INTERVAL.total_seconds())
            return await self._page(
                request,
                "too_soon",
                address,
                status_code=429,
                headers={"retry-after": str(wait_s)},
                wait_minutes=wait_s // 60,
            )
        except DeliveryError:
            return self._problem(request, 503)
        return await self._page(
            request,
            "renewed",
            address,
            valid_days=self.settings.consent.confirmation_valid_days,
        )

    # -- shared pages --------------------------------------------------------------------

    async def _expired(self, request: Request, purpose: Purpose, token: str) -> Response:
        """410: an authentic link past its validity; a confirmation link offers a new one."""
        address = await _call(self._address, purpose, token, expired_ok=True)
        if purpose is Purpose.CONFIRM:
            form: Form | None = self._form(request, "confirm/renew", token)
            valid_days = self.settings.consent.confirmation_valid_days
        else:
            form, valid_days = None, self.settings.web.unsubscribe_valid_days
        return await self._page(
            request,
            "expired",
            address,
            status_code=410,
            purpose=str(purpose),
            form=form,
            valid_days=valid_days,
        )

    def _invalid(self, request: Request) -> Response:
        """400: not a link we signed (cut, altered, or for another page): tell nothing more."""
        return self._html(request, "invalid", self._anonymous(request), status_code=400)

    def _forbidden(self, request: Request) -> Response:
        return self._problem(request, 403)

    def _problem(
        self, request: Request, status_code: int, headers: Mapping[str, str] | None = None
    ) -> Response:
        return self._html(
            request,
            "problem",
            self._anonymous(request),
            status_code=status_code,
            headers=headers,
            status=status_code,
        )

    async def http_problem(self, request: Request, error: Exception) -> Response:
        """Unknown paths (404), methods (405), unreadable or oversized bodies (400, 413)."""
        assert isinstance(error, HTTPException)
        return self._problem(request, error.status_code, error.headers)

    async def unavailable(self, request: Request, error: Exception) -> Response:
        return self._problem(request, 503)

    def failure(self, request: Request, error: Exception) -> Response:
        """500: a bug. Outside `_Guard`, so it logs itself and sets the headers itself."""
        log = request.scope.get("reminders.log")
        if isinstance(log, EventLog):
            log.error(
                "web.failed",
                route=_route_of(request.scope),
                error=repr(error),
                traceback="".join(traceback.format_exception(error)),
            )
        response = self._problem(request, 500)
        response.headers.update(SECURITY_HEADERS)
        return response

    async def stylesheet(self, request: Request) -> Response:
        css = await run_in_threadpool(self.pages.stylesheet)
        return Response(css, media_type="text/css")

    # -- helpers -------------------------------------------------------------------------

    def _address(self, purpose: Purpose, token: str, *, expired_ok: bool = False) -> str:
        return registry.address_of_link(
            self.settings, self.signer, purpose, token, expired_ok=expired_ok
        )

    def _reader(self, address: str) -> Reader:
        """Return the language and agency name of the pages about `address`."""
        language = registry.page_language(self.database, self.settings, address)
        try:
            contacts = registry.status(self.database, self.settings, address).contacts
        except NotFoundError:
            contacts = []
        names = {agency.code: agency.name for agency in self.settings.agency}
        agency = next((names[code] for _name, code in contacts if code in names), None)
        return Reader(language=language, agency=agency)

    def _anonymous(self, request: Request) -> Reader:
        """Return the reader of a page naming no address: the browser's language, if ours."""
        agencies = [language_of(agency.locale) for agency in self.settings.agency]
        fallback = next((lang for lang in agencies if lang in LANGUAGES), LANGUAGES[0])
        preferred = accepted_language(request.headers.get("accept-language", ""))
        return Reader(language=preferred or fallback)

    def _form(self, request: Request, action: str, token: str) -> Form:
        """Return the form POSTing to `/{action}` of `token` (e.g. `confirm/renew`)."""
        return self.forms.form(request.scope.get("root_path", ""), action, token)

    def _may_post(self, request: Request, fields: FormData, action: str, token: str) -> bool:
        """Tell whether a POST may act: not a forgery by another site's page.

        There are no cookies: a POST carries no authority but the link's token, so the
        one thing to stop is a page elsewhere making a browser post to us. Browsers say
        where a request comes from (Sec-Fetch-Site, Origin); a POST from another site is
        refused unless it carries this form's own field. The field, when sent, must be
        the right one. A client without a browser (a script holding the link) may post
        without it: it could do nothing with the field it cannot already do.
        """
        field = fields.get(FORM_FIELD)
        if field is not None:
            return self.forms.is_authentic(field, action, token)
        return not self._from_elsewhere(request)

    def _from_elsewhere(self, request: Request) -> bool:
        site = request.headers.get("sec-fetch-site")
        if site is not None:
            return site not in ("same-origin", "none")
        origin = request.headers.get("origin")
        if origin is None:
            return False
        own = {_origin_of(self.settings.web.base_url), _origin_of(str(request.base_url))}
        return origin.rstrip("/") not in own

    async def _page(
        self,
        request: Request,
        name: str,
        address: str,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> Response:
        reader = await _call(self._reader, address)
        context["address"] = address
        return self._html(
            request, name, reader, status_code=status_code, headers=headers, **context
        )

    def _html(
        self,
        request: Request,
        name: str,
        reader: Reader,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> Response:
        root = request.scope.get("root_path", "")
        html = self.pages.html(name, reader, root=root, **context)
        return HTMLResponse(html, status_code=status_code, headers=headers)


async def _call(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking work (the database, the mail server) off the event loop."""
    return await run_in_threadpool(function, *args, **kwargs)


async def _read_form(request: Request) -> FormData:
    """Read a small form body (a few fields, no file): enough for ours and one-click."""
    return await request.form(max_files=0, max_fields=8, max_part_size=4096)


def _route_of(scope: Scope) -> str | None:
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
                route=_route_of(scope),
                status=status[0] if status else 500,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )


def _origin_of(url: str) -> str:
    """Return scheme://host[:port] of `url`, as browsers write the Origin header."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
