"""The send loop: claim a batch, hand each message over, settle the batch.

1. One committed, durable statement claims up to half of `mail.batch_size` items
   (`Store.claim`): `sending`, with this process's name and a lease. Every
   condition that must still hold is checked in that statement. The next claim
   runs on a second thread, the store's, while this one's messages go out.
2. Each message is built when the transport is ready for it, and handed over on
   a reused connection (pipelined when the server allows); what happened is
   decided by `delivery.settle` (pure).
3. Settlements are written in one transaction every few milliseconds (and at
   the end of the batch), on the store's thread, in order with the claims; the
   leases of the items still to send are renewed.

A process that dies between 1 and 3 leaves its items in `sending` until their
lease passes (or at once, on its own host, when its pid is gone): then whoever
looks makes them `unknown`, and only a person sends them again. Nothing is sent
twice without a person, and a crash costs at most `mail.batch_size` items per
connection (the half being sent and the half claimed ahead).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from . import registry
from .clock import local_today
from .config import Settings
from .consent import Action, Source
from .delivery import (
    Attempt,
    Delivery,
    DispatchReport,
    KindRule,
    Outcome,
    RetryPolicy,
    Scope,
    SendRules,
    settle,
)
from .dkim import UnsignableMessage, signer_for
from .errors import InvalidAddress
from .leases import lease_length, message_id, this_process
from .mailer import DeliveryError, Mailer, PermanentFailure, TransientFailure, UncertainDelivery
from .messages import (
    SETTINGS_URL_PLACEHOLDER,
    AgencySender,
    Envelope,
    UnsafeHeader,
    agency_draft,
    agency_sender,
    build,
    mailbox,
)
from .pacing import Pacer
from .queue import Rendered, Status
from .service import reconfirm_after
from .store import Claimed, Database, Settled
from .store_side import Inline, StoreSide, StoreThread
from .tokens import LinkSigner

#: Settlements are written at least this often while a batch runs (seconds).
FLUSH_EVERY_S = 0.25

#: The order statuses are claimed in: what is already approved goes first.
_CLAIM_ORDER = [Status.APPROVED, Status.PENDING, Status.UNKNOWN, Status.FAILED]

#: What an email a person asked for hears when the batch stopped before it.
NOT_TRIED = (
    "not tried: the batch stopped before it; it is approved and goes out when the server answers"
)

#: Who approves and sends when no person does.
DISPATCHER = "dispatcher"


def kind_rules(settings: Settings) -> tuple[KindRule, ...]:
    """Return every kind the agencies know (enabled or not), with who defines it so."""
    agencies: dict[tuple[str, str, object], list[str]] = defaultdict(list)
    for agency in settings.agency:
        for definition in agency.definitions().values():
            key = (definition.name, definition.anchor, definition.eligibility)
            agencies[key].append(agency.code)
    return tuple(
        KindRule(name=name, anchor=anchor, eligibility=eligibility, agencies=tuple(codes))  # type: ignore[arg-type]
        for (name, anchor, eligibility), codes in agencies.items()
    )


def send_rules(settings: Settings, now: datetime, kinds: tuple[KindRule, ...]) -> SendRules:
    """Return what must hold at `now` for an item to be sent (`SendRules`)."""
    todays: dict[date, list[str]] = defaultdict(list)
    for agency in settings.agency:
        todays[local_today(now, agency.zone)].append(agency.code)
    return SendRules(
        now=now,
        consent_cutoff=now - reconfirm_after(settings),
        todays=tuple((day, tuple(codes)) for day, codes in sorted(todays.items())),
        kinds=kinds,
        required=tuple(
            (agency.code, kind) for agency in settings.agency for kind in agency.required_kinds()
        ),
    )


class Composer:
    """Builds (and signs) the message of a claimed item; senders parsed, DKIM key loaded once."""

    def __init__(self, settings: Settings, signer: LinkSigner) -> None:
        self._settings = settings
        self._signer = signer
        self._senders: dict[str, AgencySender] = {}
        self._dkim = signer_for(settings)

    def sender(self, code: str) -> AgencySender:
        if code not in self._senders:
            self._senders[code] = agency_sender(self._settings.agency_by_code(code))
        return self._senders[code]

    def envelope(self, item: Claimed, *, message_id: str, now: datetime) -> Envelope:
        """Return the message of `item`, or raise `InvalidAddress` / `UnsafeHeader` /
        `UnsignableMessage`."""
        if not item.to:
            raise InvalidAddress(f"item {item.id} has no address")
        sender = self.sender(item.agency)
        recipient = mailbox(item.to, item.contact_name)
        content = Rendered(subject=item.subject, text=item.text, html=item.html, locale=item.locale)
        link = registry.unsubscribe_url(self._settings, self._signer, recipient.address)
        # A token is a few microseconds of AES: made only for a body that shows it.
        settings_link = (
            registry.settings_url(self._settings, self._signer, recipient.address)
            if SETTINGS_URL_PLACEHOLDER in item.text or SETTINGS_URL_PLACEHOLDER in item.html
            else None
        )
        draft = agency_draft(sender, recipient, content, link, settings_link)
        envelope = build(draft, now=now.astimezone(sender.zone), message_id=message_id)
        return self._dkim.sign(envelope, now=now) if self._dkim else envelope


class Dispatcher:
    """Sends one scope's items through mailers from `mailers`, until none is left."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        mailers: Callable[[], Mailer],
        *,
        actor: str,
        sleep: Callable[[float], object] = time.sleep,
        on_result: Callable[[Delivery], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self._database = database
        self._settings = settings
        self._mailers = mailers
        self._actor = actor
        self._sleep = sleep
        self._on_result = on_result
        self._should_stop = should_stop
        self._claimant = this_process()
        self._lease = lease_length(settings.smtp.timeout_s)
        self._composer = Composer(settings, LinkSigner(settings.link_secret(), database.clock))
        mail = settings.mail
        self._policy = RetryPolicy(
            max_attempts=mail.max_attempts,
            retry_after_s=mail.retry_after_s,
            retry_max_s=mail.retry_max_s,
        )
        self._intervals = {
            a.code: timedelta(seconds=60.0 / a.max_per_minute)
            for a in settings.agency
            if a.max_per_minute
        }
        self._kinds = kind_rules(settings)
        self._lock = threading.Lock()

    @property
    def claimant(self) -> str:
        return self._claimant

    def rules(self, now: datetime) -> SendRules:
        """Return what must hold at `now` for an item to be sent."""
        return send_rules(self._settings, now, self._kinds)

    def run(self, scope: Scope, report: DispatchReport) -> None:
        """Send every sendable item of `scope`, on `mail.connections` connections."""
        workers = self._settings.mail.connections
        if workers == 1:
            self._work(scope, report)
            return
        threads = [
            threading.Thread(target=self._work, args=(scope, report), daemon=True)
            for _ in range(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _work(self, scope: Scope, report: DispatchReport) -> None:
        """Send batches on one connection, its database work beside it (`store_side`).

        The next batch is claimed (a durable commit) and the outcomes of the one
        before are written on a second thread while this one's messages go out.
        Each claim takes half of `mail.batch_size`, so no more than
        `mail.batch_size` items are ever claimed and unsettled here.
        """
        mailer = self._mailers()
        size = self._settings.mail.batch_size
        jobs = _Jobs(
            self,
            scope,
            Pacer(
                self._database,
                scope,
                self._intervals,
                batch_size=max(size // 2, 1),
                sleep=self._sleep,
            ),
        )

        def record(deliveries: list[Delivery]) -> None:
            for delivery in deliveries:
                self.record(report, delivery)

        side: StoreSide
        if size < 2:
            side = Inline(jobs, record, lambda: self._stopping(report))
        else:
            side = StoreThread(jobs, record)
        try:
            side.claim()
            while (batch := side.claimed()) is not None:
                if self._stopping(report):
                    self._send(batch, mailer, report, side)  # settled as not tried
                    break
                side.claim()
                self._send(batch, mailer, report, side)
        finally:
            try:
                side.close()
            finally:
                mailer.close()

    def _stopping(self, report: DispatchReport) -> bool:
        return report.stopped is not None or self._should_stop()

    def _claim(self, scope: Scope, limit: int, exhausted: set[Status]) -> list[Claimed]:
        """Claim from one status at a time (approved first): each claim is one statement.

        One status a statement lets the database walk an index in order and stop at
        `limit`, instead of sorting what is left of the tab for every batch. A status
        found empty is not asked again in this run (`exhausted`).
        """
        for status in sorted(scope.statuses - exhausted, key=_CLAIM_ORDER.index):
            now = self._database.clock.now()
            rules = self.rules(now)
            with self._database.transaction(immediate=True) as store:
                claimed = store.claim(
                    replace(scope, statuses=frozenset({status})),
                    rules,
                    claimant=self._claimant,
                    lease_until=now + self._lease,
                    actor=self._actor,
                    limit=limit,
                )
            if claimed:
                return claimed
            if scope.agencies is None and not scope.excluded:
                exhausted.add(status)
        return []

    def _left(self, scope: Scope) -> bool:
        with self._database.transaction() as store:
            return store.has_sendable(scope, self.rules(self._database.clock.now()), self._claimant)

    def _send(
        self, batch: Sequence[Claimed], mailer: Mailer, report: DispatchReport, side: StoreSide
    ) -> None:
        """Hand the batch over; settle every FLUSH_EVERY_S and at the end, through `side`.

        The transport pulls each message when it is ready for it (`_messages`), so
        a message is built while the server answers the one before.
        """
        pending: list[Settled] = []
        done: set[int] = set()
        flushed_at = time.monotonic()
        renewed_at = self._database.clock.now()
        for (item, started, message, recipient), error in mailer.send_batch(
            self._messages(batch, pending, done, report)
        ):
            if isinstance(error, TransientFailure) and error.stops_batch:
                report.stopped = str(error)
            attempt = Attempt(outcome=Outcome.ACCEPTED) if error is None else _attempt_of(error)
            pending.append(
                self._settled(item, attempt, started=started, message=message, recipient=recipient)
            )
            done.add(item.id)
            if time.monotonic() - flushed_at >= FLUSH_EVERY_S:
                side.settle(pending)
                pending = []
                flushed_at = time.monotonic()
                now = self._database.clock.now()
                if now - renewed_at > self._lease / 4:
                    side.renew([i.id for i in batch if i.id not in done], now)
                    renewed_at = now
        # Pulled but never handed over, or never pulled: the batch stopped first.
        stopped = Attempt(outcome=Outcome.NOT_TRIED, detail="the batch stopped first")
        now = self._database.clock.now()
        pending += [self._settled(i, stopped, started=now) for i in batch if i.id not in done]
        side.settle(pending)

    def _renew(self, ids: list[int], now: datetime) -> None:
        with self._database.transaction(durable=False) as store:
            store.renew(self._claimant, ids, now + self._lease)

    def _messages(
        self,
        batch: Sequence[Claimed],
        pending: list[Settled],
        done: set[int],
        report: DispatchReport,
    ) -> Iterator[tuple[tuple[Claimed, datetime, str, str], Envelope]]:
        """Build each item's message as the transport asks for it; settle the unbuildable."""
        for item in batch:
            if self._stopping(report):
                return
            started = self._database.clock.now()
            domain = self._composer.sender(item.agency).sender.domain
            message = message_id(item.id, item.attempt, self._claimant, domain)
            try:
                envelope = self._composer.envelope(item, message_id=message, now=started)
            except (InvalidAddress, UnsafeHeader, UnsignableMessage) as error:
                attempt = Attempt(outcome=Outcome.UNBUILDABLE, detail=str(error))
                pending.append(self._settled(item, attempt, started=started, message=message))
                done.add(item.id)
                continue
            yield (item, started, message, envelope.recipient), envelope

    def _settled(
        self,
        item: Claimed,
        attempt: Attempt,
        *,
        started: datetime,
        message: str | None = None,
        recipient: str | None = None,
    ) -> Settled:
        now = self._database.clock.now()
        return Settled(
            item=item,
            settlement=settle(attempt, attempts=item.attempt, policy=self._policy, now=now),
            message_id=message or "",
            recipient=recipient or item.to or "",
            started_at=started,
            finished_at=now,
            smtp_code=attempt.code,
        )

    def _write(self, settled: list[Settled]) -> list[Delivery]:
        """Write these outcomes; return what each email became."""
        if not settled:
            return []
        write_outcomes(self._database, self._claimant, self._actor, settled)
        return [_delivery_of(e, self._composer.sender(e.item.agency).zone) for e in settled]

    def record(self, report: DispatchReport, delivery: Delivery) -> None:
        """Add one outcome to the report, and tell the caller (thread-safe)."""
        with self._lock:
            report.deliveries.append(delivery)
            if self._on_result is not None:
                self._on_result(delivery)


@dataclass(frozen=True, slots=True)
class _Jobs:
    """One connection's database work (`store_side.Jobs`), run where `StoreSide` says."""

    dispatcher: Dispatcher
    scope: Scope
    pacer: Pacer
    #: statuses found empty, not asked again in this run
    exhausted: set[Status] = field(default_factory=set)

    def next_batch(self) -> list[Claimed] | None:
        d = self.dispatcher
        return self.pacer.next_batch(lambda s, n: d._claim(s, n, self.exhausted), d._left)

    def write(self, settled: list[Settled]) -> list[Delivery]:
        return self.dispatcher._write(settled)

    def renew(self, ids: list[int], now: datetime) -> None:
        self.dispatcher._renew(ids, now)


def write_outcomes(database: Database, claimant: str, actor: str, settled: list[Settled]) -> None:
    """Settle a batch's items in one transaction that does not wait for the disk.

    A 5.1.x refusal (no such mailbox) also opts the address out, source `system`.
    """
    now = database.clock.now()
    with database.transaction(durable=False) as store:
        applied = set(store.settle(claimant, actor, settled))
        for entry in settled:
            if entry.settlement.opts_out and entry.item.id in applied:
                # The mailbox does not exist: never write to it again unless it confirms.
                registry.change(
                    store,
                    entry.recipient,
                    Action.OPT_OUT,
                    Source.SYSTEM,
                    method="smtp",
                    actor=DISPATCHER,
                    now=now,
                    detail=f"item {entry.item.id}: {entry.settlement.detail}",
                )


def _delivery_of(entry: Settled, zone: ZoneInfo) -> Delivery:
    item, settlement = entry.item, entry.settlement
    retry = settlement.next_attempt_at
    return Delivery(
        item_id=item.id,
        result=settlement.result,
        agency=item.agency,
        kind=item.kind,
        booking_ref=item.booking_ref,
        to=entry.recipient or item.to,
        detail=_with_advice(settlement.detail, item.id, settlement.result.value),
        message_id=entry.message_id or None,
        next_attempt_at=retry.astimezone(zone) if retry else None,
    )


def _attempt_of(error: DeliveryError) -> Attempt:
    outcome = (
        Outcome.UNCERTAIN
        if isinstance(error, UncertainDelivery)
        else Outcome.PERMANENT
        if isinstance(error, PermanentFailure)
        else Outcome.TRANSIENT
    )
    return Attempt(outcome=outcome, detail=str(error), code=error.code, enhanced=error.enhanced)


def _with_advice(detail: str | None, item_id: int, result: str) -> str | None:
    if result == "unknown":
        return (
            f"{detail}: check whether it arrived, then 'reminders resend {item_id}' or "
            f"'reminders mark-sent {item_id}'"
        )
    if result == "not_tried":
        return NOT_TRIED
    return detail
