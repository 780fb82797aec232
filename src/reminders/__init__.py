"""Semi-automatic reminder email campaigns for travel and vacation-rental agencies."""

from __future__ import annotations

__version__ = "0.1.0"
