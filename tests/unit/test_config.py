"""Loading the TOML configuration: every mistake named by file and key, env overrides."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from reminders.config import Settings, load_settings
from reminders.errors import ConfigError, UsageError
from reminders.kinds import Direction

ANNECY = """
[[agency]]
code = "annecy"
name = "Agence du Lac"
timezone = "Europe/Paris"
locale = "fr"
sender = "Agence du Lac <reservations@agence-du-lac.example>"
"""

MONTREAL = """
[[agency]]
code = "montreal"
name = "Chalets Laurentides"
timezone = "America/Toronto"
sender = "Chalets Laurentides <reservations@chalets-laurentides.example>"
"""


@pytest.fixture(autouse=True)
def no_reminders_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the caller's REMINDERS_* variables out of these tests."""
    for name in list(os.environ):
        if name.startswith("REMINDERS_"):
            monkeypatch.delenv(name)
    yield


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reminders.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Settings:
    return load_settings(config_file(tmp_path, text))


def problems(tmp_path: Path, text: str) -> list[str]:
    """Load `text` and return the lines of the `ConfigError`, the file's path made '<file>'."""
    path = config_file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.exit_code == 2
    return str(caught.value).replace(str(path), "<file>").splitlines()


# -- one line per problem, naming the file and the key ----------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(ANNECY.replace("Europe/Paris", "Europe/Pariss"),
                     "<file>: agency[0] (annecy).timezone: unknown time zone 'Europe/Pariss': "
                     "use an IANA name such as 'Europe/Paris'",
                     id="unknown-time-zone"),
        pytest.param('colour = "blue"\n' + ANNECY,
                     "<file>: colour: unknown key: remove it or check its spelling in "
                     "config.example.toml",
                     id="unknown-top-level-key"),
        pytest.param("[smtp]\nhots = 'mail.example'\n" + ANNECY,
                     "<file>: smtp.hots: unknown key: remove it or check its spelling in "
                     "config.example.toml",
                     id="unknown-key-in-a-section"),
        pytest.param(ANNECY + 'colour = "blue"\n',
                     "<file>: agency[0] (annecy).colour: unknown key: remove it or check its "
                     "spelling in config.example.toml",
                     id="unknown-key-in-an-agency"),
        pytest.param(ANNECY + MONTREAL.replace("America/Toronto", "Canada/Laurentides"),
                     "<file>: agency[1] (montreal).timezone: unknown time zone "
                     "'Canada/Laurentides': use an IANA name such as 'Europe/Paris'",
                     id="second-agency-named-by-index-and-code"),
        pytest.param(ANNECY.replace('code = "annecy"\n', ""),
                     "<file>: agency[0].code: missing: this key is required "
                     "(see config.example.toml)",
                     id="missing-code"),
        pytest.param(ANNECY.replace('"annecy"', '"Annecy Lac"'),
                     "<file>: agency[0] (Annecy Lac).code: 'Annecy Lac' is not a valid code: "
                     "use lower-case letters, digits, '-' and '_'",
                     id="bad-code"),
        pytest.param(ANNECY + 'plan_at = "6:30"\n',
                     "<file>: agency[0] (annecy).plan_at: '6:30' is not a time: write HH:MM, "
                     "e.g. '06:30'",
                     id="plan-at-without-leading-zero"),
        pytest.param(ANNECY + 'plan_at = "25:00"\n',
                     "<file>: agency[0] (annecy).plan_at: '25:00' is not a time: write HH:MM, "
                     "e.g. '06:30'",
                     id="plan-at-hour-25"),
        pytest.param(ANNECY + 'plan_at = "06:60"\n',
                     "<file>: agency[0] (annecy).plan_at: '06:60' is not a time: write HH:MM, "
                     "e.g. '06:30'",
                     id="plan-at-minute-60"),
        pytest.param(ANNECY.replace('"fr"', '"xx_YY"'),
                     "<file>: agency[0] (annecy).locale: unknown locale 'xx_YY': use a code "
                     "such as 'fr' or 'en'",
                     id="unknown-locale"),
        pytest.param('[mail]\ntransport = "pigeon"\n' + ANNECY,
                     "<file>: mail.transport: Input should be 'smtp' or 'maildir', not 'pigeon'",
                     id="unknown-transport"),
        pytest.param('[web]\nbase_url = "127.0.0.1:8080"\n' + ANNECY,
                     "<file>: web.base_url: must be an http:// or https:// URL, not "
                     "'127.0.0.1:8080'",
                     id="base-url-without-scheme"),
        pytest.param("[smtp]\nport = 0\n" + ANNECY,
                     "<file>: smtp.port: Input should be greater than or equal to 1 (got 0)",
                     id="port-0"),
        pytest.param(ANNECY + "[agency.delays]\narrival = -1\n",
                     "<file>: agency[0] (annecy): delays.arrival: must be 0 or more days, not -1",
                     id="negative-delay"),
        pytest.param(ANNECY + "[agency.retention]\npost_departure = -3\n",
                     "<file>: agency[0] (annecy): retention.post_departure: must be 0 or more "
                     "days, not -3",
                     id="negative-retention"),
        pytest.param(ANNECY + "[agency.delays]\narrival = 100000000\n",
                     "<file>: agency[0] (annecy): delays.arrival: must be at most 3650 days "
                     "(ten years), not 100000000",
                     id="delay-of-centuries"),
        pytest.param(ANNECY + "[agency.retention]\npost_departure = 3651\n",
                     "<file>: agency[0] (annecy): retention.post_departure: must be at most "
                     "3650 days (ten years), not 3651",
                     id="retention-over-ten-years"),
        pytest.param(ANNECY + "[agency.kinds.late]\nanchor = 'arrival_on'\ndirection = 'after'\n"
                     "eligible_as = 'arrival'\nretention = 99999\n",
                     "<file>: agency[0] (annecy).kinds.late.retention: must be at most 3650 days "
                     "(ten years), not 99999",
                     id="custom-kind-retention-over-ten-years"),
        pytest.param(ANNECY + '[agency.delays]\narrival = "a week"\n',
                     "<file>: agency[0] (annecy).delays.arrival: Input should be a valid "
                     "integer, unable to parse string as an integer (got 'a week')",
                     id="delay-not-a-number"),
        pytest.param(ANNECY + "[agency.delays]\narrival = 1.5\n",
                     "<file>: agency[0] (annecy).delays.arrival: Input should be a valid "
                     "integer, got a number with a fractional part (got 1.5)",
                     id="delay-with-a-fraction"),
        pytest.param(ANNECY + ANNECY,
                     "<file>: agency code 'annecy' appears twice: codes must be unique",
                     id="duplicate-agency-code"),
        pytest.param(ANNECY + "[agency.kinds.late]\nanchor = 'arrival'\ndirection = 'after'\n"
                     "eligible_as = 'arrival'\n",
                     "<file>: agency[0] (annecy).kinds.late.anchor: unknown anchor 'arrival': "
                     "use one of option_expires_on, balance_due_on, arrival_on, departure_on",
                     id="custom-kind-unknown-anchor"),
        pytest.param(ANNECY + "[agency.kinds.late]\nanchor = 'arrival_on'\ndirection = 'after'\n"
                     "eligible_as = 'paid'\n",
                     "<file>: agency[0] (annecy).kinds.late.eligible_as: unknown rule 'paid': "
                     "use one of balance_due, arrival, option_expiry, post_departure",
                     id="custom-kind-unknown-rule"),
        pytest.param(ANNECY + "[agency.kinds.late]\nanchor = 'arrival_on'\n"
                     "eligible_as = 'arrival'\n",
                     "<file>: agency[0] (annecy).kinds.late.direction: missing: this key is "
                     "required (see config.example.toml)",
                     id="custom-kind-without-direction"),
        pytest.param(ANNECY + "[agency.kinds.arrival]\nanchor = 'arrival_on'\n"
                     "direction = 'before'\neligible_as = 'arrival'\n",
                     "<file>: agency[0] (annecy): kinds.arrival: 'arrival' is a built-in kind: "
                     "choose another name",
                     id="custom-kind-named-like-a-built-in"),
    ],
)  # fmt: skip
def test_a_mistake_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert problems(tmp_path, text) == [expected]


