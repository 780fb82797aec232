"""`reminders run`: the long-running process operators start (systemd unit or container).

APScheduler 3's `BlockingScheduler` runs jobs derived from the TOML file, so no
persistent job store is needed; what must survive a restart lives in the database
(the last planning pass of each agency, the items and their retry times):

- `plan:<agency>` at the agency's `plan_at`, in its own time zone. `coalesce` folds
  runs missed while the process was stalled into one, and `misfire_grace_time=None`
  runs it however late: a pass is idempotent and plans the local day it runs on, so
  late is always better than skipped. A process started after a `plan_at` it did
  not see runs a catch-up pass at once (`schedule.catch_up_due`).
- `expire:<agency>` just after local midnight: pending and approved items whose
  window ended leave the list.
- `dispatch` every `daemon.dispatch_every_s`: turn abandoned `sending` items into
  `unknown`, approve `auto_send` kinds, send the approved items that are due. A late
  tick is skipped (the next one comes soon).
- `control` every second: acts on SIGTERM / SIGHUP outside the signal handler.

SIGTERM (or SIGINT) lets the message in flight finish, then exits 0. SIGHUP reloads
the TOML file; an invalid file is logged and the old configuration is kept.
"""

from __future__ import annotations

import os
import signal
import threading
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from . import sending, service
from .clock import local_today
from .config import AgencySettings, Settings, load_settings
from .delivery import DispatchReport, Result
from .dispatch import DISPATCHER
from .dkim import signer_for
from .errors import DatabaseError, ReminderError
from .logs import EventLog
from .mailer import Mailer, mailer_for
from .schedule import catch_up_due
from .store import Database

#: Local time of the daily expiry of passed windows.
EXPIRE_AT = (0, 5)


