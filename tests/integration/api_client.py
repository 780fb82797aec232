"""A client of the HTTP API that checks every answer against the OpenAPI description served.

Each answer must be described: its route and method, its status, its media type,
and its JSON must match the schema given for that status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from reminders.web.openapi import document

PROBLEM = "application/problem+json"


@dataclass
class ApiClient:
    """Calls the API with a key (or none), and checks what it answers."""

    http: httpx.Client
    key: str | None
    spec: dict[str, Any] = field(default_factory=lambda: document("https://links.example"))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.key is not None:
            headers.setdefault("Authorization", f"Bearer {self.key}")
        response = self.http.request(method, path, headers=headers, **kwargs)
        self.check(method, path, response)
        return response

    def check(self, method: str, path: str, response: httpx.Response) -> None:
        """Assert that the description covers this answer, and that it matches its schema."""
        media_type = response.headers.get("content-type", "").split(";")[0]
        operation = self._operation(method, path.split("?")[0])
        if operation is None:  # not a route: a plain problem
            assert response.status_code in (404, 405), (method, path, response.status_code)
            assert media_type == PROBLEM, response.text
            self._validate(response.json(), {"$ref": "#/components/schemas/Problem"})
            return
        described = operation["responses"].get(str(response.status_code))
        assert described is not None, (method, path, response.status_code, response.text)
        if "$ref" in described:
            described = self.spec["components"]["responses"][described["$ref"].split("/")[-1]]
        [(described_type, content)] = described["content"].items()
        assert media_type == described_type, (method, path, response.status_code, media_type)
        self._validate(response.json(), content["schema"])

    def _operation(self, method: str, path: str) -> dict[str, Any] | None:
        for template, operations in self.spec["paths"].items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, path):
                found: dict[str, Any] | None = operations.get(method.lower())
                return found
        return None

    def _validate(self, value: Any, schema: dict[str, Any]) -> None:
        Draft202012Validator({**schema, "components": self.spec["components"]}).validate(value)
