"""The service layer: combines the pure planner with the store, the renderer and the clock."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from . import editing, registry
from .bookings import Booking, BookingStatus, Contact
from .clock import Clock, local_time, local_today
from .config import AgencySettings, Settings
from .consent import ConsentReason, state_of
from .editing import Edit
from .errors import StaleEdit, TemplateError, TransitionError, UsageError
from .kinds import Kind
from .messages import SETTINGS_URL_PLACEHOLDER, UNSUBSCRIBE_URL_PLACEHOLDER
from .planning import Outcome, WithdrawReason, anchors_to_plan, decide
from .queue import QueueItem, Rendered, Status
from .store import Candidate, Database, NewItem, PassRecord, Store
from .templates import Renderer


@dataclass(slots=True, kw_only=True)
class KindReport:
    kind: str
    created: int = 0
    #: pending items rendered again because their booking or contact changed
    rerendered: int = 0
    missed: list[QueueItem] = field(default_factory=list)
    withdrawn: dict[WithdrawReason, int] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class AgencyPlan:
    """What one planning pass did (or, in a dry run, would do) for one agency."""

    agency: str
    today: date
    first_pass: bool
    kinds: list[KindReport] = field(default_factory=list)
    expired: int = 0
    #: why emails were left out of the pass (a template error), each reason once
    errors: list[str] = field(default_factory=list)
    #: how many emails were left out
    skipped: int = 0
    #: nothing to do: today's pass already ran and nothing changed since
    unchanged: bool = False

    def skip(self, error: TemplateError) -> None:
        """Leave one email out of the pass because of `error`."""
        self.skipped += 1
        if str(error) not in self.errors:
            self.errors.append(str(error))

    @property
    def created(self) -> int:
        return sum(k.created for k in self.kinds)

    @property
    def rerendered(self) -> int:
        return sum(k.rerendered for k in self.kinds)

    @property
    def withdrawn(self) -> int:
        return sum(sum(k.withdrawn.values()) for k in self.kinds)

    @property
    def missed(self) -> list[QueueItem]:
        return [item for k in self.kinds for item in k.missed]


def renderer_for(settings: Settings, agency: AgencySettings) -> Renderer:
    """Return the renderer of `agency`: its own folder, the site's, then the shipped ones."""
    return Renderer(settings.agency_templates_path(agency), settings.templates_path)


def agency_today(agency: AgencySettings, clock: Clock) -> date:
    """Return today's date in the agency's own time zone."""
    return local_today(clock.now(), agency.zone)


#: Agencies planned in one transaction: they share its statements (one per kind for
#: all of them, where a pass of its own made one per agency and kind), and the
#: transaction stays short enough not to keep another writer waiting long.
AGENCIES_PER_TRANSACTION = 50
#: After how many items created in one pass the database's statistics of the items
#: are refreshed (a table growing from empty is planned as empty otherwise): a few
#: times, ever further apart, only in passes that create many.
_ANALYZE_AFTER_ITEMS = (500, 2_000, 8_000, 32_000, 128_000)


def plan_agency(
    database: Database,
    settings: Settings,
    agency: AgencySettings,
    *,
    today: date | None = None,
    dry_run: bool = False,
) -> AgencyPlan:
    """Run one planning pass for `agency` on its local `today` (default: the clock's).

    In one transaction: withdraw pending items that no longer qualify, expire
    those whose window passed, queue every eligible booking whose window includes
    today, and record as `missed` the windows that ended since the previous pass.
    A template error leaves that item out, is reported, and the pass is not
    recorded, so the next pass still sees the gap.
    """
    [report] = plan_agencies(database, settings, [agency], today=today, dry_run=dry_run)
    return report


