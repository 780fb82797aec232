"""Fixtures of the integration tests (the database ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from integration.dispatch_world import World
from mail_server import MailServer
from reminders.database import create_engine


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


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh, migrated database, on each backend."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()
