"""Fixtures: a folder with reminders.toml and a real SQLite file made by the installed command.

`reminders db upgrade`, the imports of the shared data and the planning pass of
PLAN_DAY each run once per session, in a folder of their own; every test then
gets a copy of the resulting database file, so it starts in that state in
milliseconds instead of re-running the commands.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from acceptance.workspace import (
    AGENCIES,
    BOOKINGS,
    CONTACTS,
    PLAN_DAY,
    REMINDERS,
    Result,
    Snapshot,
    Workspace,
    config_text,
)


def _new_workspace(folder: Path) -> Workspace:
    workspace = Workspace(folder)
    workspace.write("reminders.toml", config_text())
    for code in AGENCIES:
        (folder / "agency-templates" / code).mkdir(parents=True)  # empty: defaults apply
    return workspace


def _snapshot(
    workspace: Workspace, folder: Path, runs: list[Result], *, with_ids: bool = False
) -> Snapshot:
    folder.mkdir()
    for path in workspace.folder.glob("reminders.db*"):
        shutil.copyfile(path, folder / path.name)
    items = workspace.queue("--status", "all") if with_ids else []
    return Snapshot(folder, {(i["booking_ref"], i["kind"]): i["id"] for i in items}, runs)


@pytest.fixture(scope="session")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Snapshot]:
    """Build the database states once: 'upgraded', 'loaded' (data imported), 'planned'."""
    if not REMINDERS.is_file():
        pytest.fail(f"the reminders command is not installed next to the interpreter: {REMINDERS}")
    root = tmp_path_factory.mktemp("snapshots")
    workspace = _new_workspace(root / "work")
    states = {}
    upgrade = workspace.ok("db", "upgrade")
    states["upgraded"] = _snapshot(workspace, root / "upgraded", [upgrade])
    imports = [
        workspace.ok("import", "contacts", str(workspace.write_contacts(CONTACTS))),
        workspace.ok("import", "bookings", str(workspace.write_bookings(BOOKINGS))),
    ]
    states["loaded"] = _snapshot(workspace, root / "loaded", imports)
    plan = workspace.ok("plan", "--date", PLAN_DAY)
    states["planned"] = _snapshot(workspace, root / "planned", [plan], with_ids=True)
    return states


@pytest.fixture
def bare(tmp_path: Path) -> Workspace:
    """A folder with reminders.toml only: no database yet."""
    return _new_workspace(tmp_path)


@pytest.fixture
def cli(bare: Workspace, snapshots: dict[str, Snapshot]) -> Workspace:
    """A folder with reminders.toml and an upgraded, empty database."""
    snapshots["upgraded"].restore(bare)
    return bare


@pytest.fixture
def loaded(bare: Workspace, snapshots: dict[str, Snapshot]) -> Workspace:
    """As `cli`, with the shared contacts and bookings imported."""
    snapshots["loaded"].restore(bare)
    return bare


@pytest.fixture
def planned_ids(snapshots: dict[str, Snapshot]) -> dict[tuple[str, str], int]:
    """Item ids of the `planned` database, by (booking_ref, kind)."""
    return snapshots["planned"].ids


@pytest.fixture
def planned(bare: Workspace, snapshots: dict[str, Snapshot]) -> Workspace:
    """As `loaded`, after `reminders plan --date PLAN_DAY`."""
    snapshots["planned"].restore(bare)
    return bare


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ]
)
def loaded_on(request: pytest.FixtureRequest, tmp_path: Path) -> Workspace:
    """As `loaded`, on SQLite and on PostgreSQL (whose text refuses a NUL character)."""
    if request.param == "sqlite":
        workspace: Workspace = request.getfixturevalue("loaded")
        return workspace
    url: str = request.getfixturevalue("postgresql_url")  # migrated already
    workspace = _new_workspace(tmp_path)
    workspace.write(
        "reminders.toml",
        config_text().replace('url = "sqlite:///reminders.db"', f"url = {json.dumps(url)}"),
    )
    workspace.ok("import", "contacts", str(workspace.write_contacts(CONTACTS)))
    workspace.ok("import", "bookings", str(workspace.write_bookings(BOOKINGS)))
    return workspace