def plan_agencies(
    database: Database,
    settings: Settings,
    agencies: Sequence[AgencySettings],
    *,
    today: date | None = None,
    dry_run: bool = False,
) -> list[AgencyPlan]:
    """Run `plan_agency`'s pass for each of `agencies`, several in one transaction.

    Each agency's pass is the same as on its own (its own local day, report and
    record); what they share are the statements that withdraw, expire, find the
    stale emails, insert the new ones and record the passes.
    """
    reports: list[AgencyPlan] = []
    for start in range(0, len(agencies), AGENCIES_PER_TRANSACTION):
        group = agencies[start : start + AGENCIES_PER_TRANSACTION]
        created = sum(_items_created(r) for r in reports)
        reports.extend(_plan_group(database, settings, group, today, dry_run, created))
    return reports


def _plan_group(
    database: Database,
    settings: Settings,
    agencies: Sequence[AgencySettings],
    today: date | None,
    dry_run: bool,
    created_before: int,
) -> list[AgencyPlan]:
    days = {a.code: today or agency_today(a, database.clock) for a in agencies}
    kinds = {a.code: a.enabled_kinds() for a in agencies}
    digests = {a.code: kinds_digest(a) for a in agencies}
    # Not durable: a pass lost to a power cut is made again by the next one (it is
    # idempotent, and its record goes with it), so no pass waits for the disk.
    with database.transaction(dry_run=dry_run, durable=False) as store:
        states = store.pass_states([a.code for a in agencies])
        reports: dict[str, AgencyPlan] = {}
        planned: list[AgencySettings] = []
        for agency in agencies:
            code, state = agency.code, states[agency.code]
            if state.is_unchanged(days[code], digests[code]):
                # Nothing was imported and no kind changed since today's pass: it stands.
                reports[code] = AgencyPlan(
                    agency=code, today=days[code], first_pass=False, unchanged=True
                )
                continue
            reports[code] = AgencyPlan(
                agency=code,
                today=days[code],
                first_pass=state.last_planned_on is None,
                kinds=[KindReport(kind=k.name) for k in kinds[code]],
            )
            planned.append(agency)
        _withdraw(store, planned, kinds, reports)
        for day, codes in _grouped((days[a.code], a.code) for a in planned).items():
            for code, expired in store.expire_passed_of(codes, day).items():
                reports[code].expired = expired
        renderers = {a.code: renderer_for(settings, a) for a in planned}
        _rerender(store, renderers, planned, kinds, reports)
        new_items: list[NewItem] = []
        for agency in planned:
            code = agency.code
            renderer = renderers[code]
            last = states[code].last_planned_on
            for kind in kinds[code]:
                new_items.extend(
                    _queue_kind(store, renderer, agency, kind, days[code], last, reports[code].skip)
                )
        _add_items(store, new_items, reports)
        created = created_before + sum(_items_created(reports[a.code]) for a in planned)
        if any(created_before < n <= created for n in _ANALYZE_AFTER_ITEMS):
            store.refresh_item_statistics()
        store.record_passes(
            [
                PassRecord(
                    agency=a.code,
                    today=days[a.code],
                    version=states[a.code].version,
                    kinds=digests[a.code],
                )
                for a in agencies
                if not reports[a.code].errors
            ]
        )
    return [reports[a.code] for a in agencies]


def _items_created(report: AgencyPlan) -> int:
    return report.created + len(report.missed)


def _grouped(pairs: Iterable[tuple[Any, str]]) -> dict[Any, list[str]]:
    """Group agency codes by a key (a day, a kind's definition), in first-seen order."""
    found: dict[Any, list[str]] = {}
    for key, code in pairs:
        found.setdefault(key, []).append(code)
    return found


def _kind_report(report: AgencyPlan, name: str) -> KindReport:
    return next(k for k in report.kinds if k.kind == name)


