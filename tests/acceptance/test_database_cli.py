"""`reminders db upgrade`, and what every command says before it ran."""

from __future__ import annotations

import pytest

from acceptance.workspace import PLAN_DAY, Workspace, assert_fails


def test_db_upgrade_creates_the_schema_then_has_nothing_to_do(bare: Workspace) -> None:
    first = bare.ok("db", "upgrade")
    second = bare.ok("db", "upgrade")

    assert bare.database.is_file()
    assert "reminders.db" in first.stdout
    assert "upgraded" in first.stdout
    assert "up to date" in second.stdout


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("plan", "--date", PLAN_DAY), id="plan"),
        pytest.param(("import", "contacts", "contacts.csv"), id="import"),
    ],
)
def test_commands_on_a_database_not_upgraded_say_to_upgrade(
    bare: Workspace, args: tuple[str, ...]
) -> None:
    bare.write_contacts(["C-1,annecy,Marie Dupont,marie@example.fr,fr,true,false"])

    result = bare.run(*args)

    assert_fails(result, 1, "reminders db upgrade")


def test_a_command_before_db_upgrade_leaves_no_empty_database_behind(bare: Workspace) -> None:
    result = bare.run("queue")

    assert_fails(result, 1, "no database at", "reminders db upgrade")
    assert not bare.database.exists()
