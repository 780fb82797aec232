"""What `reminders web` serves: the contacts' link pages and the HTTP API.

- `app`: the application (routing, error handling, headers, request logs) and its server;
- `links`: the confirm and unsubscribe pages of the links in emails (HTML);
- `origin`: whether a form POST comes from one of our pages (pure);
- `api`, `api_input`, `problems`, `openapi`: the API under `/api/v1` (JSON).
"""

from __future__ import annotations

from .app import SECURITY_HEADERS, create_app, server

__all__ = ["SECURITY_HEADERS", "create_app", "server"]