def _withdraw(
    store: Store,
    agencies: Sequence[AgencySettings],
    kinds: dict[str, list[Kind]],
    reports: dict[str, AgencyPlan],
) -> None:
    """Withdraw the pending items that no longer qualify: one statement per kind definition."""
    definitions = _grouped(
        ((k.name, k.anchor, k.eligibility), a.code) for a in agencies for k in kinds[a.code]
    )
    for (name, _anchor, _eligibility), codes in definitions.items():
        kind = next(k for k in kinds[codes[0]] if k.name == name)
        for code, withdrawn in store.withdraw_unqualified_of(codes, kind).items():
            _kind_report(reports[code], name).withdrawn = withdrawn


def _rerender(
    store: Store,
    renderers: dict[str, Renderer],
    agencies: Sequence[AgencySettings],
    kinds: dict[str, list[Kind]],
    reports: dict[str, AgencyPlan],
) -> None:
    """Render again the pending, unedited items whose booking or contact changed."""
    by_code = {a.code: a for a in agencies}
    for name, codes in _grouped((k.name, a.code) for a in agencies for k in kinds[a.code]).items():
        for code, stale in store.stale_items_of(codes, name).items():
            agency = by_code[code]
            kind = next(k for k in kinds[code] if k.name == name)
            report = reports[code]
            for item_id, anchor_on, candidate in stale:
                try:
                    content = render_item(renderers[code], agency, kind, candidate, anchor_on)
                except TemplateError as error:
                    report.skip(error)
                    continue
                _kind_report(report, name).rerendered += store.save_render(item_id, content)


def _queue_kind(
    store: Store,
    renderer: Renderer,
    agency: AgencySettings,
    kind: Kind,
    today: date,
    last: date | None,
    skip: Callable[[TemplateError], None],
) -> list[NewItem]:
    """Return the new items of one agency and kind: rendered, pending or missed."""
    new_items: list[NewItem] = []
    for candidate in store.candidates(agency.code, kind, anchors_to_plan(kind, today, last)):
        decision = decide(kind, candidate.booking, today, last)
        if decision is None:
            continue
        try:
            content = render_item(renderer, agency, kind, candidate, decision.anchor_on)
        except TemplateError as error:
            skip(error)
            continue
        status = Status.PENDING if decision.outcome is Outcome.LISTED else Status.MISSED
        new_items.append(
            NewItem(
                agency=agency.code,
                kind=kind.name,
                booking_id=candidate.booking_id,
                anchor_on=decision.anchor_on,
                visible=decision.visible,
                status=status,
                content=content,
                auto_send=kind.auto_send,
            )
        )
    return new_items


def _add_items(store: Store, new_items: list[NewItem], reports: dict[str, AgencyPlan]) -> None:
    """Insert the new items (an existing one wins) and count them in their agency's report."""
    ids = store.add_items(new_items)
    missed: list[int] = []
    for item_id, new in zip(ids, new_items, strict=True):
        if item_id is None:
            continue
        if new.status is Status.PENDING:
            _kind_report(reports[new.agency], new.kind).created += 1
        else:
            missed.append(item_id)
    if missed:
        for item in store.items(ids=missed):
            _kind_report(reports[item.agency], item.kind).missed.append(item)


def kinds_digest(agency: AgencySettings) -> str:
    """Return a digest of what the agency's kinds plan: a change means planning again."""
    described = sorted(
        (
            k.name,
            k.anchor,
            str(k.direction),
            sorted(str(s) for s in k.eligibility.statuses),
            k.eligibility.needs_outstanding_balance,
            k.delay_days,
            k.retention_days,
            k.template,
            k.auto_send,
        )
        for k in agency.enabled_kinds()
    )
    return hashlib.sha256(repr(described).encode()).hexdigest()


def render_item(
    renderer: Renderer, agency: AgencySettings, kind: Kind, candidate: Candidate, anchor_on: date
) -> Rendered:
    """Render the email of one booking for one kind, in the contact's language."""
    language = renderer.language_for(kind.template, candidate.contact.locale, agency.locale)
    return renderer.render(
        kind.template, language, email_context(agency, kind, candidate, anchor_on, language)
    )


