"""Fixtures of the integration tests (the database ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integration.dispatch_world import World
from mail_server import MailServer


@pytest.fixture
def world(database_url: str, mail_server: MailServer) -> Iterator[World]:
    """A dispatcher's world on each backend, with a real SMTP server.

    The planning tests define a `world` of their own.
    """
    world = World(database_url, mail_server)
    try:
        yield world
    finally:
        world.dispose()