def test_the_sender_must_be_a_mailbox(tmp_path: Path) -> None:
    text = ANNECY.replace("Agence du Lac <reservations@agence-du-lac.example>", "Agence du Lac")

    [line] = problems(tmp_path, text)

    assert line.startswith("<file>: agency[0] (annecy).sender: 'Agence du Lac'")
    assert "write 'Name <address@example.com>'" in line


@pytest.mark.parametrize(
    ("table", "name"),
    [
        pytest.param("delays", "arival", id="delay-for-a-misspelt-kind"),
        pytest.param("retention", "departure", id="retention-for-an-unknown-kind"),
        pytest.param("auto_send", "thank_you", id="auto-send-for-an-unknown-kind"),
    ],
)
def test_a_setting_for_an_unknown_kind_lists_the_known_kinds(
    tmp_path: Path, table: str, name: str
) -> None:
    value = "true" if table == "auto_send" else "3"
    text = (
        ANNECY + f"[agency.{table}]\n{name} = {value}\n"
        "[agency.kinds.balance_overdue]\nanchor = 'balance_due_on'\ndirection = 'after'\n"
        "eligible_as = 'balance_due'\n"
    )

    assert problems(tmp_path, text) == [
        f"<file>: agency[0] (annecy): {table}.{name}: unknown kind {name!r}: known kinds are "
        "balance_due, arrival, option_expiry, post_departure, balance_overdue "
        "(declare your own under [agency.kinds.NAME])"
    ]