def email_context(
    agency: AgencySettings, kind: Kind, candidate: Candidate, anchor_on: date, language: str
) -> dict[str, Any]:
    """Return the variables templates see (documented in templates/README.md)."""
    contact, booking = candidate.contact, candidate.booking
    return {
        "agency": {
            "code": agency.code,
            "name": agency.name,
            "sender": agency.sender,
            "email": agency.sender_email,
            "reply_to": agency.reply_to,
        },
        "contact": {
            "ref": contact.ref,
            "name": contact.name,
            "email": contact.email,
            "locale": contact.locale,
        },
        "booking": {
            "ref": booking.ref,
            "property": booking.property,
            "status": str(booking.status),
            "option_expires_on": booking.option_expires_on,
            "balance_due_on": booking.balance_due_on,
            "balance_outstanding": booking.balance_outstanding,
            "currency": booking.currency,
            "arrival_on": booking.arrival_on,
            "departure_on": booking.departure_on,
        },
        "kind": {
            "name": kind.name,
            "tab": kind.tab_label(language),
            "delay_days": kind.delay_days,
            "anchor_on": anchor_on,
        },
        # The footer's link: made when the email is sent, like the List-Unsubscribe header.
        "unsubscribe_url": UNSUBSCRIBE_URL_PLACEHOLDER,
        "settings_url": SETTINGS_URL_PLACEHOLDER,
    }


def consent_of(item: QueueItem, now: datetime, settings: Settings) -> ConsentReason:
    """Tell whether the item's contact may be written to at `now`, or why not."""
    if not item.to or item.consent is None:
        return ConsentReason.NO_ADDRESS
    refused = item.kind_refused and not is_required(settings, item.agency, item.kind)
    return state_of(item.consent, now, reconfirm_after(settings), kind_refused=refused)


def is_required(settings: Settings, agency: str, kind: str) -> bool:
    """Tell whether agency `agency` marks `kind` as one a contact cannot refuse."""
    found = settings.find_agency(agency)
    return found is not None and found.required.get(kind, False)


def reconfirm_after(settings: Settings) -> timedelta:
    """Return how long a confirmation lasts (`consent.reconfirm_after_days`)."""
    return timedelta(days=settings.consent.reconfirm_after_days)


def item(database: Database, item_id: int) -> QueueItem:
    """Return one item as stored now."""
    with database.transaction() as store:
        return store.item(item_id)


def listed_items(
    database: Database, settings: Settings, agency: AgencySettings, status: Status
) -> list[tuple[QueueItem, ConsentReason]]:
    """List an agency's items in `status`, each with its contact's consent now.

    Discarded items are listed only while their window is open: the ones staff may
    still bring back.
    """
    now = database.clock.now()
    with database.transaction() as store:
        items = store.items(agency=agency.code, statuses=[status])
    if status is Status.DISCARDED:
        today = local_today(now, agency.zone)
        items = [i for i in items if i.visible_from <= today <= i.visible_until]
    return [(i, consent_of(i, now, settings)) for i in items]


def discard(database: Database, item_ids: list[int], actor: str | None = None) -> list[QueueItem]:
    """Discard items (all or nothing)."""
    reason = f"discarded by {actor}" if actor else "discarded by staff"
    with database.transaction() as store:
        return [store.transition(i, Status.DISCARDED, reason=reason) for i in item_ids]


def restore(
    database: Database, settings: Settings, item_ids: list[int], actor: str
) -> list[QueueItem]:
    """Bring discarded items back to pending while their window is open (all or nothing).

    The window is judged on each item's agency's local today. An item that was
    discarded after a send whose outcome is unknown stays discarded: it may have
    arrived, and restoring it would let it be sent twice.
    """
    restored: list[QueueItem] = []
    with database.transaction() as store:
        for item_id in item_ids:
            item = store.item(item_id)
            today = agency_today(settings.agency_by_code(item.agency), database.clock)
            done = store.restore(item_id, today, reason=f"restored by {actor}")
            if done is None:
                raise TransitionError(_why_not_restored(store, item, today))
            restored.append(done)
    return restored


