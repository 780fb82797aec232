"""Sending: approve items, hand each one to the mail transport, settle what happened.

The order of one delivery is what makes a crash safe:

1. in one transaction: check the booking still qualifies and the contact's consent,
   approve, mark the item `sending` and log the attempt, then commit;
2. the SMTP transaction (nothing else happens meanwhile);
3. in one transaction: `sent`, back to `approved` with a retry time, `failed`,
   or `unknown` when the server's final reply was lost.

A process that dies between 1 and 3 leaves its item in `sending`; the next
dispatcher (or `send` command) turns it into `unknown`, which only a person can
settle (`resend` or `mark-sent`). Nothing is ever sent twice without a person.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from . import registry, service
from .clock import local_today
from .config import AgencySettings, Settings
from .consent import Action, ConsentReason, Source
from .delivery import (
    Delivery,
    DispatchReport,
    Result,
    claimant_is_gone,
    pause_before_next,
    retry_delay,
    this_process,
)
from .errors import InvalidAddress, ReminderError, UsageError
from .kinds import activate
from .mailer import (
    DeliveryError,
    MaildirMailer,
    Mailer,
    PermanentFailure,
    SmtpMailer,
    TransientFailure,
    UncertainDelivery,
)
from .messages import Envelope, agency_email, mailbox, parse_mailbox
from .queue import QueueItem, Rendered, Status
from .service import consent_of
from .store import Database
from .summary import summary_email
from .tokens import LinkSigner

#: States of an item another dispatcher holds (still approved: its row is locked) or took.
_TAKEN = frozenset({Status.APPROVED, Status.SENDING, Status.SENT, Status.FAILED, Status.UNKNOWN})

#: Who approves and sends when no person does.
DISPATCHER = "dispatcher"
AUTO_SEND = "auto_send"


def mark_sent(database: Database, item_id: int, actor: str) -> QueueItem:
    """Settle an unknown item as delivered: a person checked that it arrived."""
    with database.transaction() as store:
        return store.mark_sent_by(item_id, actor)


def mailer_for(settings: Settings) -> Mailer:
    """Return the transport `mail.transport` names (no connection is made yet)."""
    if settings.mail.transport == "maildir":
        return MaildirMailer(settings.maildir_path)
    smtp = settings.smtp
    return SmtpMailer(
        smtp.host,
        smtp.port,
        security=smtp.security,
        username=smtp.username,
        password=smtp.password.get_secret_value() if smtp.password else None,
        timeout_s=smtp.timeout_s,
        ca_file=settings.path(smtp.ca_file) if smtp.ca_file else None,
    )


class Dispatcher:
    """Sends items through one mailer for one batch (a command, or a daemon tick)."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        mailer: Mailer,
        *,
        actor: str,
        sleep: Callable[[float], object] = time.sleep,
        on_result: Callable[[Delivery], None] | None = None,
    ) -> None:
        self._database = database
        self._settings = settings
        self._mailer = mailer
        self._actor = actor
        self._sleep = sleep
        self._on_result = on_result
        self._signer = LinkSigner(settings.link_secret(), database.clock)
        self._claimant = this_process()
        self._checked_kinds: set[tuple[str, str]] = set()

    def _now(self) -> datetime:
        return self._database.clock.now()

    # -- what people ask for -------------------------------------------------------

    def send(self, item_ids: Sequence[int]) -> DispatchReport:
        """Approve and send these items now, whatever their retry schedule."""
        return self._batch(item_ids, (Status.PENDING, Status.APPROVED))

    def resend(self, item_ids: Sequence[int]) -> DispatchReport:
        """Send again items a person decided about: unknown or failed ones."""
        return self._batch(item_ids, (Status.UNKNOWN, Status.FAILED))

    def send_tab(self, agency: str, kind: str) -> DispatchReport:
        """Approve and send every pending (and approved) item of one tab."""
        self._withdraw_unqualified(agency, kind)
        with self._database.transaction() as store:
            ids = store.pending_ids(agency, kind)
        return self._batch(ids, (Status.PENDING, Status.APPROVED))

    # -- what the daemon does -------------------------------------------------------

    def approve_automatic(self) -> int:
        """Approve the new items of every kind set to `auto_send`, where consent allows."""
        approved = 0
        for agency in self._settings.agency:
            today = local_today(self._now(), agency.zone)
            for kind in agency.enabled_kinds():
                if not kind.auto_send:
                    continue
                with self._database.transaction() as store:
                    for item_id in store.pending_ids(agency.code, kind.name, listed_on=today):
                        item = store.item(item_id)
                        if (
                            item.status is Status.PENDING
                            and consent_of(item, self._now(), self._settings) is ConsentReason.OK
                        ):
                            store.approve(item_id, AUTO_SEND)
                            approved += 1
        return approved

    def dispatch_due(self, should_stop: Callable[[], bool] = lambda: False) -> DispatchReport:
        """Send approved items whose time has come, agency by agency, until none is left.

        Each item is tried at most once per call, so one that cannot go (no consent,
        no valid address) never keeps the loop busy; an item another replica claimed
        first is skipped without a word.
        """
        report = DispatchReport(recovered=self.recover_abandoned())
        codes = [a.code for a in self._settings.agency]
        tried: set[int] = set()
        try:
            while not should_stop() and report.stopped is None:
                with self._database.transaction() as store:
                    due = store.next_due(codes, self._now(), exclude=tried)
                if not due:
                    break
                # The agency that may send soonest goes first (its rate limit allows).
                waits = sorted((self._pause_for(agency), agency, item) for agency, item in due)
                wait, _agency, item_id = waits[0]
                if wait > 0:
                    self._sleep(wait)
                    if should_stop():
                        break
                tried.add(item_id)
                self._deliver(item_id, (Status.APPROVED,), report, taken_is_quiet=True)
        finally:
            self._mailer.close()
        return report

    def send_summary(self, agency: AgencySettings, *, again: bool = False) -> str | None:
        """Email the agency's summary of today to its `summary_to`; return the address.

        Once a day unless `again`: None when today's summary already went out.
        """
        if not agency.summary_to:
            raise UsageError(
                f'agency {agency.code!r} has no summary_to: add summary_to = "name@example.com" '
                "to its [[agency]] table"
            )
        now = self._now()
        today = local_today(now, agency.zone)
        rows = [
            row
            for row in service.today_summary(self._database, self._settings)
            if row["agency"] == agency.code
        ]
        with self._database.transaction() as store:
            previous = store.claim_summary(agency.code, today)
            if previous == today and not again:
                return None
        content = summary_email(
            code=agency.code, name=agency.name, language=agency.language, day=today, rows=rows
        )
        recipient = parse_mailbox(agency.summary_to)
        envelope = agency_email(
            agency, recipient, content, now=now, tag=f"summary.{agency.code}.{today.isoformat()}"
        )
        try:
            self._mailer.send(envelope)
        except BaseException:
            # Not sent: the next pass (or `today --email`) tries again.
            with self._database.transaction() as store:
                store.release_summary(agency.code, today, previous)
            raise
        finally:
            self._mailer.close()
        return recipient.address

    def recover_abandoned(self) -> list[int]:
        """Turn items left in `sending` by a process that stopped into `unknown`."""
        host = socket.gethostname()
        # Past this, no SMTP transaction is still under way (each step has a timeout).
        stale = self._now() - timedelta(seconds=4 * self._settings.smtp.timeout_s + 60)
        recovered = []
        with self._database.transaction() as store:
            for item_id, claimant, claimed_at in store.in_flight():
                if claimant == self._claimant:
                    continue
                gone = claimant_is_gone(claimant, host)
                if gone or (claimed_at is not None and claimed_at < stale):
                    detail = (
                        f"the process sending it ({claimant or 'unknown'}) stopped before the "
                        "mail server confirmed: check whether it arrived, then "
                        f"'reminders resend {item_id}' or 'reminders mark-sent {item_id}'"
                    )
                    if store.give_up_in_flight(item_id, detail):
                        recovered.append(item_id)
        return recovered

    # -- one batch, one item ----------------------------------------------------------

    def _batch(self, item_ids: Iterable[int], sources: tuple[Status, ...]) -> DispatchReport:
        report = DispatchReport(recovered=self.recover_abandoned())
        try:
            for item_id in dict.fromkeys(item_ids):
                if report.stopped is not None:
                    self._record(report, self._approve_only(item_id, sources))
                    continue
                self._deliver(item_id, sources, report)
        finally:
            self._mailer.close()
        return report

    def _approve_only(self, item_id: int, sources: tuple[Status, ...]) -> Delivery:
        """After the batch stopped: approve what a person asked for, for the daemon to send."""
        with self._database.transaction() as store:
            try:
                item = store.item(item_id)
            except ReminderError as error:
                return Delivery(item_id=item_id, result=Result.REFUSED, detail=str(error))
            if item.status not in sources:
                return _about(item, _refusal_result(item), _refusal(item, sources))
            if consent_of(item, self._now(), self._settings) is not ConsentReason.OK:
                return _about(item, Result.NOT_TRIED, "not tried: the batch stopped before it")
            if item.status is Status.PENDING:
                store.approve(item_id, self._actor)
        return _about(
            item,
            Result.NOT_TRIED,
            "not tried: the batch stopped before it; it is approved and goes out when the "
            "server answers",
        )

    def _record(self, report: DispatchReport, delivery: Delivery) -> None:
        report.deliveries.append(delivery)
        if self._on_result is not None:
            self._on_result(delivery)

    def _pause_for(self, agency_code: str) -> float:
        agency = next((a for a in self._settings.agency if a.code == agency_code), None)
        if agency is None:
            return 0.0
        with self._database.transaction() as store:
            last = store.last_attempt_started(agency_code)
        return pause_before_next(last, self._now(), agency.max_per_minute)

    def _withdraw_unqualified(self, agency_code: str, kind_name: str) -> None:
        """Withdraw the tab's items whose booking changed since planning (once a batch)."""
        if (agency_code, kind_name) in self._checked_kinds:
            return
        self._checked_kinds.add((agency_code, kind_name))
        agency = next((a for a in self._settings.agency if a.code == agency_code), None)
        definition = agency.definitions().get(kind_name) if agency else None
        if agency is None or definition is None:
            return
        with self._database.transaction() as store:
            # Only the anchor and the eligibility rule matter here, not the delay.
            store.withdraw_unqualified(agency_code, activate(definition, delay_days=0))

    def _deliver(
        self,
        item_id: int,
        sources: tuple[Status, ...],
        report: DispatchReport,
        *,
        taken_is_quiet: bool = False,
    ) -> None:
        """Send one item: check, claim and commit, hand it over, settle what happened."""
        try:
            item = self._peek(item_id)
        except ReminderError as error:
            refused = Delivery(item_id=item_id, result=Result.REFUSED, detail=str(error))
            self._record(report, refused)
            return
        if item.status not in sources:
            if not taken_is_quiet:
                self._record(report, _about(item, _refusal_result(item), _refusal(item, sources)))
            return
        self._withdraw_unqualified(item.agency, item.kind)
        wait = self._pause_for(item.agency)
        if wait > 0:
            self._sleep(wait)
        try:
            claimed = self._claim(item_id, sources)
        except ReminderError as error:
            self._record(report, _about(item, Result.REFUSED, str(error)))
            return
        if claimed is None:  # moved on since the peek: withdrawn, or another process has it
            item = self._peek(item_id)
            if not (taken_is_quiet and item.status in _TAKEN):
                self._record(report, _about(item, _refusal_result(item), _refusal(item, sources)))
            return
        if isinstance(claimed, Delivery):
            self._record(report, claimed)
            return
        item, envelope, delivery_id = claimed
        try:
            self._mailer.send(envelope)
        except DeliveryError as error:
            self._record(report, self._settle_failure(item, delivery_id, envelope, error))
            if isinstance(error, TransientFailure) and error.stops_batch:
                report.stopped = str(error)
            return
        with self._database.transaction() as store:
            store.finish_delivery(item.id, delivery_id, target=Status.SENT, outcome="sent")
        self._record(
            report,
            _about(item, Result.SENT, None, to=envelope.recipient, message_id=envelope.message_id),
        )

    def _peek(self, item_id: int) -> QueueItem:
        with self._database.transaction() as store:
            return store.item(item_id)

    def _claim(
        self, item_id: int, sources: tuple[Status, ...]
    ) -> Delivery | tuple[QueueItem, Envelope, int] | None:
        """Check, approve and mark one item `sending`, in one committed transaction.

        The item's row is locked first (SKIP LOCKED on PostgreSQL): None means another
        process holds it or has moved it on.
        """
        with self._database.transaction() as store:
            item = store.lock_for_sending(item_id, sources)
            if item is None:
                return None
            agency = self._settings.agency_by_code(item.agency)
            if item.visible_until < local_today(self._now(), agency.zone):
                store.expire(item.id)
                return _about(
                    item,
                    Result.EXPIRED,
                    f"its window ended on {item.visible_until.isoformat()}: not sent late, "
                    "it is now expired",
                )
            consent = consent_of(item, self._now(), self._settings)
            if consent is not ConsentReason.OK:
                store.hold(item.id, str(consent))
                return _about(item, Result.HELD, f"no consent ({consent}): it stays pending")
            try:
                envelope = self._envelope(item, agency, attempt=item.attempts + 1)
            except InvalidAddress as error:
                store.hold(item.id, "invalid_address")
                return _about(
                    item,
                    Result.REFUSED,
                    f"{error}: not sent, it stays pending: correct the contact's address",
                )
            if item.status is Status.PENDING:
                store.approve(item.id, self._actor)
                sources = (Status.APPROVED,)
            claimed = store.claim(item, self._claimant, sources)
            delivery_id = store.start_delivery(
                claimed,
                recipient=envelope.recipient,
                message_id=envelope.message_id,
                actor=self._actor,
                claimant=self._claimant,
            )
        return claimed, envelope, delivery_id

    def _settle_failure(
        self, item: QueueItem, delivery_id: int, envelope: Envelope, error: DeliveryError
    ) -> Delivery:
        detail = str(error)
        with self._database.transaction() as store:
            if isinstance(error, UncertainDelivery):
                store.finish_delivery(
                    item.id, delivery_id, target=Status.UNKNOWN, outcome="unknown", detail=detail
                )
                return _about(
                    item,
                    Result.UNKNOWN,
                    f"{detail}: check whether it arrived, then 'reminders resend {item.id}' or "
                    f"'reminders mark-sent {item.id}'",
                    to=envelope.recipient,
                    message_id=envelope.message_id,
                )
            mail = self._settings.mail
            if isinstance(error, TransientFailure) and item.attempts < mail.max_attempts:
                retry_at = self._now() + retry_delay(
                    item.attempts, mail.retry_after_s, mail.retry_max_s
                )
                store.finish_delivery(
                    item.id,
                    delivery_id,
                    target=Status.APPROVED,
                    outcome="transient",
                    detail=detail,
                    smtp_code=error.code,
                    next_attempt_at=retry_at,
                )
                zone = self._settings.agency_by_code(item.agency).zone
                return _about(
                    item,
                    Result.RETRY,
                    detail,
                    to=envelope.recipient,
                    next_attempt_at=retry_at.astimezone(zone),
                )
            if isinstance(error, TransientFailure):
                detail = f"retries used up after {item.attempts} attempts: {detail}"
            store.finish_delivery(
                item.id,
                delivery_id,
                target=Status.FAILED,
                outcome="permanent" if isinstance(error, PermanentFailure) else "transient",
                detail=detail,
                smtp_code=error.code,
            )
            if isinstance(error, PermanentFailure) and (error.enhanced or "").startswith("5.1."):
                # The mailbox does not exist: never write to it again unless it confirms.
                registry.change(
                    store,
                    envelope.recipient,
                    Action.OPT_OUT,
                    Source.SYSTEM,
                    method="smtp",
                    actor=DISPATCHER,
                    now=self._now(),
                    detail=f"item {item.id}: {error.code} {error.reply}",
                )
                detail = f"{detail} (the address is now opted out: source system)"
        return _about(item, Result.FAILED, detail, to=envelope.recipient)

    def _envelope(self, item: QueueItem, agency: AgencySettings, *, attempt: int) -> Envelope:
        if not item.to:
            raise InvalidAddress(f"item {item.id} has no address")
        recipient = mailbox(item.to, item.contact_name)
        content = Rendered(subject=item.subject, text=item.text, html=item.html, locale=item.locale)
        return agency_email(
            agency,
            recipient,
            content,
            now=self._now(),
            tag=f"r{item.id}.{attempt}",
            unsubscribe_url=registry.unsubscribe_url(
                self._settings, self._signer, recipient.address
            ),
        )


