"""The review screen: the agency software's "E-mails semi-automatiques" window in a terminal.

The day's summary at the top, one tab per kind with the count of emails to send,
the tab's list on the left, the selected email on the right, one line per key at
the bottom. Every action is one call to the service the CLI uses; the screen opens
no transaction and shows a service's `ReminderError` as a one-line notification.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Input, RichLog, Static, Tab, Tabs

from .. import editing, sending, service
from ..config import AgencySettings, Settings
from ..consent import ConsentReason
from ..delivery import Delivery, DispatchReport
from ..errors import ReminderError, TransitionError, UsageError
from ..kinds import Kind
from ..queue import QueueItem, Status
from ..store import Database
from .dialogs import AgencyPicker, ConfirmDialog
from .listing import (
    confirm_tab_text,
    day_text,
    delivery_line,
    headers,
    keys_text,
    matches,
    report_line,
    row_cells,
    summary_text,
    tab_title,
)
from .words import anchor_words, consent_words, language_of, say

#: The prefix of each tab's widget id: `tab-balance_due`, `tab-arrival`, ...
TAB_ID = "tab-"


@dataclass(frozen=True, slots=True)
class Entry:
    """One email of the list, with its contact's consent when it was listed."""

    item: QueueItem
    consent: ConsentReason


class ReviewApp(App[None]):
    """Review, edit, send and discard one agency's emails, tab by tab."""

    TITLE = "reminders review"
    CSS = """
    #summary { height: 2; padding: 0 1; background: $boost; }
    #tabs { height: 2; }
    #list-note { height: 1; padding: 0 1; color: $warning; display: none; }
    #filter { display: none; height: 3; }
    #body { height: 1fr; }
    #items { width: 1fr; height: 100%; }
    #preview { width: 1fr; height: 100%; border-left: vkey $primary; padding: 0 1; }
    #preview-head { color: $text-muted; margin-bottom: 1; }
    #results { height: 3; border-top: hkey $primary; padding: 0 1; }
    #keys { height: 2; padding: 0 1; background: $boost; }
    """
    BINDINGS = [  # noqa: RUF012 (Textual reads the class attribute)
        Binding("tab", "next_tab", "next tab", show=False, priority=True),
        Binding("shift+tab", "previous_tab", "previous tab", show=False, priority=True),
        *(Binding(str(n), f"tab_number({n})", f"tab {n}", show=False) for n in range(1, 10)),
        Binding("e", "edit", "edit", show=False),
        Binding("s", "send", "send", show=False),
        Binding("a", "send_tab", "send tab", show=False),
        Binding("d", "discard", "discard", show=False),
        Binding("slash", "filter", "filter", show=False),
        Binding("escape", "clear_filter", "clear filter", show=False),
        Binding("h", "toggle_html", "HTML", show=False),
        Binding("x", "toggle_discarded", "discarded", show=False),
        Binding("r", "restore", "restore", show=False),
        Binding("g", "pick_agency", "agency", show=False),
        Binding("f5", "reload", "reload", show=False),
        Binding("q", "quit", "quit", show=False),
    ]

    def __init__(
        self, *, database: Database, settings: Settings, actor: str, agency: str | None = None
    ) -> None:
        super().__init__()
        self.database = database
        self.settings = settings
        self.actor = actor
        self.first_agency = agency
        #: the agency shown (None until one is picked)
        self.agency: AgencySettings | None = None
        #: the kind of the selected tab
        self.kind = ""
        #: which items the list shows: the pending ones, or the discarded ones
        self.status = Status.PENDING
        #: the filter typed after '/'
        self.filter_text = ""
        self.show_html = False
        #: the emails of the selected tab, as listed (filter applied)
        self.entries: list[Entry] = []
        #: every line the results panel showed, oldest first
        self.results: list[str] = []
        self.sending = False
        self._listed: list[Entry] = []
        languages = {language_of(a.language) for a in settings.agency}
        self.language = languages.pop() if len(languages) == 1 else "en"

    # Layout

    def compose(self) -> ComposeResult:
        yield Static(id="summary", markup=False)
        yield Tabs(id="tabs")
        yield Static(id="list-note", markup=False)
        yield Input(id="filter")
        with Horizontal(id="body"):
            yield DataTable(id="items", cursor_type="row", zebra_stripes=True, header_height=2)
            with VerticalScroll(id="preview"):
                yield Static(id="preview-head", markup=False)
                yield Static(id="preview-body", markup=False)
        yield RichLog(id="results", wrap=True, max_lines=500, markup=False)
        yield Static(id="keys", markup=False)

    async def on_mount(self) -> None:
        self._show_words()
        if self.first_agency is not None or len(self.settings.agency) == 1:
            await self.open_agency(self.first_agency or self.settings.agency[0].code)
        else:
            self.action_pick_agency()

    def _show_words(self) -> None:
        self.title = say(self.language, "title")
        self.query_one("#keys", Static).update(keys_text(self.language))
        self.query_one("#filter", Input).placeholder = say(self.language, "filter")

    # Agency and tabs

    def action_pick_agency(self) -> None:
        if len(self.settings.agency) < 2 or self.sending:
            return
        agencies = [(a.code, a.name) for a in self.settings.agency]
        self.push_screen(AgencyPicker(agencies, say(self.language, "pick_agency")), self._picked)

    async def _picked(self, code: str | None) -> None:
        if code is not None:
            await self.open_agency(code)
        elif self.agency is None:
            self.exit()

    async def open_agency(self, code: str) -> None:
        """Show agency `code`: its language, its tabs, the first tab's list."""
        agency = self.settings.agency_by_code(code)
        self.agency = agency
        self.language = language_of(agency.language)
        self.sub_title = agency.name
        self._show_words()
        tabs = self.query_one("#tabs", Tabs)
        await tabs.clear()
        kinds = agency.enabled_kinds()
        self.kind = kinds[0].name if kinds else ""
        for kind in kinds:
            await tabs.add_tab(Tab(Text(kind.tab_label(agency.language)), id=TAB_ID + kind.name))
        if kinds:
            tabs.active = TAB_ID + self.kind
        self.reload()
        self.query_one("#items", DataTable).focus()

    def _kinds(self) -> list[Kind]:
        return self.agency.enabled_kinds() if self.agency else []

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab.id and event.tab.id.startswith(TAB_ID):
            self.kind = event.tab.id.removeprefix(TAB_ID)
            self._fill_list()

    def action_next_tab(self) -> None:
        self.query_one("#tabs", Tabs).action_next_tab()

    def action_previous_tab(self) -> None:
        self.query_one("#tabs", Tabs).action_previous_tab()

    def action_tab_number(self, number: int) -> None:
        kinds = self._kinds()
        if 1 <= number <= len(kinds):
            self.query_one("#tabs", Tabs).active = TAB_ID + kinds[number - 1].name

    # Loading and listing

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        """Read the summary and the agency's emails again, and show them."""
        agency = self.agency
        if agency is None:
            return
        try:
            rows = [
                r
                for r in service.today_summary(self.database, self.settings)
                if r["agency"] == agency.code
            ]
            listed = service.listed_items(self.database, self.settings, agency, self.status)
        except ReminderError as error:
            self._fail(error, reload=False)
            return
        self._listed = [Entry(item, consent) for item, consent in listed]
        self.query_one("#summary", Static).update(
            summary_text(rows, agency.name, self.language, agency.locale)
        )
        tabs = self.query_one("#tabs", Tabs)
        for row in rows:
            tab = tabs.query(f"#{TAB_ID}{row['kind']}").first(Tab)
            tab.label = Text(tab_title(row["tab"], row["pending"]))
        self._fill_list()

    def _fill_list(self) -> None:
        """Show the selected tab's emails that match the filter; keep the selection if listed."""
        agency = self.agency
        if agency is None:
            return
        table = self.query_one("#items", DataTable)
        kept = self.selected.id if self.selected else None
        self.entries = [
            e
            for e in self._listed
            if e.item.kind == self.kind and matches(e.item, self.filter_text)
        ]
        kind = next((k for k in self._kinds() if k.name == self.kind), None)
        table.clear(columns=True)
        table.add_columns(*headers(self.language, kind.anchor if kind else ""))
        for entry in self.entries:
            cells = row_cells(entry.item, entry.consent, self.language, agency.locale)
            table.add_row(*cells, height=2, key=str(entry.item.id))
        ids = [e.item.id for e in self.entries]
        if kept in ids:
            table.move_cursor(row=ids.index(kept))
        self._show_note()
        self._show_preview()

    def _show_note(self) -> None:
        note = self.query_one("#list-note", Static)
        parts = []
        if self.status is Status.DISCARDED:
            parts.append(say(self.language, "showing_discarded"))
        if self.filter_text:
            parts.append(say(self.language, "filtered", text=self.filter_text))
        note.update(" · ".join(parts))
        note.display = bool(parts)

    @property
    def selected(self) -> QueueItem | None:
        """The email under the list's cursor."""
        entry = self._selected_entry()
        return entry.item if entry else None

    def _selected_entry(self) -> Entry | None:
        table = self.query_one("#items", DataTable)
        if not self.entries or not 0 <= table.cursor_row < len(self.entries):
            return None
        return self.entries[table.cursor_row]

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_preview()

    def _show_preview(self) -> None:
        head = self.query_one("#preview-head", Static)
        body = self.query_one("#preview-body", Static)
        entry = self._selected_entry()
        if entry is None or self.agency is None:
            head.update("")
            if self.status is Status.DISCARDED:
                body.update(say(self.language, "empty_discarded"))
            elif self.filter_text:
                body.update(say(self.language, "empty_filter", text=self.filter_text))
            else:
                body.update(say(self.language, "empty"))
            return
        item, language, locale = entry.item, self.language, self.agency.locale
        kind = next((k for k in self._kinds() if k.name == item.kind), None)
        consent = consent_words(language, entry.consent)
        if entry.consent is not ConsentReason.OK:
            consent += " — " + say(language, "will_not_send")
        lines = [
            f"{say(language, 'to')} : {item.contact_name} <{item.to or '-'}>",
            f"{say(language, 'subject')} : {item.subject}",
            f"{say(language, 'booking')} {item.booking_ref} · "
            f"{anchor_words(language, kind.anchor if kind else '')} "
            f"{day_text(item.anchor_on, locale)}",
            say(
                language,
                "listed",
                start=day_text(item.visible_from, locale),
                end=day_text(item.visible_until, locale),
            ),
            f"{say(language, 'consent')} : {consent}",
        ]
        if language == "en":
            lines = [line.replace(" : ", ": ", 1) for line in lines]
        if item.edited:
            lines.append("✎ " + say(language, "edited"))
        if self.show_html:
            lines.append(say(language, "html_part"))
            head.update("\n".join(lines))
            body.update(Syntax(item.html, "html", word_wrap=True, theme="ansi_dark"))
        else:
            head.update("\n".join(lines))
            body.update(item.text)

    def action_toggle_html(self) -> None:
        self.show_html = not self.show_html
        self._show_preview()

    def action_toggle_discarded(self) -> None:
        self.status = Status.PENDING if self.status is Status.DISCARDED else Status.DISCARDED
        self.reload()

    # Filter

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.value = self.filter_text
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value
            self._fill_list()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = False
            self.query_one("#items", DataTable).focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = False
        if self.filter_text:
            self.filter_text = ""
            self._fill_list()
        self.query_one("#items", DataTable).focus()

    # Actions on emails

    def _pending_selection(self) -> QueueItem | None:
        """The selected email if it may be acted on; else say why not and return None."""
        if self.sending:
            self.notify(say(self.language, "busy"), severity="warning")
            return None
        item = self.selected
        if item is None:
            self.notify(say(self.language, "no_selection"), severity="warning")
            return None
        if item.status is not Status.PENDING:
            self.notify(say(self.language, "not_pending"), severity="warning")
            return None
        return item

    def action_edit(self) -> None:
        """Open the email in $EDITOR, as `reminders edit` does, and save it as edited."""
        item = self._pending_selection()
        if item is None:
            return
        try:
            current = service.item(self.database, item.id)
            if current.status is not Status.PENDING:
                raise TransitionError(
                    f"item {item.id} is {current.status}: only pending items can be edited"
                )
            original = editing.edit_document(current)
            edited = self._run_editor(original)
            if edited is None or edited == original:
                self._tell(say(self.language, "unchanged", id=item.id))
                return
            saved = service.save_edit(
                self.database,
                self.settings,
                item.id,
                editing.parse_edit(edited, current),
                actor=self.actor,
                read_at=current.updated_at,
            )
        except ReminderError as error:
            self._fail(error)
            return
        self._tell(say(self.language, "saved", id=saved.id, subject=saved.subject))
        self.reload()

    def _run_editor(self, document: str) -> str | None:
        """Hand the terminal to the editor while it runs; raise UsageError if none starts."""
        try:
            with self.suspend():
                edited, problem = _edit_text(document)
        except SuspendNotSupported:
            # No terminal to hand over (a headless run): the editor needs none.
            edited, problem = _edit_text(document)
        if problem is not None:
            raise UsageError(say(self.language, "no_editor", error=problem))
        return edited

    def action_discard(self) -> None:
        item = self._pending_selection()
        if item is None:
            return
        question = say(
            self.language, "confirm_discard", guest=item.contact_name, booking=item.booking_ref
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._discard(item)

        self.push_screen(ConfirmDialog(question, self.language), answered)

    def _discard(self, item: QueueItem) -> None:
        try:
            service.discard(self.database, [item.id])
        except ReminderError as error:
            self._fail(error)
            return
        self._tell_about("discarded", item)

    def action_restore(self) -> None:
        """Bring the selected discarded email back to the tab (while its window is open)."""
        item = self.selected
        if item is None:
            self.notify(say(self.language, "no_selection"), severity="warning")
            return
        if item.status is not Status.DISCARDED:
            self.notify(say(self.language, "not_discarded"), severity="warning")
            return
        try:
            service.restore(self.database, self.settings, [item.id], self.actor)
        except ReminderError as error:
            self._fail(error)
            return
        self._tell_about("restored", item)

    def _tell_about(self, what: str, item: QueueItem) -> None:
        """Say what became of `item` in the results, and read the list again."""
        self._tell(
            say(self.language, what, id=item.id, guest=item.contact_name, booking=item.booking_ref)
        )
        self.reload()

    def action_send(self) -> None:
        item = self._pending_selection()
        if item is not None:
            self._start_sending(f"#{item.id} {item.contact_name}", [item.id])

    def action_send_tab(self) -> None:
        agency = self.agency
        if agency is None or not self.kind:
            return
        if self.status is not Status.PENDING:
            self.notify(say(self.language, "not_pending"), severity="warning")
            return
        if self.sending:
            self.notify(say(self.language, "busy"), severity="warning")
            return
        tab = agency.kind(self.kind).tab_label(agency.language)
        try:
            ready, blocked, edited, _ = sending.tab_overview(
                self.database, self.settings, agency.code, self.kind, list_up_to=0
            )
        except ReminderError as error:
            self._fail(error)
            return
        if not ready:
            message = say(self.language, "nothing_to_send", tab=tab)
            if blocked:
                message += " (" + say(self.language, "summary_blocked", blocked=blocked) + ")"
            self.notify(message, severity="warning")
            return
        kind = self.kind

        def answered(yes: bool | None) -> None:
            if yes:
                self._start_sending(tab, None, kind)

        question = confirm_tab_text(tab, ready, blocked, edited, self.language)
        self.push_screen(ConfirmDialog(question, self.language), answered)

    def _start_sending(self, what: str, item_ids: list[int] | None, kind: str = "") -> None:
        self.sending = True
        self._tell(say(self.language, "sending"))
        self._send(what, item_ids, kind)

    @work(thread=True, exclusive=True, group="send")
    def _send(self, what: str, item_ids: list[int] | None, kind: str) -> None:
        """Send in a thread, so the screen keeps drawing; tell each result as it comes."""
        agency = self.agency
        assert agency is not None
        guests = {e.item.id: (e.item.contact_name, e.item.booking_ref) for e in self._listed}

        def tell(delivery: Delivery) -> None:
            self.call_from_thread(self._tell, delivery_line(delivery, self.language, guests))

        run = sending.Run(
            database=self.database, settings=self.settings, actor=self.actor, on_result=tell
        )
        report: DispatchReport | None = None
        try:
            if item_ids is not None:
                report = sending.send(run, item_ids)
            else:
                report = sending.send_tab(run, agency.code, kind)
        except ReminderError as error:
            self.call_from_thread(self._fail, error, reload=False)
        self.call_from_thread(self._sent, what, report)

    def _sent(self, what: str, report: DispatchReport | None) -> None:
        self.sending = False
        if report is not None:
            self._tell(report_line(report, what, self.language))
        self.reload()

    # Messages

    def _tell(self, line: str) -> None:
        """Add one line to the results panel."""
        self.results.append(line)
        self.query_one("#results", RichLog).write(Text(line))

    def _fail(self, error: ReminderError, *, reload: bool = True) -> None:
        """Show a service's refusal as one line, as the CLI prints it, and what is true now."""
        line = " ".join(str(error).split())
        self._tell(line)
        self.notify(line, severity="error")
        if reload:
            self.reload()


def _edit_text(document: str) -> tuple[str | None, str | None]:
    """Run $EDITOR on `document`: (the saved text or None, the problem starting it or None)."""
    try:
        return click.edit(document, extension=".txt", require_save=True), None
    except click.UsageError as error:
        return None, error.message