class Daemon:
    """Plans, dispatches and maintains on a schedule until told to stop."""

    def __init__(
        self,
        config_path: Path,
        settings: Settings,
        database: Database,
        log: EventLog,
        *,
        mailer_factory: Callable[[Settings], Mailer] = mailer_for,
    ) -> None:
        self._config_path = config_path
        self._settings = settings
        self._database = database
        self._log = log
        self._mailer_factory = mailer_factory
        self._stopping = threading.Event()
        self._reload_requested = threading.Event()
        self._running_jobs = 0
        #: while the database is unreachable, the dispatch waits until then (backoff)
        self._database_down_until: datetime | None = None
        self._database_backoff_s = 0.0
        self._jobs_done = threading.Condition()
        self._scheduler = BlockingScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(max_workers=3)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    @property
    def clock(self) -> Any:
        return self._database.clock

    def run(self) -> None:
        """Run until SIGTERM or SIGINT; raise `ReminderError` if it cannot start."""
        self._settings.link_secret()  # refuse to start without the signing key
        signer_for(self._settings)  # nor with a DKIM key that cannot sign
        previous = {
            number: signal.signal(number, self._on_signal)
            for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        try:
            self._log.capture_library_logs("apscheduler")
            self._add_jobs(self._settings)
            self._add_catch_up(self._settings)
            self._scheduler.add_job(
                self._guarded(self._control, even_when_stopping=True),
                IntervalTrigger(seconds=1),
                id="control",
                misfire_grace_time=1,
            )
            self._log.info(
                "daemon.started",
                pid=os.getpid(),
                agencies=",".join(a.code for a in self._settings.agency),
                transport=self._settings.mail.transport,
            )
            self._scheduler.start()  # blocks until `_control` shuts it down
            self._wait_for_jobs()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
        self._log.info("daemon.stopped", pid=os.getpid())

    # -- signals --------------------------------------------------------------------

    def _on_signal(self, number: int, _frame: FrameType | None) -> None:
        # Only set flags here: the `control` job acts on them in a worker thread.
        if number == signal.SIGHUP:
            self._reload_requested.set()
        else:
            self._stopping.set()
        self._scheduler.wakeup()

    def _control(self) -> None:
        if self._stopping.is_set():
            self._log.info("daemon.stopping", reason="signal")
            self._scheduler.shutdown(wait=False)
            return
        if self._reload_requested.is_set():
            self._reload_requested.clear()
            self._reload()

    def _reload(self) -> None:
        try:
            settings = load_settings(self._config_path)
            settings.link_secret()
            signer_for(settings)
            problems = service.check_templates(settings)
            if problems:
                raise ReminderError(problems[0])
        except ReminderError as error:
            self._log.error(
                "config.reload_failed",
                path=str(self._config_path),
                error=str(error).splitlines()[0],
                action="kept the previous configuration",
            )
            return
        if settings.database_url != self._settings.database_url:
            self._log.warning(
                "config.database_changed",
                action="still using the previous database: restart to switch",
            )
        self._settings = settings
        for job in self._scheduler.get_jobs():
            if job.id.startswith(("plan:", "expire:", "dispatch")):
                job.remove()
        self._add_jobs(settings)
        self._log.info(
            "config.reloaded",
            path=str(self._config_path),
            agencies=",".join(a.code for a in settings.agency),
        )

    # -- jobs -----------------------------------------------------------------------

    def _add_jobs(self, settings: Settings) -> None:
        for agency in settings.agency:
            hour, minute = agency.plan_time.hour, agency.plan_time.minute
            self._scheduler.add_job(
                self._guarded(self._plan),
                CronTrigger(hour=hour, minute=minute, timezone=agency.zone),
                args=[agency.code],
                id=f"plan:{agency.code}",
                misfire_grace_time=None,
            )
            self._scheduler.add_job(
                self._guarded(self._expire),
                CronTrigger(hour=EXPIRE_AT[0], minute=EXPIRE_AT[1], timezone=agency.zone),
                args=[agency.code],
                id=f"expire:{agency.code}",
                misfire_grace_time=None,
            )
        every = settings.daemon.dispatch_every_s
        self._scheduler.add_job(
            self._guarded(self._dispatch),
            IntervalTrigger(seconds=every),
            id="dispatch",
            next_run_time=self.clock.now(),
            misfire_grace_time=max(int(every), 1),
        )

    def _add_catch_up(self, settings: Settings) -> None:
        now = self.clock.now()
        with self._database.transaction() as store:
            last = {a.code: store.last_planned_on(a.code) for a in settings.agency}
        for agency in settings.agency:
            if catch_up_due(last[agency.code], now, agency.zone, agency.plan_time):
                self._scheduler.add_job(
                    self._guarded(self._plan),
                    "date",
                    run_date=now,
                    args=[agency.code],
                    id=f"catch-up:{agency.code}",
                    misfire_grace_time=None,
                )

    def _guarded(
        self, job: Callable[..., None], *, even_when_stopping: bool = False
    ) -> Callable[..., None]:
        """Count the job as running, and log its failure instead of dying of it."""

        def run(*args: Any) -> None:
            with self._jobs_done:
                self._running_jobs += 1
            try:
                if even_when_stopping or not self._stopping.is_set():
                    job(*args)
            except ReminderError as error:
                self._log.error("job.failed", job=job.__name__.lstrip("_"), error=str(error))
            except Exception as error:  # a bug: keep the daemon alive, keep the traceback
                self._log.error(
                    "job.crashed",
                    job=job.__name__.lstrip("_"),
                    error=f"{type(error).__name__}: {error}",
                    traceback="".join(traceback.format_exception(error)).strip(),
                )
            finally:
                with self._jobs_done:
                    self._running_jobs -= 1
                    self._jobs_done.notify_all()

        run.__name__ = job.__name__
        return run

    def _wait_for_jobs(self) -> None:
        with self._jobs_done:
            self._jobs_done.wait_for(lambda: self._running_jobs == 0)

    def _agency(self, code: str) -> AgencySettings | None:
        return self._settings.find_agency(code)

    def _run(self, settings: Settings) -> sending.Run:
        return sending.Run(
            database=self._database,
            settings=settings,
            actor=DISPATCHER,
            mailers=lambda: self._mailer_factory(settings),
            sleep=self._stopping.wait,
            should_stop=self._stopping.is_set,
        )

    def _plan(self, code: str) -> None:
        settings = self._settings
        agency = self._agency(code)
        if agency is None:
            return
        try:
            report = service.plan_agency(self._database, settings, agency)
        except DatabaseError as error:
            # Tried again in a minute, until the database answers.
            self._log.error("plan.failed", agency=code, error=str(error), retry_in_s=60)
            self._scheduler.add_job(
                self._guarded(self._plan),
                "date",
                run_date=self.clock.now() + timedelta(seconds=60),
                args=[code],
                id=f"retry-plan:{code}",
                replace_existing=True,
                misfire_grace_time=None,
            )
            return
        fields: dict[str, Any] = {
            "agency": code,
            "day": report.today,
            "created": report.created,
            "missed": len(report.missed),
            "withdrawn": report.withdrawn,
            "expired": report.expired,
            "rerendered": report.rerendered,
        }
        if report.errors:
            # The other emails were planned; each reason is logged once.
            for reason in report.errors:
                self._log.error("plan.failed", **fields, skipped=report.skipped, error=reason)
            return
        self._log.info("plan.done", **fields)
        if agency.summary_to:
            try:
                sent_to = sending.email_summary(
                    self._database, settings, agency, self._mailer_factory(settings), again=False
                )
            except ReminderError as error:
                self._log.error("summary.failed", agency=code, error=str(error))
            else:
                if sent_to:
                    self._log.info("summary.sent", agency=code, to=sent_to)

    def _expire(self, code: str) -> None:
        agency = self._agency(code)
        if agency is None:
            return
        today = local_today(self.clock.now(), agency.zone)
        with self._database.transaction() as store:
            expired = store.expire_passed(code, today)
        self._log.info("expire.done", agency=code, day=today, expired=expired)

    def _dispatch(self) -> None:
        now = self.clock.now()
        if self._database_down_until is not None and now < self._database_down_until:
            return
        settings = self._settings
        try:
            approved = sending.approve_automatic(self._database, settings)
            if approved:
                self._log.info("auto_send.approved", items=approved)
            report = sending.dispatch_due(self._run(settings))
        except DatabaseError as error:
            # Retried with backoff, without a restart: 5 s, 10 s, ... up to a minute.
            self._database_backoff_s = min(max(self._database_backoff_s * 2, 5.0), 60.0)
            self._database_down_until = now + timedelta(seconds=self._database_backoff_s)
            self._log.error(
                "database.unreachable",
                error=str(error),
                retry_in_s=self._database_backoff_s,
            )
            return
        if self._database_down_until is not None:
            self._log.info("database.reachable")
        self._database_down_until, self._database_backoff_s = None, 0.0
        self._log_report(report)

    def _log_report(self, report: DispatchReport) -> None:
        for item_id in report.recovered:
            self._log.warning("mail.interrupted", item=item_id, status="unknown")
        for d in report.deliveries:
            fields: dict[str, Any] = {
                "item": d.item_id,
                "agency": d.agency,
                "kind": d.kind,
                "to": d.to,
            }
            if d.result is Result.SENT:
                self._log.info("mail.sent", **fields, message_id=d.message_id)
            elif d.result is Result.RETRY:
                self._log.warning(
                    "mail.retry", **fields, retry_at=d.next_attempt_at, error=d.detail
                )
            elif d.result in (Result.HELD, Result.TAKEN, Result.NOT_TRIED):
                self._log.info(f"mail.{d.result}", **fields, reason=d.detail)
            elif d.result in (Result.EXPIRED, Result.WITHDRAWN):
                self._log.warning(f"mail.{d.result}", **fields, reason=d.detail)
            else:
                self._log.error(f"mail.{d.result}", **fields, error=d.detail)
        if report.stopped:
            self._log.warning("dispatch.paused", error=report.stopped)