def test_every_problem_of_a_file_is_reported_on_its_own_line(tmp_path: Path) -> None:
    text = (
        "[smtp]\nport = 99999\n"
        + ANNECY.replace("Europe/Paris", "Paris")
        + 'plan_at = "7h"\n'
        + MONTREAL
        + "nickname = 'mtl'\n"
    )

    assert problems(tmp_path, text) == [
        "<file>: smtp.port: Input should be less than or equal to 65535 (got 99999)",
        "<file>: agency[0] (annecy).timezone: unknown time zone 'Paris': use an IANA name "
        "such as 'Europe/Paris'",
        "<file>: agency[0] (annecy).plan_at: '7h' is not a time: write HH:MM, e.g. '06:30'",
        "<file>: agency[1] (montreal).nickname: unknown key: remove it or check its spelling "
        "in config.example.toml",
    ]


def test_every_bad_kind_entry_of_an_agency_is_reported(tmp_path: Path) -> None:
    text = ANNECY + "[agency.delays]\narival = 3\npost_departure = -1\n"

    assert problems(tmp_path, text) == [
        "<file>: agency[0] (annecy): delays.arival: unknown kind 'arival': known kinds are "
        "balance_due, arrival, option_expiry, post_departure "
        "(declare your own under [agency.kinds.NAME])",
        "<file>: agency[0] (annecy): delays.post_departure: must be 0 or more days, not -1",
    ]


# -- the file itself --------------------------------------------------------------------


def test_a_missing_file_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found: pass --config PATH or set REMINDERS_CONFIG"):
        load_settings(tmp_path / "absent.toml")


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    [line] = problems(tmp_path, "[smtp\nhost = 1\n")

    assert line.startswith("<file>: invalid TOML: ")
    assert line.endswith(": fix the syntax")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "reminders.toml"
    path.write_bytes(ANNECY.replace("Lac", "Léman").encode("latin-1"))

    with pytest.raises(ConfigError, match=r"not UTF-8 text: save the file as UTF-8"):
        load_settings(path)


# -- secrets and the environment --------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "variable"),
    [
        pytest.param("smtp", "password", "REMINDERS_SMTP__PASSWORD", id="smtp-password"),
        pytest.param("web", "secret_key", "REMINDERS_WEB__SECRET_KEY", id="web-secret-key"),
    ],
)
def test_a_secret_in_the_file_is_refused_naming_its_variable(
    tmp_path: Path, section: str, key: str, variable: str
) -> None:
    text = f'[{section}]\n{key} = "hunter2"\n' + ANNECY

    [line] = problems(tmp_path, text)

    assert line == (
        f"<file>: {section}.{key}: secrets are not read from the file: "
        f"remove it and set the environment variable {variable}"
    )
    assert "hunter2" not in line


