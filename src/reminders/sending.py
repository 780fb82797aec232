"""The sending service: what staff and the daemon ask for, each one call.

`send`, `send_tab` and `resend` (people), `dispatch_due` and `approve_automatic`
(the daemon), `email_summary`, `mark_sent` and `recover`. Each sweeps its scope
first (withdraw what no longer qualifies, expire what ended, hold what lacks
consent), runs the dispatcher over it, sweeps again (a booking cancelled while the
batch ran), and explains what it was asked for and did not send.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from . import service
from .clock import local_time, local_today
from .config import AgencySettings, Settings
from .consent import ConsentReason
from .delivery import Delivery, DispatchReport, Result, Scope
from .dispatch import NOT_TRIED, Dispatcher, kind_rules, send_rules
from .dkim import signer_for
from .errors import UsageError
from .leases import claimant_is_gone, message_id
from .mailer import Mailer, mailer_for
from .messages import agency_email, agency_sender, parse_mailbox
from .queue import QueueItem, Status
from .store import Database
from .summary import summary_email

#: Who approves the new items of kinds set to `auto_send`.
AUTO_SEND = "auto_send"

_PERSON = frozenset({Status.PENDING, Status.APPROVED})
_DECIDED = frozenset({Status.UNKNOWN, Status.FAILED})


@dataclass(slots=True, kw_only=True)
class Run:
    """How one sending run is done: by whom, on which transport, telling whom."""

    database: Database
    settings: Settings
    actor: str
    mailers: Callable[[], Mailer] | None = None
    on_result: Callable[[Delivery], None] | None = None
    sleep: Callable[[float], object] = time.sleep
    should_stop: Callable[[], bool] = field(default=lambda: False)

    def dispatcher(self) -> Dispatcher:
        settings = self.settings
        return Dispatcher(
            self.database,
            settings,
            self.mailers or (lambda: mailer_for(settings)),
            actor=self.actor,
            sleep=self.sleep,
            on_result=self.on_result,
            should_stop=self.should_stop,
        )


def tab_overview(
    database: Database, settings: Settings, agency: str, kind: str, *, list_up_to: int
) -> tuple[int, int, int, list[QueueItem]]:
    """Count a tab's emails: (ready, without consent, edited and ready, the ready ones if few)."""
    now = database.clock.now()
    cutoff = now - service.reconfirm_after(settings)
    with database.transaction() as store:
        required = kind in settings.agency_by_code(agency).required_kinds()
        ready, blocked, edited = store.tab_overview(agency, kind, cutoff, required=required)
        few: list[QueueItem] = []
        if ready <= list_up_to:
            listed = store.items(agency=agency, kind=kind, statuses=list(_PERSON))
            few = [i for i in listed if service.consent_of(i, now, settings) is ConsentReason.OK]
    return ready, blocked, edited, few


def send(run: Run, item_ids: Sequence[int]) -> DispatchReport:
    """Approve and send these items now, whatever their retry schedule."""
    scope = Scope(statuses=_PERSON, ids=tuple(dict.fromkeys(item_ids)))
    return _send(run, scope, approve_when_stopped=True)


def resend(run: Run, item_ids: Sequence[int]) -> DispatchReport:
    """Send again items a person decided about: unknown or failed ones."""
    scope = Scope(statuses=_DECIDED, ids=tuple(dict.fromkeys(item_ids)))
    return _send(run, scope, approve_when_stopped=False)


def send_tab(run: Run, agency: str, kind: str) -> DispatchReport:
    """Approve and send every sendable item of one tab."""
    run.settings.agency_by_code(agency).kind(kind)
    scope = Scope(statuses=_PERSON, agency=agency, kind=kind)
    return _send(run, scope, approve_when_stopped=True)


def dispatch_due(run: Run) -> DispatchReport:
    """Send the approved items whose time has come (the daemon's tick)."""
    scope = Scope(statuses=frozenset({Status.APPROVED}), due_at=run.database.clock.now())
    return _send(run, scope, approve_when_stopped=False)


