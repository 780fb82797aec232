"""`reminders web`: the pages contacts reach from the links in emails."""

from __future__ import annotations
