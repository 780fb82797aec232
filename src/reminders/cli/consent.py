"""`reminders consent ...` and `reminders bounces import`: the consent registry for staff."""

from __future__ import annotations