def _send(run: Run, scope: Scope, *, approve_when_stopped: bool) -> DispatchReport:
    dispatcher = run.dispatcher()
    database = run.database
    started = database.clock.now()
    report = DispatchReport(recovered=recover(database, run.settings, dispatcher.claimant))
    _sweep(run, dispatcher, scope, report)
    dispatcher.run(scope, report)
    # Another replica may have died meanwhile: what it held is unknown now, not later.
    report.recovered += recover(database, run.settings, dispatcher.claimant)
    _sweep(run, dispatcher, scope, report)
    if report.stopped is not None and approve_when_stopped:
        with database.transaction() as store:
            rules = dispatcher.rules(database.clock.now())
            approved = store.approve_sendable(scope, rules, run.actor)
            items = store.items_by_id(approved)
        for item_id in approved:
            dispatcher.record(report, _about(items[item_id], Result.NOT_TRIED, NOT_TRIED))
    if scope.ids is not None:
        told = {d.item_id for d in report.deliveries}
        left = [i for i in scope.ids if i not in told]
        with database.transaction() as store:
            items = store.items_by_id(left)
        for item_id in left:
            dispatcher.record(report, _explain(run, item_id, items.get(item_id), scope, started))
    return report


def _sweep(run: Run, dispatcher: Dispatcher, scope: Scope, report: DispatchReport) -> None:
    """Take out of the scope what cannot go now, and say so."""
    with run.database.transaction() as store:
        swept = store.sweep(scope, dispatcher.rules(run.database.clock.now()))
        items = store.items_by_id([i for i, _, _ in swept])
    told = {d.item_id for d in report.deliveries}
    for item_id, status, reason in swept:
        if item_id in told:
            continue
        item = items[item_id]
        if status is Status.WITHDRAWN:
            result = Result.WITHDRAWN
            detail = f"its booking no longer qualifies ({reason}): it is withdrawn, not sent"
        elif status is Status.EXPIRED:
            result = Result.EXPIRED
            detail = (
                f"its window ended on {item.visible_until.isoformat()}: not sent late, it is "
                "now expired"
            )
        else:
            result, detail = Result.HELD, f"no consent ({reason}): it stays pending"
        dispatcher.record(report, _about(item, result, detail))


def _explain(
    run: Run, item_id: int, item: QueueItem | None, scope: Scope, started: datetime
) -> Delivery:
    """Say why an item a person asked for was not sent by this run."""
    if item is None:
        return Delivery(
            item_id=item_id,
            result=Result.REFUSED,
            detail=f"no item {item_id}: list the items with 'reminders queue --status all'",
        )
    taken = item.status is Status.SENDING or (
        item.status is Status.SENT and item.sent_at is not None and item.sent_at > started
    )
    if taken:
        return _about(item, Result.TAKEN, "sent by another process meanwhile")
    if item.status not in scope.statuses:
        zone = run.settings.agency_zone(item.agency)
        return _about(item, Result.REFUSED, refusal(item, scope.statuses, zone))
    now = run.database.clock.now()
    agency = run.settings.agency_by_code(item.agency)
    consent = service.consent_of(item, now, run.settings)
    if consent is not ConsentReason.OK:
        why = f"no consent ({consent}): not sent"
    elif item.visible_until < local_today(now, agency.zone):
        why = f"its window ended on {item.visible_until.isoformat()}: not sent late"
    else:
        why = "its booking no longer qualifies (cancelled, paid, moved): not sent"
    return _about(item, Result.REFUSED, f"{why}: see 'reminders show {item.id}'")


def refusal(item: QueueItem, sources: frozenset[Status], zone: ZoneInfo) -> str:
    """Say why an item cannot be sent from its state, and what to do instead.

    Times are written in `zone`, its agency's.
    """
    status = item.status
    if status is Status.SENT:
        when = f" on {local_time(item.sent_at, zone)}" if item.sent_at else ""
        return f"item {item.id} was already sent{when}: nothing sent again"
    if status in _DECIDED and Status.PENDING in sources:
        return (
            f"item {item.id} is {status}: a person decides whether it goes again: "
            f"'reminders resend {item.id}'"
            + (f" or 'reminders mark-sent {item.id}'" if status is Status.UNKNOWN else "")
        )
    if Status.UNKNOWN in sources:
        return (
            f"item {item.id} is {status}: only unknown or failed items can be sent again "
            f"(use 'reminders send {item.id}' for a pending one)"
        )
    reason = f" ({item.reason})" if item.reason else ""
    return f"item {item.id} is {status}{reason}: it cannot be sent: see 'reminders show {item.id}'"