def _about(
    item: QueueItem,
    result: Result,
    detail: str | None,
    *,
    to: str | None = None,
    message_id: str | None = None,
    next_attempt_at: datetime | None = None,
) -> Delivery:
    return Delivery(
        item_id=item.id,
        result=result,
        agency=item.agency,
        kind=item.kind,
        booking_ref=item.booking_ref,
        to=to or item.to,
        detail=detail,
        message_id=message_id,
        next_attempt_at=next_attempt_at,
    )


def _refusal_result(item: QueueItem) -> Result:
    return Result.WITHDRAWN if item.status is Status.WITHDRAWN else Result.REFUSED


def _refusal(item: QueueItem, sources: tuple[Status, ...]) -> str:
    """Say why an item cannot be sent from its state, and what to do instead."""
    status = item.status
    if status is Status.SENT:
        when = f" on {item.sent_at.isoformat(timespec='seconds')}" if item.sent_at else ""
        return f"item {item.id} was already sent{when}: nothing sent again"
    if status in (Status.UNKNOWN, Status.FAILED) and Status.PENDING in sources:
        return (
            f"item {item.id} is {status}: a person decides whether it goes again: "
            f"'reminders resend {item.id}'"
            + (f" or 'reminders mark-sent {item.id}'" if status is Status.UNKNOWN else "")
        )
    if status is Status.SENDING:
        return f"item {item.id} is being sent by another process: see 'reminders show {item.id}'"
    if Status.UNKNOWN in sources:
        return (
            f"item {item.id} is {status}: only unknown or failed items can be sent again "
            f"(use 'reminders send {item.id}' for a pending one)"
        )
    reason = f" ({item.reason})" if item.reason else ""
    return f"item {item.id} is {status}{reason}: it cannot be sent: see 'reminders show {item.id}'"
