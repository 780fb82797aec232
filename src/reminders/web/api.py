"""The HTTP API under `/api/v1` (SPEC §7): JSON in and out, a Bearer key on every request.

Each endpoint reads the request (`api_input`), calls one function of the service
(`reminders.api`), which authenticates the key and acts, and writes the answer as
JSON; every refusal is an RFC 9457 problem (`problems`). What the routes take and
answer is described in `openapi.py`, served at `/api/v1/openapi.json`.

The key's name goes into the request's log line (`_Guard` in `app.py`), never the
key, and never the address: the line names the route's template, not the path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import api, api_keys, views
from ..api_keys import ApiKey, InvalidKey
from ..config import Settings
from ..consent import Action, Source
from ..errors import InvalidAddress, NotFoundError, UsageError
from ..mailer import DeliveryError, mailer_for
from ..registry import ConsentRefused
from ..store import Database
from . import api_input, openapi
from .blocking import call
from .problems import Problem, invalid, refused

PREFIX = "/api/v1"
#: The scope key under which an endpoint leaves the name of the key that called it.
KEY_NAME = "reminders.api_key"
#: Media types a JSON body may be sent as.
_JSON_TYPES = ("application/json",)

Endpoint = Callable[[Request], Awaitable[Response]]


def is_api_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def json_response(value: Any, status_code: int = 200) -> Response:
    return Response(views.to_json(value), status_code, media_type="application/json")


class Api:
    """The endpoints of the API, and what they share: settings and database."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database

    def routes(self) -> list[Route]:
        address = f"{PREFIX}/addresses/{{address}}"
        return [
            Route(f"{PREFIX}/openapi.json", self._guarded(self.openapi), methods=["GET"]),
            Route(address, self._guarded(self.show), methods=["GET"]),
            Route(f"{address}/opt-out", self._guarded(self.opt_out), methods=["POST"]),
            Route(f"{address}/opt-in", self._guarded(self.opt_in), methods=["POST"]),
            Route(f"{address}/confirmation", self._guarded(self.confirmation), methods=["POST"]),
            Route(f"{address}/kinds/{{kind}}", self._guarded(self.choose_kind), methods=["PUT"]),
            Route(f"{PREFIX}/opt-outs", self._guarded(self.opt_outs), methods=["GET"]),
        ]

    # -- endpoints ------------------------------------------------------------------------

    async def openapi(self, request: Request, key: str) -> Response:
        await call(api.authenticate, self.database, key, on_key=_on_key(request))
        return json_response(openapi.document(self.settings.web.base_url))

    async def show(self, request: Request, key: str) -> Response:
        address = _address(request)
        found = await call(
            api.status, self.database, self.settings, key, address, on_key=_on_key(request)
        )
        return json_response(views.consent_object(found))

    async def opt_out(self, request: Request, key: str) -> Response:
        address = _address(request)
        body = api_input.fields(
            await _body(request), required=("method",), optional=("at", "source")
        )
        source = (
            api_input.source(body["source"], api.OPT_OUT_SOURCES, "body.source")
            if "source" in body
            else Source.AGENT
        )
        return await self._record(request, key, address, Action.OPT_OUT, body, source)

    async def opt_in(self, request: Request, key: str) -> Response:
        address = _address(request)
        body = api_input.fields(await _body(request), required=("method",), optional=("at",))
        return await self._record(request, key, address, Action.OPT_IN, body, Source.AGENT)

    async def _record(
        self,
        request: Request,
        key: str,
        address: str,
        action: Action,
        body: dict[str, Any],
        source: Source,
    ) -> Response:
        method = api_input.method(body["method"])
        at = api_input.instant(body["at"], "body.at") if "at" in body else None
        try:
            found = await call(
                api.record,
                self.database,
                self.settings,
                key,
                address,
                action,
                source=source,
                method=method,
                occurred_at=at,
                on_key=_on_key(request),
            )
        except UsageError as error:  # a time in the future
            raise invalid("body.at", str(error)) from None
        return json_response(views.consent_object(found))

    async def choose_kind(self, request: Request, key: str) -> Response:
        address, kind = _address(request), request.path_params["kind"]
        body = api_input.fields(await _body(request), required=("receive", "method"))
        if not isinstance(body["receive"], bool):
            raise invalid("body.receive", "must be true or false")
        found = await call(
            api.choose_kind,
            self.database,
            self.settings,
            key,
            address,
            kind,
            body["receive"],
            method=api_input.method(body["method"]),
            on_key=_on_key(request),
        )
        return json_response(views.consent_object(found))

    async def confirmation(self, request: Request, key: str) -> Response:
        address = _address(request)
        api_input.fields(await _body(request))
        try:
            found = await call(
                api.send_confirmation,
                self.database,
                self.settings,
                mailer_for(self.settings),
                key,
                address,
                on_key=_on_key(request),
            )
        except DeliveryError:
            raise Problem(
                503, "the mail server did not take the email: nothing was recorded; try again later"
            ) from None
        return json_response(views.consent_object(found), 202)

    async def opt_outs(self, request: Request, key: str) -> Response:
        params = api_input.query(
            request.query_params.multi_items(),
            ("source", "since", "until", "prefix", "limit", "cursor"),
        )
        source = params.get("source")
        since, until = api_input.since_until(params.get("since"), params.get("until"))
        limit = api_input.limit(params.get("limit"))
        page = await call(
            api.opt_outs,
            self.database,
            self.settings,
            key,
            source=(api_input.source(source, list(Source), "query.source") if source else None),
            since=since,
            until=until,
            prefix=params.get("prefix") or None,
            after=api_input.after(params.get("cursor")),
            limit=limit,
            on_key=_on_key(request),
        )
        next_cursor = api_input.cursor(page.last_key) if page.last_key else None
        return json_response({"items": page.items, "next": next_cursor})

    # -- shared ---------------------------------------------------------------------------

    def _guarded(self, endpoint: Callable[[Request, str], Awaitable[Response]]) -> Endpoint:
        """Wrap an endpoint: the key from the header, the service's refusals as problems."""

        async def guarded(request: Request) -> Response:
            try:
                key = api_keys.bearer_key(request.headers.get("authorization"))
                response = await endpoint(request, key)
            except Problem as problem:
                return problem.response()
            except InvalidKey as error:
                return _unauthorized(str(error), key_given="authorization" in request.headers)
            except ConsentRefused as error:
                return refused(str(error)).response()
            except InvalidAddress as error:
                return invalid("path.address", str(error)).response()
            except NotFoundError as error:
                return Problem(404, str(error)).response()
            return response

        return guarded


def _on_key(request: Request) -> api.OnKey:
    """Leave the name of the key that authenticated in the request's scope, for its log line."""

    def on_key(key: ApiKey) -> None:
        request.scope[KEY_NAME] = key.name

    return on_key


def _unauthorized(detail: str, *, key_given: bool) -> Response:
    # RFC 6750 §3: a request that sent a key hears why it failed, one that sent none does not.
    challenge = 'Bearer realm="reminders"'
    if key_given:
        challenge += ', error="invalid_token"'
    return Problem(401, detail, headers={"www-authenticate": challenge}).response()


def _address(request: Request) -> str:
    return api_input.address(request.path_params["address"])


async def _body(request: Request) -> dict[str, Any]:
    """Return the JSON object of the body (`{}` when empty); refuse another media type."""
    body = await request.body()
    if body.strip():
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in _JSON_TYPES and not media_type.endswith("+json"):
            raise Problem(415, "send the body as JSON, with 'Content-Type: application/json'")
    return api_input.json_object(body)
