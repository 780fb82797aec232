"""The per-agency rate limit: which items a batch may claim now, and how long to wait.

Agencies without `max_per_minute` are claimed `batch_size` at a time. An agency
with one sends an email only after taking its next send slot, a conditional
update in the database (`Store.take_slot`), so the limit holds across every
process sharing it; the item is claimed just after, one at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from .delivery import Scope
from .store import Claimed, Database

#: Claim `limit` items of a scope (one committed statement).
ClaimFn = Callable[[Scope, int], list[Claimed]]
#: Tell whether a scope has anything left to claim (a read, to decide whether to wait).
LeftFn = Callable[[Scope], bool]


class Pacer:
    """Hands out the next items of one scope, within each agency's rate limit."""

    def __init__(
        self,
        database: Database,
        scope: Scope,
        intervals: dict[str, timedelta],
        *,
        batch_size: int,
        sleep: Callable[[float], object],
    ) -> None:
        self._database = database
        self._scope = scope
        self._intervals = intervals
        self._batch_size = batch_size
        self._sleep = sleep
        codes = scope.agencies
        self._limited = [
            code
            for code in intervals
            if (codes is None or code in codes) and scope.agency in (None, code)
        ]
        self._free_left = scope.agency not in intervals
        self._exhausted: set[str] = set()

    def next_batch(self, claim: ClaimFn, left: LeftFn) -> list[Claimed] | None:
        """Return the next items to send (waiting for a slot if need be); None when done."""
        while True:
            if self._free_left:
                batch = claim(
                    replace(self._scope, excluded=tuple(self._intervals)), self._batch_size
                )
                if batch:
                    return batch
                self._free_left = False
            waits: list[datetime] = []
            for code in self._limited:
                if code in self._exhausted:
                    continue
                batch, wait = self._one_of(code, claim, left)
                if batch:
                    return batch
                if wait is not None:
                    waits.append(wait)
            if not waits:
                return None
            pause = (min(waits) - self._database.clock.now()).total_seconds()
            self._sleep(max(pause, 0.0))

    def _one_of(
        self, code: str, claim: ClaimFn, left: LeftFn
    ) -> tuple[list[Claimed], datetime | None]:
        """Take `code`'s slot and claim one of its items; or say when its slot is free."""
        interval = self._intervals[code]
        now = self._database.clock.now()
        scope = self._scope.narrowed((code,))
        with self._database.transaction(durable=False) as store:
            next_free = store.take_slot(code, now, interval)
        if next_free is not None:
            if not left(scope):  # nothing to wait for
                self._exhausted.add(code)
                return [], None
            return [], next_free
        batch = claim(scope, 1)
        if not batch:
            self._exhausted.add(code)
            with self._database.transaction(durable=False) as store:
                store.release_slot(code, now, interval)
        return batch, None
