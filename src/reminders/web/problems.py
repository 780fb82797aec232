"""Refusals of the HTTP API as RFC 9457 problems: `application/problem+json`.

Each has `type`, `title`, `status` and `detail` (what happened and what to do).
A refusal that HTTP's status says all about has the type `about:blank` and the
status's phrase as title; the API's own kinds of refusal have a type of their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from ..errors import ReminderError

MEDIA_TYPE = "application/problem+json"
#: Refused by the consent rules (SPEC §4): the detail is the rule's explanation.
CONSENT_REFUSED = "urn:reminders:problem:consent-refused"
#: A field of the path, the query or the body is missing, unknown or invalid.
INVALID_REQUEST = "urn:reminders:problem:invalid-request"

_TITLES = {
    CONSENT_REFUSED: "Refused by the consent rules",
    INVALID_REQUEST: "Invalid request",
}


class Problem(ReminderError):
    """The API refuses this request: its detail says why and what to do."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str = "about:blank",
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type_
        self.headers = dict(headers or {})
        self.extensions = extensions

    @property
    def title(self) -> str:
        return _TITLES.get(self.type) or HTTPStatus(self.status).phrase

    def body(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extensions,
        }

    def response(self) -> Response:
        content = json.dumps(self.body(), ensure_ascii=False)
        return Response(content, self.status, self.headers, media_type=MEDIA_TYPE)


def invalid(field: str, detail: str) -> Problem:
    """422: `field` (`body.at`, `query.limit`, `path.address`) is not acceptable."""
    return Problem(422, detail, type_=INVALID_REQUEST, field=field)


def refused(detail: str) -> Problem:
    """409: the consent rules refuse it; `detail` is the rule's one-line explanation."""
    return Problem(409, detail, type_=CONSENT_REFUSED)


#: What a status without a message of ours says.
_DEFAULT_DETAILS = {
    400: "the request cannot be read: check its syntax",
    404: "there is nothing at this address: the routes are in /api/v1/openapi.json",
    405: "this route does not take this method: see the Allow header",
    413: "the body is too large: a request body is a few hundred bytes",
    415: "send the body as JSON, with 'Content-Type: application/json'",
    500: "the server failed on this request: it was logged; try again later",
    503: "the service is unavailable for a moment: try again later",
}


def of_status(status: int, headers: Mapping[str, str] | None = None) -> Problem:
    """Return the plain problem of an HTTP status (unknown route, method, body too large)."""
    detail = _DEFAULT_DETAILS.get(status, HTTPStatus(status).phrase)
    return Problem(status, detail, headers=headers)
