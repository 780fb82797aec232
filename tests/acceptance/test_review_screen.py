"""`reminders review`: the screen driven headless by Textual's pilot, as staff use it.

Each test opens the screen in process, at 80x24, on a copy of a real SQLite file
planned by the installed command (the shared data, plus two guests with confirmed
addresses in Annecy's arrival tab), on a clock stopped on the planning day, and
sends through the loopback SMTP server. An SVG screenshot of what it checks is
saved in the test's folder, or in $TEST_ARTEFACTS_DIR when set.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import shutil
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from acceptance.workspace import (
    AGENCIES,
    PLAN_DAY,
    Snapshot,
    Workspace,
    assert_fails,
    config_text,
)
from mail_server import MailServer
from reminders import service
from reminders.clock import FixedClock
from reminders.config import Settings, load_settings
from reminders.database import create_engine
from reminders.queue import Status
from reminders.screen import ReviewApp
from reminders.screen.dialogs import AgencyPicker, ConfirmDialog
from reminders.store import Database

MORNING = FixedClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))  # 2026-12-01 in all three zones
SIZE = (80, 24)
SECRET = "acceptance-tests-signing-key-0123456789"

#: Two guests with confirmed addresses whose arrival falls in Annecy's tab on PLAN_DAY.
MORE_CONTACTS = [
    "C-7,annecy,Jean Martin,jean.martin@example.fr,fr,true,false",
    "C-8,annecy,Élodie Roux,elodie.roux@example.fr,fr,true,false",
]
MORE_BOOKINGS = [
    "B-8,annecy,C-7,Chalet Le Parmelan,confirmed,,2026-11-01,0.00,EUR,2026-12-04,2026-12-11",
    "B-9,annecy,C-8,Gîte des Bauges,confirmed,,2026-11-01,0.00,EUR,2026-12-06,2026-12-13",
]

Scenario = Callable[[Pilot[None]], Awaitable[None]]


@pytest.fixture(scope="module")
def morning_snapshot(
    snapshots: dict[str, Snapshot], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The planned database, with two more guests in Annecy's arrival tab, planned once."""
    root = tmp_path_factory.mktemp("review")
    workspace = Workspace(root / "work")
    workspace.write("reminders.toml", config_text())
    for code in AGENCIES:
        (workspace.folder / "agency-templates" / code).mkdir(parents=True)
    snapshots["planned"].restore(workspace)
    workspace.ok("import", "contacts", str(workspace.write_contacts(MORE_CONTACTS)))
    workspace.ok("import", "bookings", str(workspace.write_bookings(MORE_BOOKINGS)))
    workspace.ok("plan", "--date", PLAN_DAY)
    saved = root / "morning"
    saved.mkdir()
    for path in workspace.folder.glob("reminders.db*"):
        shutil.copyfile(path, saved / path.name)
    return saved


@pytest.fixture
def morning(planned: Workspace, morning_snapshot: Path) -> Workspace:
    for path in morning_snapshot.glob("reminders.db*"):
        shutil.copyfile(path, planned.folder / path.name)
    return planned


