"""A folder where a user runs the installed `reminders` command, and the data they use.

Three agencies in far-apart time zones; six contacts covering every consent case;
seven bookings built around the local day `PLAN_DAY` (2026-12-01), on which a planning
pass queues exactly one item per line of `EXPECTED_ON_PLAN_DAY`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The command as installed next to the interpreter running the tests.
REMINDERS = Path(sys.executable).parent / "reminders"
REPO = Path(__file__).parents[2]
TEMPLATES = REPO / "templates"
PREFIX = "reminders: "

PLAN_DAY = "2026-12-01"
AGENCIES = ("annecy", "montreal", "auckland")

CONFIG = """\
[database]
url = "sqlite:///reminders.db"

[templates]
dir = {templates}

[[agency]]
code = "annecy"
name = "Agence du Lac"
timezone = "Europe/Paris"
locale = "fr"
sender = "Agence du Lac <reservations@agence-du-lac.example>"
templates_dir = "agency-templates/annecy"

[agency.delays]
balance_due = 30
arrival = 7
option_expiry = 2
post_departure = 7

[[agency]]
code = "montreal"
name = "Chalets Laurentides"
timezone = "America/Toronto"
locale = "en"
sender = "Chalets Laurentides <reservations@chalets-laurentides.example>"
templates_dir = "agency-templates/montreal"

[agency.delays]
arrival = 10
post_departure = 5

[[agency]]
code = "auckland"
name = "Kiwi Baches"
timezone = "Pacific/Auckland"
locale = "en"
sender = "Kiwi Baches <bookings@kiwi-baches.example>"
templates_dir = "agency-templates/auckland"