def _why_not_restored(store: Store, item: QueueItem, today: date) -> str:
    if item.status is not Status.DISCARDED:
        return (
            f"item {item.id} is {item.status}, not discarded: only discarded items can be "
            f"restored (see 'reminders show {item.id}')"
        )
    if store.had_unknown_send(item.id):
        return (
            f"item {item.id} was discarded after a send whose outcome is unknown: it may have "
            f"arrived, so it stays discarded (check with the guest, then plan a new email)"
        )
    window = f"{item.visible_from.isoformat()}..{item.visible_until.isoformat()}"
    when = "closed" if today > item.visible_until else "is not open yet"
    return (
        f"item {item.id} cannot be restored: its window {window} {when} "
        f"(today is {today.isoformat()} in {item.agency})"
    )


def save_edit(
    database: Database,
    settings: Settings,
    item_id: int,
    content: Edit,
    *,
    actor: str,
    read_at: datetime | None,
) -> QueueItem:
    """Save staff's version of an email, unless it changed since the editor read it.

    `read_at` is the item's `updated_at` as the editor read it (None: no check).
    A stale save raises `StaleEdit` naming who changed it and when, in the
    agency's local time; nothing is saved. An edit of the text alone gets its
    HTML part from the kind's layout (`edited_html`).
    """
    with database.transaction() as store:
        rendered = content.rendered(
            content.html
            if content.html is not None
            else edited_html(store, settings, item_id, content)
        )
        saved = store.save_edit(item_id, rendered, actor=actor, read_at=read_at)
        if saved is not None:
            return saved
        current = store.item(item_id)
    raise StaleEdit(_stale_message(settings, current))


def edited_html(store: Store, settings: Settings, item_id: int, content: Edit) -> str:
    """Build the HTML part of an email whose text staff changed: the agency's branded one.

    The kind's template is rendered as at planning (the booking and contact as they
    are now), with staff's text, escaped, in place of the kind's own content: the
    header, the footer and its unsubscribe link stay; the summary box goes with the
    content it summed up. The text's own footer is left out (the layout shows its
    own). When that cannot be done (the agency or kind is no longer configured, a
    template is broken or has no content block), the text becomes a plain page.
    """
    item = store.item(item_id)
    found = store.booking_of(item.booking_ref)
    try:
        if found is None:
            raise UsageError(f"booking {item.booking_ref} is gone")
        agency = settings.agency_by_code(item.agency)
        kind = agency.kind(item.kind)
        renderer = renderer_for(settings, agency)
        context = email_context(agency, kind, found[0], item.anchor_on, content.locale)
        text = editing.without_footer(content.text, renderer.text_footer(content.locale, context))
        return renderer.render_around(
            kind.template,
            content.locale,
            context,
            content=editing.paragraphs(text, editing.LAYOUT_PARAGRAPH),
            title=content.subject,
        )
    except (UsageError, TemplateError):
        return editing.html_from_text(content.text, content.locale)


def _stale_message(settings: Settings, item: QueueItem) -> str:
    when = local_time(item.updated_at, settings.agency_zone(item.agency))
    if item.edited and item.edited_by:
        who = item.edited_by
    elif item.edited:
        who = "another person"
    else:
        who = "the planner (its booking or contact changed)"
    return (
        f"item {item.id} was changed by {who} at {when}, after you opened it: your version "
        f"was not saved; open it again ('reminders edit {item.id}') and redo your change"
    )


