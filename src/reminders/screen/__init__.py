"""`reminders review`: the terminal screen staff review their emails on each morning.

Built on Textual, which draws over SSH in any terminal of 80x24 or more and runs
headless under its pilot for the tests. Only `reminders review` imports it.
"""

from __future__ import annotations

from .app import ReviewApp

__all__ = ["ReviewApp"]