def _about(item: QueueItem, result: Result, detail: str | None) -> Delivery:
    return Delivery(
        item_id=item.id,
        result=result,
        agency=item.agency,
        kind=item.kind,
        booking_ref=item.booking_ref,
        to=item.to,
        detail=detail,
    )


def recover(database: Database, settings: Settings, claimant: str) -> list[int]:
    """Make `unknown` the items left in `sending` by a process that stopped; return their ids.

    Those whose lease passed, whoever claimed them (this process included), and at
    once those of a process of this host that is gone.
    """
    host = socket.gethostname()
    now = database.clock.now()
    with database.transaction() as store:
        claimants = store.sending_claimants()
    gone = [c for c in claimants if c != claimant and claimant_is_gone(c, host)]
    with database.transaction() as store:
        recovered = store.recover(now, gone)
        notes = []
        for entry in recovered:
            try:
                domain = agency_sender(settings.agency_by_code(entry.agency)).sender.domain
            except UsageError:
                domain = "unknown.invalid"
            sent_as = message_id(entry.id, entry.attempt, entry.claimant or "", domain)
            detail = (
                f"the process sending it ({entry.claimant or 'unknown'}) stopped before the "
                f"mail server confirmed {sent_as}: check whether it arrived, then "
                f"'reminders resend {entry.id}' or 'reminders mark-sent {entry.id}'"
            )
            notes.append((entry, sent_as, detail))
        store.note_recovered(notes)
    return [entry.id for entry in recovered]


def approve_automatic(database: Database, settings: Settings) -> int:
    """Approve the new items of every kind set to `auto_send`, where consent allows."""
    now = database.clock.now()
    rules = send_rules(settings, now, kind_rules(settings))
    approved = 0
    with database.transaction() as store:
        for agency in settings.agency:
            today = local_today(now, agency.zone)
            for kind in agency.enabled_kinds():
                if kind.auto_send:
                    approved += store.approve_new(agency.code, kind.name, today, rules, AUTO_SEND)
    return approved


def mark_sent(database: Database, item_id: int, actor: str) -> QueueItem:
    """Settle an unknown item as delivered: a person checked that it arrived."""
    with database.transaction() as store:
        return store.mark_sent_by(item_id, actor)


def email_summary(
    database: Database, settings: Settings, agency: AgencySettings, mailer: Mailer, *, again: bool
) -> str | None:
    """Email the agency's summary of today to its `summary_to`; return the address.

    Once a day unless `again`: None when today's summary already went out.
    """
    if not agency.summary_to:
        raise UsageError(
            f'agency {agency.code!r} has no summary_to: add summary_to = "name@example.com" '
            "to its [[agency]] table"
        )
    dkim = signer_for(settings)  # a key that cannot sign stops it before today's is claimed
    now = database.clock.now()
    today = local_today(now, agency.zone)
    rows = [r for r in service.today_summary(database, settings) if r["agency"] == agency.code]
    with database.transaction() as store:
        previous = store.claim_summary(agency.code, today)
        if previous == today and not again:
            return None
    content = summary_email(
        code=agency.code, name=agency.name, language=agency.language, day=today, rows=rows
    )
    recipient = parse_mailbox(agency.summary_to)
    envelope = agency_email(
        agency,
        recipient,
        content,
        now=now,
        tag=f"summary.{agency.code}.{today.isoformat()}",
        dkim=dkim,
    )
    try:
        mailer.send(envelope)
    except BaseException:
        # Not sent: the next pass (or `today --email`) tries again.
        with database.transaction() as store:
            store.release_summary(agency.code, today, previous)
        raise
    finally:
        mailer.close()
    return recipient.address
