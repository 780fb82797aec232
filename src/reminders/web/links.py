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
HMAC; a field that is sent must be right (`origin.may_post` decides). The one-click
body needs neither. Results are rendered in place (no redirect, so no open redirect).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import registry
from ..config import Settings
from ..consent import CONTACT_RESEND_INTERVAL, ConsentReason, Source
from ..errors import NotFoundError
from ..mailer import DeliveryError, mailer_for
from ..pages import FORM_FIELD, LANGUAGES, Form, FormSigner, Pages, Reader, accepted_language
from ..registry import ConsentRefused, UsedLink
from ..store import Database
from ..templates import language_of
from ..tokens import ExpiredLink, InvalidLink, LinkSigner, Purpose
from .blocking import call as _call
from .origin import may_post

#: The field of the RFC 8058 one-click POST, and its only value.
ONE_CLICK = ("List-Unsubscribe", "One-Click")


class LinkPages:
    """The endpoints, and what they share: settings, database, signer, pages."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        secret = settings.link_secret()
        self.signer = LinkSigner(secret, database.clock)
        self.forms = FormSigner(secret)
        self.pages = Pages()

    def routes(self) -> list[Route]:
        return [
            Route("/style.css", self.stylesheet, methods=["GET"]),
            Route("/confirm/{token}", self.show_confirm, methods=["GET"]),
            Route("/confirm/{token}", self.confirm, methods=["POST"]),
            Route("/confirm/{token}/renew", self.renew_confirm, methods=["POST"]),
            Route("/unsubscribe/{token}", self.show_unsubscribe, methods=["GET"]),
            Route("/unsubscribe/{token}", self.unsubscribe, methods=["POST"]),
            Route("/unsubscribe/{token}/renew", self.renew_unsubscribe, methods=["POST"]),
        ]

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
        facts = await _call(registry.page_facts, self.database, self.settings, address)
        return self._html(
            request,
            "used",
            Reader(language=facts.language, agency=facts.agency),
            status_code=409,
            address=address,
            already_ok=facts.consent is ConsentReason.OK,
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
            return self.problem(request, 503)
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
        return self.problem(request, 403)

    def problem(
        self, request: Request, status_code: int, headers: Mapping[str, str] | None = None
    ) -> Response:
        """The page of an HTTP status, in the browser's language (no address named)."""
        return self._html(
            request,
            "problem",
            self._anonymous(request),
            status_code=status_code,
            headers=headers,
            status=status_code,
        )

    async def stylesheet(self, request: Request) -> Response:
        css = await _call(self.pages.stylesheet)
        return Response(css, media_type="text/css")

    # -- helpers -------------------------------------------------------------------------

    def _address(self, purpose: Purpose, token: str, *, expired_ok: bool = False) -> str:
        return registry.address_of_link(
            self.settings, self.signer, purpose, token, expired_ok=expired_ok
        )

    def _reader(self, address: str) -> Reader:
        """Return the language and agency name of the pages about `address` (one read)."""
        facts = registry.page_facts(self.database, self.settings, address)
        return Reader(language=facts.language, agency=facts.agency)

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
        """Tell whether a POST may act: not a forgery by another site's page."""
        field = fields.get(FORM_FIELD)
        own = (self.settings.web.base_url, str(request.base_url))
        return may_post(
            request.headers,
            own,
            field_is_right=None if field is None else self.forms.is_authentic(field, action, token),
        )

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


async def _read_form(request: Request) -> FormData:
    """Read a small form body (a few fields, no file): enough for ours and one-click."""
    return await request.form(max_files=0, max_fields=8, max_part_size=4096)
