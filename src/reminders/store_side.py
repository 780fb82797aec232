"""Where a connection's database work runs while its messages go out.

A connection asks for three jobs (`Jobs`): claim the next batch, write a batch's
outcomes, renew the leases of what it still holds. They run one at a time, in the
order asked, and their results come back in that order, so a batch's outcomes are
written before the claim asked after them:

- `Inline` runs each job when its result is needed, on the sending thread (a
  `mail.batch_size` of 1: nothing is claimed ahead).
- `StoreThread` runs them on a second thread. (A forked process instead was
  measured slower: sending the claimed emails and the outcomes through a pipe cost
  more than the interpreter lock the two threads share.)
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Protocol

from .delivery import Delivery
from .store import Claimed, Settled

#: What a written batch tells: the outcome of each of its emails.
Record = Callable[[list[Delivery]], None]


class Jobs(Protocol):
    """The database work of one connection."""

    def next_batch(self) -> list[Claimed] | None:
        """Claim the next batch; None when nothing is left to send."""

    def write(self, settled: list[Settled]) -> list[Delivery]:
        """Write these outcomes; return what each email became."""

    def renew(self, ids: list[int], now: datetime) -> None:
        """Renew the leases of these claimed items."""


class StoreSide(Protocol):
    """Runs a connection's `Jobs` in order; what a written batch tells goes to `Record`."""

    def claim(self) -> None:
        """Ask for the next batch."""

    def claimed(self) -> list[Claimed] | None:
        """Return the batch asked for last; raise the error of a job that failed."""

    def settle(self, settled: list[Settled]) -> None:
        """Have these outcomes written."""

    def renew(self, ids: list[int], now: datetime) -> None:
        """Have these leases renewed."""

    def close(self) -> None:
        """Wait for every job asked; raise the first error."""


class Inline:
    """Each job runs when asked, on the sending thread; no batch is claimed ahead."""

    def __init__(self, jobs: Jobs, record: Record, stopping: Callable[[], bool]) -> None:
        self._jobs = jobs
        self._record = record
        self._stopping = stopping

    def claim(self) -> None:
        pass  # claimed when it is needed: nothing waits claimed while a batch goes out

    def claimed(self) -> list[Claimed] | None:
        return None if self._stopping() else self._jobs.next_batch()

    def settle(self, settled: list[Settled]) -> None:
        self._record(self._jobs.write(settled))

    def renew(self, ids: list[int], now: datetime) -> None:
        self._jobs.renew(ids, now)

    def close(self) -> None:
        pass


class StoreThread:
    """The jobs run in order on a second thread of this process."""

    def __init__(self, jobs: Jobs, record: Record) -> None:
        self._jobs = jobs
        self._record = record
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._upcoming: Future[list[Claimed] | None] | None = None
        self._writes: list[Future[None]] = []

    def claim(self) -> None:
        self._upcoming = self._thread.submit(self._jobs.next_batch)

    def claimed(self) -> list[Claimed] | None:
        assert self._upcoming is not None, "claimed() without claim()"
        batch = self._upcoming.result()
        self._upcoming = None
        # Writes asked before that claim ran before it: raise the first that failed.
        done = [f for f in self._writes if f.done()]
        self._writes = [f for f in self._writes if not f.done()]
        for future in done:
            future.result()
        return batch

    def settle(self, settled: list[Settled]) -> None:
        self._writes.append(self._thread.submit(self._write, settled))

    def _write(self, settled: list[Settled]) -> None:
        self._record(self._jobs.write(settled))

    def renew(self, ids: list[int], now: datetime) -> None:
        self._writes.append(self._thread.submit(self._jobs.renew, ids, now))

    def close(self) -> None:
        try:
            errors = [f.exception() for f in self._writes]
            if self._upcoming is not None:
                self._upcoming.exception()
        finally:
            self._thread.shutdown(wait=True)
        for error in errors:
            if error is not None:
                raise error