[agency.delays]
arrival = 3
"""

CONTACTS_HEADER = "ref,agency,name,email,locale,email_confirmed,email_opt_out"
CONTACTS = [
    "C-1,annecy,Marie Dupont,marie.dupont@example.fr,fr,true,false",
    "C-2,annecy,Sophie Lefèvre,sophie.lefevre@example.fr,fr,false,false",
    "C-3,annecy,Thomas Bernard,thomas.bernard@example.com,fr,true,true",
    "C-4,annecy,Lucas Moreau,,fr,false,false",
    "C-5,montreal,Olivia Tremblay,olivia.tremblay@example.ca,en,true,false",
    "C-6,auckland,Aroha Ngata,aroha.ngata@example.nz,en,true,false",
]

BOOKINGS_HEADER = (
    "ref,agency,contact_ref,property,status,option_expires_on,balance_due_on,"
    "balance_outstanding,currency,arrival_on,departure_on"
)
BOOKINGS = [
    # balance_due 2026-12-20, delay 30: listed 2026-11-20..2026-12-20
    "B-1,annecy,C-1,Chalet Les Aravis,confirmed,,2026-12-20,1250.00,EUR,2027-01-19,2027-01-26",
    # arrival 2026-12-05, delay 7: listed 2026-11-28..2026-12-05 (balance paid)
    "B-2,annecy,C-2,Studio Vieille Ville,confirmed,,2026-11-05,0.00,EUR,2026-12-05,2026-12-12",
    # option expires 2026-12-02, delay 2: listed 2026-11-30..2026-12-02
    "B-3,annecy,C-3,Villa Talloires,option,2026-12-02,,2400.00,EUR,2027-07-03,2027-07-17",
    # departure 2026-11-20, delay 7, retention 14: listed 2026-11-27..2026-12-11
    "B-4,annecy,C-4,Chalet Le Semnoz,confirmed,,2026-10-13,0.00,EUR,2026-11-13,2026-11-20",
    # montreal arrival 2026-12-08, delay 10: listed 2026-11-28..2026-12-08
    "B-5,montreal,C-5,Chalet Mont-Tremblant,confirmed,,2026-10-01,0.00,CAD,2026-12-08,2026-12-15",
    # auckland arrival 2026-12-03, delay 3: listed 2026-11-30..2026-12-03
    "B-6,auckland,C-6,Bach Piha,confirmed,,2026-10-01,0.00,NZD,2026-12-03,2026-12-10",
    # arrival 2026-12-09, delay 7: listed 2026-12-02..2026-12-09, not yet on PLAN_DAY
    "B-7,annecy,C-1,Maison du Port,confirmed,,2026-11-01,0.00,EUR,2026-12-09,2026-12-16",
]

#: (agency, kind, booking_ref, consent) of every item a pass on PLAN_DAY queues.
EXPECTED_ON_PLAN_DAY = [
    ("annecy", "balance_due", "B-1", "ok"),
    ("annecy", "arrival", "B-2", "unconfirmed"),
    ("annecy", "option_expiry", "B-3", "opted_out"),
    ("annecy", "post_departure", "B-4", "no_address"),
    ("montreal", "arrival", "B-5", "ok"),
    ("auckland", "arrival", "B-6", "ok"),
]

#: The fields SPEC §5 promises in every `queue --json` object.
QUEUE_FIELDS = {
    "id",
    "agency",
    "kind",
    "status",
    "booking_ref",
    "contact_ref",
    "to",
    "subject",
    "anchor_on",
    "visible_from",
    "visible_until",
    "consent",
}


def config_text(templates: Path = TEMPLATES) -> str:
    """Return the test configuration, its default templates at `templates` (absolute)."""
    # A JSON string is a valid TOML basic string, whatever the path holds.
    return CONFIG.format(templates=json.dumps(str(templates)))


def csv_text(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


@dataclass(frozen=True, slots=True)
class Result:
    """What one run of the command printed, and how it ended."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def errors(self) -> list[str]:
        """The stderr lines, without the `reminders: ` prefix."""
        return [line.removeprefix(PREFIX) for line in self.stderr.splitlines()]

    def json(self) -> Any:
        assert self.code == 0, self.describe()
        return json.loads(self.stdout)

    def describe(self) -> str:
        return (
            f"reminders {' '.join(self.args)} exited {self.code}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def clean_environment(overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    """Return the environment without REMINDERS_* settings or editors, plus `overrides`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("REMINDERS_") and key not in ("EDITOR", "VISUAL")
    }
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class Workspace:
    """A folder holding reminders.toml (and usually reminders.db) where commands run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = folder / "reminders.toml"
        self.database = folder / "reminders.db"

    def run(
        self,
        *args: str,
        input: str | None = None,
        env: dict[str, str | None] | None = None,
        cwd: Path | None = None,
    ) -> Result:
        """Run `reminders ARGS` in the folder, as a user would.

        Whatever happens, no traceback, and every stderr line carries the
        `reminders: ` prefix.
        """
        completed = subprocess.run(
            [str(REMINDERS), *args],
            cwd=cwd or self.folder,
            env=clean_environment(env),
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            check=False,
        )
        result = Result(args, completed.returncode, completed.stdout, completed.stderr)
        assert "Traceback" not in result.stderr, result.describe()
        strays = [line for line in result.stderr.splitlines() if not line.startswith(PREFIX)]
        assert not strays, result.describe()
        return result

    def ok(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        """Run a command that must succeed and print nothing on stderr."""
        result = self.run(*args, env=env)
        assert result.code == 0, result.describe()
        assert result.stderr == "", result.describe()
        return result

    def json(self, *args: str, env: dict[str, str | None] | None = None) -> Any:
        """Run `reminders ARGS --json`, which must succeed; return the parsed output."""
        return self.ok(*args, "--json", env=env).json()

    def queue(self, *args: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.json("queue", *args)
        return items

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def write_contacts(self, rows: list[str], name: str = "contacts.csv") -> Path:
        return self.write(name, csv_text(CONTACTS_HEADER, rows))

    def write_bookings(self, rows: list[str], name: str = "bookings.csv") -> Path:
        return self.write(name, csv_text(BOOKINGS_HEADER, rows))

    def override_template(self, agency: str, name: str, text: str) -> Path:
        """Write one template file into the agency's own templates folder."""
        return self.write(f"agency-templates/{agency}/{name}", text)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A database file in a known state, the item ids it holds, and the runs that made it."""

    folder: Path
    ids: dict[tuple[str, str], int]
    runs: list[Result]

    def restore(self, workspace: Workspace) -> None:
        for path in self.folder.glob("reminders.db*"):
            shutil.copyfile(path, workspace.folder / path.name)


def assert_fails(result: Result, code: int, *fragments: str) -> str:
    """Assert the command failed with `code` and one stderr line holding every fragment."""
    assert result.code == code, result.describe()
    assert result.stdout == "", result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.describe()
    message = lines[0].removeprefix(PREFIX)
    for fragment in fragments:
        assert fragment in message, result.describe()
    return message


def import_counts(result: Result) -> dict[str, int]:
    """Return what an import said it did: {'created': n, 'updated': n, ...}."""
    assert result.code == 0, result.describe()
    found = re.findall(r"(\d+) (created|updated|unchanged)", result.stdout)
    return {word: int(n) for n, word in found}


def reported_lines(result: Result, filename: str) -> dict[int, str]:
    """Return the stderr messages about `filename`, by the line number they name."""
    lines: dict[int, str] = {}
    for message in result.errors:
        match = re.search(rf"\b{re.escape(filename)} line (\d+): ", message)
        if match:
            assert int(match[1]) not in lines, f"line {match[1]} reported twice"
            lines[int(match[1])] = message
    return lines


def by_ref(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Index items by (booking_ref, kind): fails if one appears twice."""
    index = {(i["booking_ref"], i["kind"]): i for i in items}
    assert len(index) == len(items), items
    return index