def today_summary(database: Database, settings: Settings) -> list[dict[str, Any]]:
    """Count the pending emails of each agency's tabs, and how many may be sent now."""
    summary: list[dict[str, Any]] = []
    with database.transaction() as store:
        for agency in settings.agency:
            day = agency_today(agency, database.clock)
            items = store.items(agency=agency.code, statuses=[Status.PENDING])
            for kind in agency.enabled_kinds():
                mine = [i for i in items if i.kind == kind.name]
                now = database.clock.now()
                ready = sum(1 for i in mine if consent_of(i, now, settings) is ConsentReason.OK)
                summary.append(
                    {
                        "agency": agency.code,
                        "date": day,
                        "kind": kind.name,
                        "tab": kind.tab_label(agency.language),
                        "pending": len(mine),
                        "ready": ready,
                        "blocked": len(mine) - ready,
                    }
                )
    return summary


def check_templates(settings: Settings) -> list[str]:
    """Compile and test-render every enabled kind's templates; return the problems."""
    problems: list[str] = []
    site = settings.templates_path
    if site is not None and not site.is_dir():
        problems.append(
            f"templates folder '{site}' not found: fix templates.dir (relative paths are "
            "relative to the config file) or remove it to use the shipped templates"
        )
    sample_day = date(2030, 6, 15)
    for agency in settings.agency:
        own = settings.agency_templates_path(agency)
        if agency.templates_dir and own is not None and not own.is_dir():
            problems.append(
                f"agency {agency.code}: templates_dir '{own}' is not a folder: create it "
                "or fix the path (relative paths are relative to the config file)"
            )
        renderer = renderer_for(settings, agency)
        for kind in agency.enabled_kinds():
            languages = [
                lang for lang in ("fr", "en", agency.language) if renderer.has(kind.template, lang)
            ]
            if agency.language not in languages and "en" not in languages:
                problems.append(
                    f"agency {agency.code}: kind {kind.name} has no templates in "
                    f"'{agency.language}' nor 'en': create {kind.template}/subject."
                    f"{agency.language}.txt, body.{agency.language}.txt and "
                    f"body.{agency.language}.html"
                )
                continue
            found = [
                p
                for p in renderer.check(kind.template, tuple(dict.fromkeys(languages)))
                if p not in problems
            ]
            problems.extend(found)
            if found:
                continue
            sample = Candidate(
                booking_id=0,
                booking=Booking(
                    ref="SAMPLE",
                    agency=agency.code,
                    contact_ref="SAMPLE",
                    property="Sample chalet",
                    status=BookingStatus.CONFIRMED,
                    option_expires_on=sample_day,
                    balance_due_on=sample_day,
                    balance_outstanding=Decimal("1250.00"),
                    currency="EUR",
                    arrival_on=sample_day,
                    departure_on=sample_day + timedelta(days=7),
                ),
                contact=Contact(
                    ref="SAMPLE",
                    agency=agency.code,
                    name="Sample Guest",
                    email="guest@example.com",
                    locale=None,
                ),
            )
            for language in dict.fromkeys(languages):
                try:
                    context = email_context(agency, kind, sample, sample_day, language)
                    renderer.render(kind.template, language, context)
                except TemplateError as error:
                    if str(error) not in problems:
                        problems.append(str(error))
        problems.extend(p for p in _check_confirmation(renderer, agency) if p not in problems)
    return problems


def _check_confirmation(renderer: Renderer, agency: AgencySettings) -> list[str]:
    """Test-render the confirmation email in the languages it has, as for a kind."""
    template = registry.CONFIRMATION_TEMPLATE
    languages = [lang for lang in ("fr", "en", agency.language) if renderer.has(template, lang)]
    problems = renderer.check(template, tuple(dict.fromkeys(languages)))
    if problems:
        return problems
    context = registry.confirmation_context(
        agency,
        name="Sample Guest",
        address="guest@example.com",
        url="https://example.com/confirm/SAMPLE",
        unsubscribe_url="https://example.com/unsubscribe/SAMPLE",
        settings_url="https://example.com/settings/SAMPLE",
        valid=timedelta(days=30),
        expires_on=date(2030, 7, 15),
    )
    for language in dict.fromkeys(languages):
        try:
            renderer.render(template, language, context)
        except TemplateError as error:
            problems.append(str(error))
    return problems
