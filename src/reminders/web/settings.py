"""The contact's email settings page, reached from the link in every email's footer.

Routes (the token is the link's opaque capability, purpose `settings`):

- `GET /settings/{token}`: the address's status in words, a button asking for a
  confirmation email when it is not confirmed, one switch per kind of email its
  agencies send (a kind the agency marks required is listed without one), and
  "unsubscribe from everything". GET never changes anything.
- `POST /settings/{token}/kinds/{kind}` (`receive=true|false`): the contact's choice
  for one kind (200, the page again); a required kind 409, an unknown one 404.
- `POST /settings/{token}/unsubscribe`: opt out of everything (200, the page again).
- `POST /settings/{token}/renew`: send a confirmation email (the flow of the other
  pages' renew: 200, asked again too soon 429, the mail server refusing it 503).

Every change is a consent event (source `contact`, method `web form`). POSTs pass
the same check as the other pages' (`LinkPages._may_post`: no form from another site).
The endpoints only parse, call the service (`preferences`, `registry`) and render.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import preferences
from ..consent import Source
from ..errors import NotFoundError
from ..registry import ConsentRefused
from ..tokens import ExpiredLink, InvalidLink, Purpose

if TYPE_CHECKING:
    from .links import LinkPages

#: How a contact's changes on the page are recorded in the history.
METHOD = "web form"


class SettingsPage:
    """The endpoints of the settings page, on the site's shared helpers."""

    def __init__(self, site: LinkPages) -> None:
        self.site = site

    def routes(self) -> list[Route]:
        return [
            Route("/settings/{token}", self.show, methods=["GET"]),
            Route("/settings/{token}/kinds/{kind}", self.choose, methods=["POST"]),
            Route("/settings/{token}/unsubscribe", self.unsubscribe, methods=["POST"]),
            Route("/settings/{token}/renew", self.renew, methods=["POST"]),
        ]

    async def show(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            address = await self._address(token)
        except ExpiredLink:
            return await self.site._expired(request, Purpose.SETTINGS, token)
        except InvalidLink:
            return self.site._invalid(request)
        return await self._render(request, token, address)

    async def choose(self, request: Request) -> Response:
        token, kind = request.path_params["token"], request.path_params["kind"]
        fields = await _read_form(request)
        if not self.site._may_post(request, fields, f"settings/kinds/{kind}", token):
            return self.site._forbidden(request)
        receive = fields.get("receive")
        if receive not in ("true", "false"):
            return self.site.problem(request, 400)
        try:
            address = await self._address(token)
            await run_in_threadpool(
                preferences.choose_kind,
                self.site.database,
                self.site.settings,
                address,
                kind,
                receive == "true",
                source=Source.CONTACT,
                method=METHOD,
                actor="contact",
            )
        except ExpiredLink:
            return await self.site._expired(request, Purpose.SETTINGS, token)
        except InvalidLink:
            return self.site._invalid(request)
        except preferences.UnknownKind:
            return self.site.problem(request, 404)
        except ConsentRefused:
            return await self._render(request, token, address, notice="required", status_code=409)
        return await self._render(request, token, address, notice="saved")

    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        fields = await _read_form(request)
        if not self.site._may_post(request, fields, "settings/unsubscribe", token):
            return self.site._forbidden(request)
        try:
            address = await self._address(token)
            await run_in_threadpool(
                preferences.unsubscribe_everything, self.site.database, address, method=METHOD
            )
        except ExpiredLink:
            return await self.site._expired(request, Purpose.SETTINGS, token)
        except InvalidLink:
            return self.site._invalid(request)
        return await self._render(request, token, address, notice="unsubscribed")

    async def renew(self, request: Request) -> Response:
        return await self.site._renew(request, Purpose.SETTINGS)

    async def _address(self, token: str) -> str:
        return await run_in_threadpool(self.site._address, Purpose.SETTINGS, token)

    async def _render(
        self,
        request: Request,
        token: str,
        address: str,
        *,
        notice: str | None = None,
        status_code: int = 200,
    ) -> Response:
        """The page of `address`, as it stands now (after the change just made)."""
        site = self.site
        reader = await run_in_threadpool(site._reader, address)
        try:
            view = await run_in_threadpool(
                preferences.settings_of, site.database, site.settings, address, reader.language
            )
        except NotFoundError:
            return site._invalid(request)
        context: dict[str, Any] = {
            "view": view,
            "notice": notice,
            "kind_forms": {
                switch.kind: site._form(request, f"settings/kinds/{switch.kind}", token)
                for switch in view.switches
                if not switch.required
            },
            "renew": site._form(request, "settings/renew", token),
            "unsubscribe": site._form(request, "settings/unsubscribe", token),
        }
        return site._html(
            request, "settings", reader, status_code=status_code, address=view.address, **context
        )


async def _read_form(request: Request) -> Any:
    """Read a small form body (a few fields, no file), as the other pages do."""
    return await request.form(max_files=0, max_fields=8, max_part_size=4096)