@pytest.fixture
def artefacts(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """Where the screenshots go: $TEST_ARTEFACTS_DIR/<test name>, else the test's folder."""
    root = os.environ.get("TEST_ARTEFACTS_DIR")
    if not root:
        return tmp_path
    folder = Path(root) / re.sub(r"[^\w.-]", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def settings(
    morning: Workspace, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The workspace's settings, sending to `mail_server`."""
    for variable in [v for v in os.environ if v.startswith("REMINDERS_")]:
        monkeypatch.delenv(variable)
    monkeypatch.delenv("VISUAL", raising=False)
    environment = {
        "REMINDERS_MAIL__TRANSPORT": "smtp",
        "REMINDERS_SMTP__HOST": mail_server.host,
        "REMINDERS_SMTP__PORT": str(mail_server.port),
        "REMINDERS_SMTP__TIMEOUT_S": "5",
        "REMINDERS_WEB__SECRET_KEY": SECRET,
        "REMINDERS_WEB__BASE_URL": "https://links.agence.example",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return load_settings(morning.config)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    """The workspace's database, on a clock stopped on the planning day."""
    database = Database(create_engine(settings.database_url), MORNING)
    try:
        yield database
    finally:
        database.engine.dispose()


@pytest.fixture
def review(settings: Settings, database: Database) -> Callable[..., ReviewApp]:
    """Return a function that builds the screen, on Annecy unless told."""

    def build(agency: str | None = "annecy") -> ReviewApp:
        return ReviewApp(database=database, settings=settings, actor="staff", agency=agency)

    return build


#: The longest a scenario may take (they take about a second each).
SCENARIO_TIMEOUT_S = 120


def drive(app: ReviewApp, scenario: Scenario) -> None:
    """Run the screen headless at 80x24 through `scenario`."""

    async def main() -> None:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await pilot.pause()
            await scenario(pilot)

    # A screen waiting for a key that never comes fails the test instead of the suite.
    asyncio.run(asyncio.wait_for(main(), SCENARIO_TIMEOUT_S))


def svg_text(svg: str) -> str:
    """The text an SVG screenshot shows, each screen line on its own line."""
    lines: dict[str, list[str]] = {}
    for y, text in re.findall(
        r'<text class="[^"]*-r\d+"[^>]*\by="([\d.]+)"[^>]*>(.*?)</text>', svg, re.S
    ):
        lines.setdefault(y, []).append(html.unescape(text).replace("\xa0", " "))
    return "\n".join(
        "".join(parts) for _, parts in sorted(lines.items(), key=lambda p: float(p[0]))
    )


def screenshot(app: ReviewApp, folder: Path, name: str) -> str:
    """Save an SVG screenshot as NAME.svg; return the text it shows."""
    path = Path(app.save_screenshot(f"{name}.svg", str(folder)))
    return svg_text(path.read_text(encoding="utf-8"))


def text_of(app: ReviewApp, selector: str) -> str:
    return str(app.query_one(selector, Static).content)


def guests(app: ReviewApp) -> list[str]:
    return [e.item.contact_name for e in app.entries]


async def settle(pilot: Pilot[None]) -> None:
    """Wait for a send to finish and the screen to show its results."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


FRENCH_TABS = {
    "balance_due": ("Rappel solde 1", ["Marie Dupont"]),
    "arrival": ("Rappel arrivées 3", ["Jean Martin", "Sophie Lefèvre", "Élodie Roux"]),
    "option_expiry": ("Expiration Options 1", ["Thomas Bernard"]),
    "post_departure": ("Après départ 1", ["Lucas Moreau"]),
}


def test_each_tab_has_its_french_label_its_count_and_its_list(
    review: Callable[..., ReviewApp], artefacts: Path
) -> None:
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        summary = text_of(app, "#summary")
        assert summary.splitlines() == [
            "Infos du jour · mardi 1 décembre 2026 · Agence du Lac",
            "6 e-mails à envoyer : 3 prêts, 3 sans consentement",
        ]
        for kind, (label, names) in FRENCH_TABS.items():
            assert app.kind == kind
            assert guests(app) == names
            shown = screenshot(app, artefacts, f"annecy-{kind}")
            for wanted in (*(lab for lab, _ in FRENCH_TABS.values()), *names, "Infos du jour"):
                assert wanted in shown, (wanted, shown)
            assert "e modifier  s envoyer  a tout envoyer" in shown
            assert label in shown
            await pilot.press("tab")
        assert app.kind == "balance_due"  # the last tab wraps to the first
        await pilot.press("4")
        assert app.kind == "post_departure"
        await pilot.press("shift+tab")
        assert app.kind == "option_expiry"

    drive(app, scenario)


def test_the_selected_email_is_shown_on_the_right_with_its_consent_in_words(
    review: Callable[..., ReviewApp], database: Database, artefacts: Path
) -> None:
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("2")  # Rappel arrivées
        await pilot.press("down")  # Sophie Lefèvre, address not confirmed
        item = service.item(database, app.entries[1].item.id)
        assert app.selected is not None and app.selected.id == item.id
        assert text_of(app, "#preview-body") == item.text
        head = text_of(app, "#preview-head")
        assert f"Objet : {item.subject}" in head
        assert "Consentement : adresse non confirmée — ne sera pas envoyé" in head
        assert "Dossier B-2 · Arrivée 5 déc. 2026" in head
        shown = screenshot(app, artefacts, "annecy-arrival-sophie")
        assert "adresse non confirmée" in shown
        assert item.text.splitlines()[0][:30] in shown
        preview = app.query_one("#preview").region
        assert preview.x >= 38 and preview.right == 80  # the right half of 80 columns
        await pilot.press("h")
        assert "Partie HTML" in text_of(app, "#preview-head")
        assert "<html" in screenshot(app, artefacts, "annecy-arrival-sophie-html")
        await pilot.press("h")
        assert text_of(app, "#preview-body") == item.text

    drive(app, scenario)


def test_send_one_email_from_the_screen(
    review: Callable[..., ReviewApp], database: Database, mail_server: MailServer, artefacts: Path
) -> None:
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        assert app.selected is not None
        item_id = app.selected.id
        await pilot.press("s")
        await settle(pilot)
        assert [m.rcpt_to for m in mail_server.messages()] == [("marie.dupont@example.fr",)]
        assert service.item(database, item_id).status is Status.SENT
        assert f"#{item_id} Marie Dupont (B-1) : envoyé à marie.dupont@example.fr" in app.results
        assert "#" + str(item_id) + " Marie Dupont : 1 envoyé, 0 non envoyé" in app.results
        assert app.entries == []
        shown = screenshot(app, artefacts, "annecy-sent-one")
        assert "Rappel solde 0" in shown
        assert "envoyé à marie.dupont@example.fr" in shown

    drive(app, scenario)


def test_a_blocked_email_is_not_sent_and_the_screen_says_why(
    review: Callable[..., ReviewApp], database: Database, mail_server: MailServer
) -> None:
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("3")  # Expiration Options: Thomas Bernard opted out
        assert app.selected is not None
        item_id = app.selected.id
        await pilot.press("s")
        await settle(pilot)
        assert mail_server.messages() == []
        assert service.item(database, item_id).status is Status.PENDING
        assert any("non envoyé, sans consentement (désinscrit)" in r for r in app.results)
        assert guests(app) == ["Thomas Bernard"]

    drive(app, scenario)


def test_send_the_tab_after_a_confirmation_that_states_the_counts(
    review: Callable[..., ReviewApp], database: Database, mail_server: MailServer, artefacts: Path
) -> None:
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("2")
        await pilot.press("a")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert dialog.question.splitlines() == [
            "Envoyer 2 e-mails de l'onglet Rappel arrivées ?",
            "1 e-mail sans consentement ne sera pas envoyé (il reste en attente).",
        ]
        shown = screenshot(app, artefacts, "annecy-arrival-confirm")
        assert "Envoyer 2 e-mails de l'onglet Rappel arrivées ?" in shown
        assert "1 e-mail sans consentement ne sera pas envoyé" in shown
        await pilot.press("y")
        await settle(pilot)
        received = sorted(m.rcpt_to[0] for m in mail_server.messages())
        assert received == ["elodie.roux@example.fr", "jean.martin@example.fr"]
        assert "Rappel arrivées : 2 envoyés, 1 non envoyé" in app.results
        assert guests(app) == ["Sophie Lefèvre"]
        shown = screenshot(app, artefacts, "annecy-arrival-sent")
        assert "Rappel arrivées 1" in shown

    drive(app, scenario)


def test_answering_no_sends_nothing(
    review: Callable[..., ReviewApp], mail_server: MailServer
) -> None:
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("2", "a", "n")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmDialog)
        assert mail_server.messages() == []
        assert len(app.entries) == 3

    drive(app, scenario)


def test_discard_after_a_confirmation_then_see_it_among_the_discarded(
    review: Callable[..., ReviewApp], database: Database, artefacts: Path
) -> None:
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("2", "down", "down")  # Élodie Roux
        assert app.selected is not None
        item_id = app.selected.id
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmDialog)
        assert "Écarter l'e-mail à Élodie Roux (dossier B-9) ?" in app.screen.question
        await pilot.press("y")
        await pilot.pause()
        assert service.item(database, item_id).status is Status.DISCARDED
        assert guests(app) == ["Jean Martin", "Sophie Lefèvre"]
        assert f"E-mail #{item_id} écarté (Élodie Roux, dossier B-9)" in app.results
        assert "Rappel arrivées 2" in screenshot(app, artefacts, "annecy-arrival-discarded")
        await pilot.press("x")
        assert guests(app) == ["Élodie Roux"]
        assert "E-mails écartés" in screenshot(app, artefacts, "annecy-arrival-discarded-list")
        await pilot.press("s")  # a discarded email cannot be sent from here
        assert service.item(database, item_id).status is Status.DISCARDED
        await pilot.press("x")
        assert guests(app) == ["Jean Martin", "Sophie Lefèvre"]

    drive(app, scenario)


def test_a_discarded_email_is_restored_to_its_tab(
    review: Callable[..., ReviewApp], database: Database, artefacts: Path
) -> None:
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("2", "down", "down")  # Élodie Roux
        assert app.selected is not None
        item_id = app.selected.id
        await pilot.press("r")  # a pending email is not restored
        assert service.item(database, item_id).status is Status.PENDING
        await pilot.press("d", "y")
        await pilot.pause()
        await pilot.press("x")
        assert guests(app) == ["Élodie Roux"]
        await pilot.press("r")
        await pilot.pause()
        assert service.item(database, item_id).status is Status.PENDING
        assert f"E-mail #{item_id} rétabli (Élodie Roux, dossier B-9)" in app.results
        await pilot.press("x")
        assert guests(app) == ["Jean Martin", "Sophie Lefèvre", "Élodie Roux"]
        assert "Rappel arrivées 3" in screenshot(app, artefacts, "annecy-arrival-restored")

    drive(app, scenario)


def test_filter_by_guest_or_booking(review: Callable[..., ReviewApp], artefacts: Path) -> None:
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("2", "slash")
        await pilot.press(*"roux")
        assert guests(app) == ["Élodie Roux"]
        await pilot.press("enter")
        shown = screenshot(app, artefacts, "annecy-arrival-filtered")
        assert "Filtre : « roux »" in shown
        await pilot.press("escape")
        assert len(app.entries) == 3
        await pilot.press("slash", *"b-8", "enter")
        assert guests(app) == ["Jean Martin"]
        await pilot.press("escape", "slash", *"personne", "enter")
        assert app.entries == []
        assert "Aucun e-mail ne correspond" in text_of(app, "#preview-body")

    drive(app, scenario)


def test_edit_in_the_editor_saves_as_reminders_edit_does(
    review: Callable[..., ReviewApp],
    database: Database,
    morning: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    mail_server: MailServer,
) -> None:
    script = morning.write(
        "editor.py",
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[-1])\n"
        "text = p.read_text(encoding='utf-8')\n"
        "p.write_text(text.replace('Subject: ', 'Subject: [Modifié] ', 1), encoding='utf-8')\n",
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        assert app.selected is not None
        item_id = app.selected.id
        before = service.item(database, item_id)
        await pilot.press("e")
        await pilot.pause()
        after = service.item(database, item_id)
        assert after.subject == f"[Modifié] {before.subject}"
        assert after.edited and after.text == before.text and after.html == before.html
        assert f"E-mail #{item_id} enregistré : [Modifié] {before.subject}" in app.results
        assert app.query_one("#items", DataTable).get_row_at(0)[0].plain == "✎"
        assert "modifié par l'agence" in text_of(app, "#preview-head")
        await pilot.press("s")
        await settle(pilot)
        assert mail_server.messages()[0].message["Subject"] == after.subject

    drive(app, scenario)


def test_an_edit_left_unsaved_changes_nothing(
    review: Callable[..., ReviewApp], database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDITOR", "true")
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        assert app.selected is not None
        item_id = app.selected.id
        await pilot.press("e")
        assert not service.item(database, item_id).edited
        assert app.results[-1] == f"E-mail #{item_id} inchangé"

    drive(app, scenario)


def test_a_service_error_is_one_line_in_the_screen(
    review: Callable[..., ReviewApp], database: Database, artefacts: Path
) -> None:
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        assert app.selected is not None
        item_id = app.selected.id
        service.discard(database, [item_id])  # someone else, meanwhile
        await pilot.press("d", "y")
        await pilot.pause()
        assert app.results[-1] == (
            f"item {item_id} is discarded, so it cannot become discarded (only approved, "
            f"pending, unknown items can): see 'reminders show {item_id}'"
        )
        assert f"item {item_id} is discarded, so it cannot" in screenshot(
            app, artefacts, "annecy-error"
        )
        assert app.entries == []  # the list shows what is true now
        assert app.is_running

    drive(app, scenario)


def test_an_english_agency_gets_english_tabs_and_words(
    review: Callable[..., ReviewApp], artefacts: Path
) -> None:
    app = review("montreal")

    async def scenario(pilot: Pilot[None]) -> None:
        assert text_of(app, "#summary").splitlines() == [
            "Today · Tuesday, December 1, 2026 · Chalets Laurentides",
            "1 email to send: 1 ready, 0 without consent",
        ]
        shown = screenshot(app, artefacts, "montreal-arrival")
        for wanted in ("Arrival reminders 1", "After departure 0", "Olivia Tremblay", "Guest"):
            assert wanted in shown
        assert "Consent: ready" in text_of(app, "#preview-head")
        assert "e edit  s send  a send the tab" in shown
        await pilot.press("tab")
        assert app.kind == "post_departure"
        shown = screenshot(app, artefacts, "montreal-post_departure")
        assert "No email in this tab." in shown
        await pilot.press("1", "a")
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.question == "Send 1 email of the tab Arrival reminders?"
        await pilot.press("n")

    drive(app, scenario)


def test_without_agency_the_screen_asks_which_one(
    review: Callable[..., ReviewApp], artefacts: Path
) -> None:
    app = review(None)

    async def scenario(pilot: Pilot[None]) -> None:
        assert isinstance(app.screen, AgencyPicker)
        shown = screenshot(app, artefacts, "agency-picker")
        for name in ("Agence du Lac (annecy)", "Chalets Laurentides (montreal)", "Kiwi Baches"):
            assert name in shown
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        assert app.agency is not None and app.agency.code == "auckland"
        assert guests(app) == ["Aroha Ngata"]
        await pilot.press("g", "escape")  # changed my mind: still Auckland
        assert app.agency.code == "auckland"
        await pilot.press("g", "enter")
        await pilot.pause()
        assert app.agency.code == "annecy"
        assert app.language == "fr"
        assert "Rappel solde 1" in screenshot(app, artefacts, "agency-picked-annecy")


def test_escape_from_the_first_agency_picker_quits(review: Callable[..., ReviewApp]) -> None:
    app = review(None)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("escape")
        await pilot.pause()
        assert not app.is_running

    drive(app, scenario)


def test_everything_fits_in_80_by_24(review: Callable[..., ReviewApp]) -> None:
    app = review()

    async def scenario(pilot: Pilot[None]) -> None:
        assert app.size == SIZE
        for selector in ("#summary", "#tabs", "#items", "#preview", "#results", "#keys"):
            region = app.query_one(selector).region
            assert region.width > 0 and region.height > 0, selector
            assert region.right <= 80 and region.bottom <= 24, (selector, region)
        assert app.query_one("#items").region.height >= 10
        assert app.query_one("#keys").region.bottom == 24

    drive(app, scenario)


def test_the_command_without_a_terminal_says_so_in_one_line(planned: Workspace) -> None:
    result = planned.run("review", "--agency", "annecy")  # stdin and stdout are pipes

    assert_fails(result, 2, "review needs a terminal", "ssh -t")


def test_the_command_refuses_an_unknown_agency(planned: Workspace) -> None:
    result = planned.run("review", "--agency", "anecy")

    assert_fails(result, 2, "'anecy'", "annecy")