def setting(settings: Settings, dotted: str) -> Any:
    """Return the setting at `dotted` (e.g. 'smtp.port'), a secret revealed."""
    value: Any = settings
    for name in dotted.split("."):
        value = getattr(value, name)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@pytest.mark.parametrize(
    ("variable", "value", "dotted", "expected"),
    [
        pytest.param("REMINDERS_SMTP__PORT", "2525", "smtp.port", 2525, id="smtp-port"),
        pytest.param("REMINDERS_SMTP__HOST", "mail.example", "smtp.host", "mail.example",
                     id="smtp-host"),
        pytest.param("REMINDERS_SMTP__PASSWORD", "hunter2", "smtp.password", "hunter2",
                     id="smtp-password"),
        pytest.param("REMINDERS_WEB__SECRET_KEY", "k3y", "web.secret_key", "k3y",
                     id="web-secret-key"),
        pytest.param("REMINDERS_DATABASE__URL", "postgresql+psycopg://db/reminders",
                     "database_url", "postgresql+psycopg://db/reminders", id="database-url"),
        pytest.param("REMINDERS_MAIL__TRANSPORT", "maildir", "mail.transport", "maildir",
                     id="mail-transport"),
    ],
)  # fmt: skip
def test_an_environment_variable_overrides_the_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    dotted: str,
    expected: object,
) -> None:
    text = '[smtp]\nhost = "127.0.0.1"\nport = 1025\n[mail]\ntransport = "smtp"\n' + ANNECY
    assert setting(load(tmp_path, text), dotted) != expected

    monkeypatch.setenv(variable, value)

    assert setting(load(tmp_path, text), dotted) == expected


def test_an_environment_override_keeps_the_rest_of_its_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMINDERS_SMTP__PORT", "2525")

    settings = load(tmp_path, '[smtp]\nhost = "mail.example"\nport = 25\n' + ANNECY)

    assert (settings.smtp.host, settings.smtp.port) == ("mail.example", 2525)


def test_secrets_are_masked_when_settings_are_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMINDERS_SMTP__PASSWORD", "hunter2")

    settings = load(tmp_path, ANNECY)

    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.smtp)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param("REMINDERS_SMTP__PORT", "abc",
                     "smtp.port: Input should be a valid integer, unable to parse string as an "
                     "integer (got 'abc')", id="port-not-a-number"),
        pytest.param("REMINDERS_SMTP__PORT", "70000",
                     "smtp.port: Input should be less than or equal to 65535 (got '70000')",
                     id="port-too-large"),
        pytest.param("REMINDERS_MAIL__TRANSPORT", "pigeon",
                     "mail.transport: Input should be 'smtp' or 'maildir', not 'pigeon'",
                     id="unknown-transport"),
    ],
)  # fmt: skip
def test_an_invalid_environment_value_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)

    key, _, detail = message.partition(": ")
    assert problems(tmp_path, ANNECY) == [f"environment variable {variable} ({key}): {detail}"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("REMINDERS_SMTP__PORT", "abc", id="invalid-value"),
        pytest.param("REMINDERS_SMTP__HOTS", "mail.example", id="unknown-key"),
    ],
)
def test_an_invalid_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    [line] = problems(tmp_path, ANNECY)

    assert variable in line


def test_the_config_variable_itself_is_not_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_file(tmp_path, ANNECY)
    monkeypatch.setenv("REMINDERS_CONFIG", str(path))

    assert load_settings(path).agency_codes() == "annecy"


# -- paths relative to the config file --------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite:///reminders.db", "sqlite:///{here}/reminders.db",
                     id="relative-file"),
        pytest.param("sqlite:///data/reminders.db", "sqlite:///{here}/data/reminders.db",
                     id="relative-file-in-a-subfolder"),
        pytest.param("sqlite:////var/lib/reminders.db", "sqlite:////var/lib/reminders.db",
                     id="absolute-file-kept"),
        pytest.param("sqlite:///:memory:", "sqlite:///:memory:", id="memory-kept"),
        pytest.param("sqlite://", "sqlite://", id="bare-memory-kept"),
        pytest.param("postgresql+psycopg://reminders@db/reminders",
                     "postgresql+psycopg://reminders@db/reminders", id="postgresql-kept"),
    ],
)  # fmt: skip
def test_a_relative_sqlite_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    settings = load(folder, f'[database]\nurl = "{url}"\n' + ANNECY)

    assert settings.database_url == expected.format(here=folder.resolve())


