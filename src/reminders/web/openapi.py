"""The OpenAPI 3.1 description of the API, written as data (served at /api/v1/openapi.json).

A test keeps it in step with the app: every route is described, and every answer
the tests receive matches the schema described for its status.
"""

from __future__ import annotations

from typing import Any

from ..consent import METHOD_MAX_CHARS, Action, ConsentReason, Source
from .api_input import DEFAULT_LIMIT, MAX_LIMIT
from .problems import MEDIA_TYPE as PROBLEM

_INSTANT = {"type": "string", "format": "date-time"}
_NULLABLE_INSTANT = {"type": ["string", "null"], "format": "date-time"}
_SOURCES = [str(s) for s in Source]


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _json(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


#: The refusals every route may answer.
_ALWAYS = {
    "401": {
        "$ref": "#/components/responses/Unauthorized",
    },
    "405": _problem("This route does not take this method (the Allow header lists those it does)."),
    "422": _problem("A field of the path, the query or the body is missing, unknown or invalid."),
    "503": _problem("The database (or the mail server) is out of reach: try again later."),
}
_ADDRESS = {
    "name": "address",
    "in": "path",
    "required": True,
    "description": "The email address (any letter case), percent-encoded.",
    "schema": {"type": "string", "maxLength": 320},
}


def _address_post(summary: str, body: str | None, ok: str, ok_description: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [_ADDRESS],
        "responses": {
            ok: _json(ok_description, "AddressStatus"),
            "400": _problem("The body is not valid JSON."),
            "404": _problem("The address is not in the registry."),
            "409": _problem(
                "Refused by the consent rules; the detail is the rule's one-line explanation."
            ),
            "413": _problem("The body is too large."),
            "415": _problem("The body is not sent as JSON."),
            **_ALWAYS,
        },
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return operation


def document(base_url: str) -> dict[str, Any]:
    """Return the description of the API served at `base_url`."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "reminders consent API",
            "version": "1",
            "description": (
                "Read and record the consent of email addresses, by the rules staff follow: "
                "an address a contact unsubscribed, or the mail system opted out (bounce, "
                "complaint), is opted back in only by the contact's own confirmation. Every "
                "request carries an API key ('reminders api-key create NAME'); what a key "
                "records is in the history under the actor 'api:NAME'. Refusals are RFC 9457 "
                "problems (application/problem+json)."
            ),
        },
        "servers": [{"url": base_url}],
        "security": [{"apiKey": []}],
        "paths": {
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This description",
                    "responses": {
                        "200": {
                            "description": "The OpenAPI description of the API.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_ALWAYS,
                    },
                }
            },
            "/api/v1/addresses/{address}": {
                "get": {
                    "summary": "An address's consent, opt-out source and history",
                    "parameters": [_ADDRESS],
                    "responses": {
                        "200": _json(
                            "Where the address stands (as 'reminders consent status --json').",
                            "AddressStatus",
                        ),
                        "404": _problem("The address is not in the registry (never seen)."),
                        **_ALWAYS,
                    },
                }
            },
            "/api/v1/addresses/{address}/opt-out": {
                "post": _address_post(
                    "Record an opt-out (staff's, or one the client received)",
                    "OptOut",
                    "200",
                    "Recorded (or already opted out by a source at least as strong).",
                )
            },
            "/api/v1/addresses/{address}/opt-in": {
                "post": _address_post(
                    "Lift an opt-out staff or an import recorded",
                    "OptIn",
                    "200",
                    "Recorded (or nothing to lift).",
                )
            },
            "/api/v1/addresses/{address}/confirmation": {
                "post": _address_post(
                    "Send the confirmation email (double opt-in), once per address as staff",
                    None,
                    "202",
                    "Sent: the address is confirmation_pending until the contact clicks.",
                )
            },
            "/api/v1/addresses/{address}/kinds/{kind}": {
                "put": {
                    **_address_post(
                        "Record the contact's choice for one kind of email (source contact)",
                        "KindChoice",
                        "200",
                        "Recorded (or the same choice already): the address's status, with "
                        "its kinds.",
                    ),
                    "parameters": [
                        _ADDRESS,
                        {
                            "name": "kind",
                            "in": "path",
                            "required": True,
                            "description": "A kind the address's agencies send, e.g. "
                            "post_departure; 404 for another. 409 for a kind the agency marks "
                            "required.",
                            "schema": {"type": "string"},
                        },
                    ],
                }
            },
            "/api/v1/opt-outs": {
                "get": {
                    "summary": "The opted-out addresses, by address, a page at a time",
                    "parameters": [
                        {
                            "name": "source",
                            "in": "query",
                            "schema": {"type": "string", "enum": _SOURCES},
                        },
                        {
                            "name": "since",
                            "in": "query",
                            "description": "Opted out at or after: a date (UTC) or a "
                            "date-time with its offset.",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "until",
                            "in": "query",
                            "description": "Opted out before: a date (that whole day in UTC "
                            "included) or a date-time with its offset.",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "prefix",
                            "in": "query",
                            "description": "Addresses starting with this, in any letter case.",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_LIMIT,
                                "default": DEFAULT_LIMIT,
                            },
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "description": "The 'next' of the previous page.",
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": _json("One page; 'next' is null on the last.", "OptOutPage"),
                        **_ALWAYS,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A key from 'reminders api-key create NAME'.",
                }
            },
            "responses": {
                "Unauthorized": {
                    "description": "No key, or a key unknown or revoked.",
                    "headers": {
                        "WWW-Authenticate": {"schema": {"type": "string"}},
                    },
                    "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457 problem details.",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "field": {
                            "type": "string",
                            "description": "The field refused: body.NAME, query.NAME or "
                            "path.address.",
                        },
                    },
                },
                "Method": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": METHOD_MAX_CHARS,
                    "description": "How it reached you: phone, letter, crm, ... (no control "
                    "characters).",
                },
                "OptOut": {
                    "type": "object",
                    "required": ["method"],
                    "additionalProperties": False,
                    "properties": {
                        "method": {"$ref": "#/components/schemas/Method"},
                        "at": {
                            **_INSTANT,
                            "description": "When it happened, with its offset (default: now).",
                        },
                        "source": {
                            "type": "string",
                            "enum": [str(s) for s in (Source.AGENT, Source.CONTACT, Source.SYSTEM)],
                            "default": str(Source.AGENT),
                            "description": "agent: staff recorded it; contact or system: an "
                            "opt-out the client received from the contact or the mail system.",
                        },
                    },
                },
                "OptIn": {
                    "type": "object",
                    "required": ["method"],
                    "additionalProperties": False,
                    "properties": {
                        "method": {"$ref": "#/components/schemas/Method"},
                        "at": {
                            **_INSTANT,
                            "description": "When it happened, with its offset (default: now).",
                        },
                    },
                },
                "KindChoice": {
                    "type": "object",
                    "required": ["receive", "method"],
                    "additionalProperties": False,
                    "properties": {
                        "receive": {
                            "type": "boolean",
                            "description": "false: the contact does not want this kind of email.",
                        },
                        "method": {"$ref": "#/components/schemas/Method"},
                    },
                },
                "AddressStatus": {
                    "type": "object",
                    "required": ["address", "consent", "source", "history"],
                    "properties": {
                        "address": {"type": "string", "description": "Normalised."},
                        "consent": {
                            "type": "string",
                            "enum": [
                                str(r) for r in ConsentReason if r is not ConsentReason.NO_ADDRESS
                            ],
                        },
                        "source": {
                            "type": ["string", "null"],
                            "enum": [*_SOURCES, None],
                            "description": "The opt-out's source, or null.",
                        },
                        "opted_out_at": _NULLABLE_INSTANT,
                        "confirmed_at": _NULLABLE_INSTANT,
                        "confirmation_sent_at": _NULLABLE_INSTANT,
                        "kinds": {
                            "type": "object",
                            "additionalProperties": {"type": "boolean"},
                            "description": "The contact's choice per kind of email, "
                            "{kind: receive}; a kind not listed is received.",
                        },
                        "contacts": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "agency": {"type": "string"},
                                },
                            },
                        },
                        "history": {
                            "type": "array",
                            "description": "Oldest first.",
                            "items": {"$ref": "#/components/schemas/Event"},
                        },
                    },
                },
                "Event": {
                    "type": "object",
                    "required": [
                        "action",
                        "source",
                        "method",
                        "actor",
                        "occurred_at",
                        "recorded_at",
                    ],
                    "properties": {
                        "action": {"type": "string", "enum": [str(a) for a in Action]},
                        "source": {"type": "string", "enum": _SOURCES},
                        "method": {"type": "string"},
                        "actor": {"type": "string", "description": "api:NAME for a key."},
                        "occurred_at": _INSTANT,
                        "recorded_at": _INSTANT,
                        "detail": {"type": ["string", "null"]},
                    },
                },
                "OptOutPage": {
                    "type": "object",
                    "required": ["items", "next"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/OptedOut"},
                        },
                        "next": {
                            "type": ["string", "null"],
                            "description": "The cursor of the next page, null on the last.",
                        },
                    },
                },
                "OptedOut": {
                    "type": "object",
                    "required": ["address", "source", "method", "occurred_at"],
                    "properties": {
                        "address": {"type": "string"},
                        "source": {"type": "string", "enum": _SOURCES},
                        "method": {"type": ["string", "null"]},
                        "occurred_at": _INSTANT,
                        "actor": {"type": ["string", "null"]},
                        "detail": {"type": ["string", "null"]},
                    },
                },
            },
        },
    }
