"""The configuration file, its environment overrides, and `reminders config check`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable

import pytest

from acceptance.workspace import (
    CONTACTS,
    PLAN_DAY,
    REPO,
    TEMPLATES,
    Workspace,
    assert_fails,
    config_text,
    import_counts,
    reported_lines,
)


def test_missing_config_file_says_how_to_give_one(cli: Workspace) -> None:
    elsewhere = cli.folder / "elsewhere"
    elsewhere.mkdir()

    result = cli.run("queue", cwd=elsewhere)

    assert_fails(result, 2, "reminders.toml", "--config", "REMINDERS_CONFIG")


def test_reminders_config_variable_finds_the_file(cli: Workspace) -> None:
    elsewhere = cli.folder / "elsewhere"
    elsewhere.mkdir()

    found = cli.run("queue", cwd=elsewhere, env={"REMINDERS_CONFIG": str(cli.config)})
    option_wins = cli.run(
        "--config", "missing.toml", "queue", env={"REMINDERS_CONFIG": str(cli.config)}
    )

    assert (found.code, found.stdout, found.stderr) == (0, "no pending items\n", "")
    assert_fails(option_wins, 2, "missing.toml")


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        pytest.param(
            lambda text: text + '\n[mail]\ntransport = "maildir"\nmaildirr = "out"\n',
            ["reminders.toml", "mail.maildirr"],
            id="unknown-key",
        ),
        pytest.param(
            lambda text: text.replace('"America/Toronto"', '"America/Torontoo"'),
            ["reminders.toml", "montreal", "'America/Torontoo'"],
            id="bad-time-zone",
        ),
        pytest.param(
            lambda text: text.replace("arrival = 3", "arival = 3"),
            ["reminders.toml", "auckland", "arival"],
            id="delay-of-unknown-kind",
        ),
        pytest.param(
            lambda text: text + '\n[smtp]\nhost = "mail.example.com"\npassword = "hunter2"\n',
            ["reminders.toml", "smtp.password", "REMINDERS_SMTP__PASSWORD"],
            id="smtp-password-in-file",
        ),
    ],
)
def test_invalid_configuration_is_refused_in_one_line(
    cli: Workspace, change: Callable[[str], str], fragments: list[str]
) -> None:
    changed = change(config_text())
    assert changed != config_text()
    cli.write("reminders.toml", changed)

    result = cli.run("queue")

    message = assert_fails(result, 2, *fragments)
    assert "hunter2" not in message  # a secret is never echoed back


def test_config_check_refuses_a_delay_of_centuries_with_the_key_and_the_bound(
    cli: Workspace,
) -> None:
    cli.write("reminders.toml", config_text().replace("arrival = 3", "arrival = 100000000"))

    result = cli.run("config", "check")

    assert_fails(
        result,
        2,
        "reminders.toml: agency[2] (auckland): delays.arrival: "
        "must be at most 3650 days (ten years), not 100000000",
    )


def test_broken_toml_names_the_file_and_line(cli: Workspace) -> None:
    lines = config_text().splitlines()
    cli.write("reminders.toml", "\n".join([*lines, "[smtp", "host = 'mail.example.com'"]))

    result = cli.run("plan", "--date", PLAN_DAY)

    assert_fails(result, 2, "reminders.toml", f"line {len(lines) + 1}")


def test_environment_overrides_the_database_url(cli: Workspace) -> None:
    other = cli.folder / "other.db"
    env: dict[str, str | None] = {"REMINDERS_DATABASE__URL": f"sqlite:///{other}"}
    default_before = cli.database.read_bytes()

    upgraded = cli.ok("db", "upgrade", env=env)
    imported = cli.ok("import", "contacts", str(cli.write_contacts(CONTACTS)), env=env)

    assert other.is_file()
    assert "other.db" in upgraded.stdout
    assert import_counts(imported)["created"] == 6
    assert cli.database.read_bytes() == default_before  # the file's own URL was not used


def example_workspace(workspace: Workspace) -> Workspace:
    """Turn the folder into a copy of the shipped example: config.example.toml and templates."""
    shutil.copyfile(REPO / "config.example.toml", workspace.config)
    shutil.copytree(TEMPLATES, workspace.folder / "templates")
    return workspace


def test_config_check_accepts_the_example_and_lists_agencies_and_delays(bare: Workspace) -> None:
    workspace = example_workspace(bare)

    result = workspace.ok("config", "check")

    sections: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        if not line.startswith(" "):
            sections[line.split(":")[0]] = []
        else:
            sections[list(sections)[-1]].append(line)
    assert list(sections) == ["annecy", "montreal"]

    def delay(agency: str, kind: str) -> str:
        [row] = [line for line in sections[agency] if line.split()[0] == kind]
        return row

    assert "30" in delay("annecy", "balance_due").split()
    assert "3" in delay("annecy", "balance_overdue").split()
    assert "45" in delay("montreal", "balance_due").split()
    assert not [line for line in sections["montreal"] if line.split()[0] == "option_expiry"]


@pytest.mark.parametrize(
    ("name", "text", "line", "fragment"),
    [
        pytest.param(
            "arrival/body.fr.txt",
            "Bonjour {{ contact.name }},\n\nArrivée le {{ booking.arival_on }}\n",
            3,
            "arival_on",
            id="unknown-variable",
        ),
        pytest.param(
            "arrival/subject.fr.txt",
            "{% if %}Votre arrivée{% endif %}\n",
            1,
            "",
            id="syntax-error",
        ),
    ],
)
def test_config_check_names_a_broken_agency_template_and_line(
    bare: Workspace, name: str, text: str, line: int, fragment: str
) -> None:
    workspace = example_workspace(bare)
    workspace.write(f"templates/agencies/annecy/{name}", text)

    result = workspace.run("config", "check")

    assert result.code != 0, result.describe()
    problems = reported_lines(result, name)
    assert list(problems) == [line], result.describe()
    assert "agencies/annecy" in problems[line]
    assert fragment in problems[line]


@pytest.mark.parametrize(
    ("text", "cap"),
    [
        pytest.param(
            "{{ 'x' * 20000000 }}\n",
            "repeats a value to more than 1000000 characters",
            id="twenty-megabytes",
        ),
        pytest.param(
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}\n",
            "loops more than 1000000 times",
            id="nested-loop",
        ),
    ],
)
def test_config_check_names_the_template_that_renders_too_much_and_the_cap(
    cli: Workspace, text: str, cap: str
) -> None:
    cli.override_template("annecy", "arrival/body.fr.txt", text)

    result = cli.run("config", "check")

    assert result.code == 2, result.describe()
    [message] = result.errors  # the agencies and delays are listed on stdout first
    assert "agency-templates/annecy/arrival/body.fr.txt line 1" in message, message
    assert f"{cap}, the cap of one part" in message, message


def test_plan_with_a_broken_template_queues_nothing_of_that_kind(loaded: Workspace) -> None:
    broken = loaded.override_template(
        "annecy", "arrival/body.fr.txt", "Bonjour,\n\nVotre arrivée : {{ booking.arival_on }}\n"
    )

    failed = loaded.run("plan", "--date", PLAN_DAY, "--json")
    queued = {(i["agency"], i["kind"]) for i in loaded.queue()}
    broken.unlink()
    fixed = loaded.json("plan", "--date", PLAN_DAY, "--agency", "annecy")

    assert failed.code == 1, failed.describe()
    problems = reported_lines(failed, "arrival/body.fr.txt")
    assert list(problems) == [3], failed.describe()
    assert "arival_on" in problems[3]
    assert ("annecy", "arrival") not in queued
    assert {("annecy", "balance_due"), ("montreal", "arrival"), ("auckland", "arrival")} <= queued
    # Once the template is fixed, the same day's pass queues what was left out.
    assert fixed[0]["created"]["arrival"] == 1


def test_config_check_reports_an_agency_templates_dir_that_does_not_exist(bare: Workspace) -> None:
    shutil.rmtree(bare.folder / "agency-templates" / "montreal")

    result = bare.run("config", "check")

    assert result.code == 2, result.describe()
    [problem] = [line for line in result.stderr.splitlines() if "montreal" in line]
    assert "templates_dir" in problem and "agency-templates/montreal" in problem


def test_a_configuration_without_templates_uses_the_shipped_ones(loaded: Workspace) -> None:
    text = loaded.config.read_text(encoding="utf-8")
    start = text.index("[templates]")
    end = text.index("\n[", start + 1)
    loaded.config.write_text(text[:start] + text[end + 1 :], encoding="utf-8")
    assert "[templates]" not in loaded.config.read_text(encoding="utf-8")

    loaded.ok("config", "check")
    loaded.ok("plan", "--date", PLAN_DAY)

    items = json.loads(loaded.ok("queue", "--json").stdout)
    assert items and all(item["subject"] for item in items)


@pytest.mark.parametrize("before_command", [True, False], ids=["before", "after"])
def test_config_option_before_or_after_the_command(cli: Workspace, before_command: bool) -> None:
    other = cli.folder / "other.toml"
    cli.config.rename(other)
    args = (
        ["--config", str(other), "queue"] if before_command else ["queue", "--config", str(other)]
    )

    assert cli.ok(*args).stdout.strip() == "no pending items"