def test_folders_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "etc"
    folder.mkdir()
    text = (
        '[mail]\nmaildir = "outbox"\n[templates]\ndir = "mails"\n'
        + ANNECY
        + MONTREAL
        + 'templates_dir = "/srv/montreal"\n'
    )

    settings = load(folder, text)
    annecy, montreal = settings.agency

    here = folder.resolve()
    assert settings.maildir_path == here / "outbox"
    assert settings.templates_path == here / "mails"
    assert settings.agency_templates_path(annecy) == here / "mails" / "agencies" / "annecy"
    assert settings.agency_templates_path(montreal) == Path("/srv/montreal")


# -- kinds ------------------------------------------------------------------------------

KINDS_CONFIG = (
    ANNECY
    + """
[agency.delays]
post_departure = 7
arrival = 7
balance_overdue = 3
balance_due = 30

[agency.retention]
arrival = 2
balance_overdue = 10

[agency.auto_send]
post_departure = true
arrival = false

[agency.kinds.balance_overdue]
anchor = "balance_due_on"
direction = "after"
eligible_as = "balance_due"
retention = 7
tab = { fr = "Relance solde impayé", en = "Overdue balance" }

[agency.kinds.deposit_late]
anchor = "balance_due_on"
direction = "after"
eligible_as = "balance_due"
"""
)


@pytest.fixture
def kinds_settings(tmp_path: Path) -> Settings:
    return load(tmp_path, KINDS_CONFIG)


def test_enabled_kinds_follow_the_order_of_the_delays(kinds_settings: Settings) -> None:
    kinds = kinds_settings.agency_by_code("annecy").enabled_kinds()

    assert [kind.name for kind in kinds] == [
        "post_departure",
        "arrival",
        "balance_overdue",
        "balance_due",
    ]


@pytest.mark.parametrize(
    ("name", "delay_days", "retention_days", "auto_send"),
    [
        pytest.param("post_departure", 7, 14, True, id="after-kind-default-retention-14"),
        pytest.param("arrival", 7, 2, False, id="retention-table-applies"),
        pytest.param("balance_due", 30, 30, False, id="before-kind-retention-is-delay"),
        pytest.param("balance_overdue", 3, 10, False,
                     id="retention-table-beats-the-kinds-own-retention"),
    ],
)  # fmt: skip
def test_enabled_kinds_carry_delay_retention_and_auto_send(
    kinds_settings: Settings, name: str, delay_days: int, retention_days: int, auto_send: bool
) -> None:
    kind = kinds_settings.agency_by_code("annecy").kind(name)

    assert (kind.delay_days, kind.retention_days, kind.auto_send) == (
        delay_days,
        retention_days,
        auto_send,
    )


def test_a_custom_kind_is_built_from_its_table(kinds_settings: Settings) -> None:
    kind = kinds_settings.agency_by_code("annecy").kind("balance_overdue")

    assert kind.anchor == "balance_due_on"
    assert kind.direction is Direction.AFTER
    assert kind.offset_days == 3
    assert kind.template == "balance_overdue"
    assert kind.tab_label("fr") == "Relance solde impayé"
    assert (
        kind.eligibility == kinds_settings.agency_by_code("annecy").kind("balance_due").eligibility
    )


def test_a_custom_kind_own_retention_applies_without_a_retention_entry(tmp_path: Path) -> None:
    settings = load(tmp_path, KINDS_CONFIG.replace("balance_overdue = 10\n", ""))

    assert settings.agency_by_code("annecy").kind("balance_overdue").retention_days == 7


def test_a_custom_kind_defaults_its_template_and_tab_to_its_name(tmp_path: Path) -> None:
    settings = load(tmp_path, KINDS_CONFIG.replace("balance_due = 30\n", "deposit_late = 1\n"))

    kind = settings.agency_by_code("annecy").kind("deposit_late")

    assert kind.template == "deposit_late"
    assert kind.tab_label("fr") == "Deposit late"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("option_expiry", id="built-in-without-delay"),
        pytest.param("deposit_late", id="custom-kind-without-delay"),
    ],
)
def test_a_kind_without_a_delay_is_off(kinds_settings: Settings, name: str) -> None:
    agency = kinds_settings.agency_by_code("annecy")

    assert name not in [kind.name for kind in agency.enabled_kinds()]
    with pytest.raises(UsageError) as caught:
        agency.kind(name)
    assert str(caught.value) == (
        f"kind {name!r} is not enabled for agency 'annecy': enabled kinds are "
        "post_departure, arrival, balance_overdue, balance_due"
    )


def test_an_agency_without_delays_has_no_kinds(tmp_path: Path) -> None:
    agency = load(tmp_path, ANNECY).agency_by_code("annecy")

    assert agency.enabled_kinds() == []
    with pytest.raises(UsageError, match=r"enabled kinds are none"):
        agency.kind("arrival")


def test_a_delay_of_zero_switches_a_kind_on(tmp_path: Path) -> None:
    agency = load(tmp_path, ANNECY + "[agency.delays]\narrival = 0\n").agency_by_code("annecy")

    assert [(kind.name, kind.delay_days) for kind in agency.enabled_kinds()] == [("arrival", 0)]


# -- agencies ---------------------------------------------------------------------------


def test_agency_by_code_returns_the_agency(tmp_path: Path) -> None:
    settings = load(tmp_path, ANNECY + MONTREAL)

    assert settings.agency_by_code("montreal").name == "Chalets Laurentides"
    assert [agency.code for agency in settings.agencies()] == ["annecy", "montreal"]
    assert [agency.code for agency in settings.agencies("montreal")] == ["montreal"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(ANNECY + MONTREAL,
                     "unknown agency 'nope': known agencies are annecy, montreal",
                     id="lists-the-codes"),
        pytest.param("", "unknown agency 'nope': known agencies are none "
                         "(add an [[agency]] table)", id="no-agency-at-all"),
    ],
)  # fmt: skip
def test_an_unknown_agency_code_lists_the_known_ones(
    tmp_path: Path, text: str, expected: str
) -> None:
    settings = load(tmp_path, text)

    with pytest.raises(UsageError) as caught:
        settings.agency_by_code("nope")

    assert str(caught.value) == expected
    assert caught.value.exit_code == 2


def test_a_copy_of_an_agency_derives_its_values_afresh(tmp_path: Path) -> None:
    agency = load(tmp_path, MONTREAL).agency_by_code("montreal")
    assert agency.zone.key == "America/Toronto"
    assert agency.derived("code", lambda a: a.code) == "montreal"

    moved = agency.model_copy(update={"timezone": "Europe/Paris", "code": "paris"})

    assert (moved.zone.key, moved.derived("code", lambda a: a.code)) == ("Europe/Paris", "paris")
    assert (agency.zone.key, agency.derived("code", lambda a: a.code)) == (
        "America/Toronto",
        "montreal",
    )


def test_what_is_derived_from_an_agency_is_built_once(tmp_path: Path) -> None:
    agency = load(tmp_path, MONTREAL).agency_by_code("montreal")
    built: list[str] = []

    def build(a: Any) -> str:
        built.append(a.code)
        return a.code.upper()

    assert [agency.derived("upper", build) for _ in range(3)] == ["MONTREAL"] * 3
    assert built == ["montreal"]


def test_agency_defaults(tmp_path: Path) -> None:
    agency = load(tmp_path, MONTREAL).agency_by_code("montreal")

    assert (agency.locale, agency.language, agency.plan_at) == ("en", "en", "06:30")
    assert agency.zone.key == "America/Toronto"
    assert agency.reply_to is None
    assert agency.sender_email == "reservations@chalets-laurentides.example"


def test_a_full_locale_gives_its_language(tmp_path: Path) -> None:
    agency = load(tmp_path, ANNECY.replace('"fr"', '"fr_CA"')).agency_by_code("annecy")

    assert agency.language == "fr"
