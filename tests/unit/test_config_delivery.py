"""The delivery settings: retries, pacing, links, the daemon, and the key that signs links."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from reminders.config import Settings, describe_validation_error
from reminders.errors import ConfigError

FILE = Path("reminders.toml")

ANNECY = """
[[agency]]
code = "annecy"
name = "Agence du Lac"
timezone = "Europe/Paris"
locale = "fr"
sender = "Agence du Lac <reservations@agence-du-lac.example>"
"""


@pytest.fixture(autouse=True)
def no_reminders_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the caller's REMINDERS_* variables out of these tests."""
    for name in list(os.environ):
        if name.startswith("REMINDERS_"):
            monkeypatch.delenv(name)
    yield


def settings(text: str = ANNECY) -> Settings:
    """Return the settings of a TOML text, with the environment's overrides."""
    return Settings(**tomllib.loads(text))


def problems(text: str) -> list[str]:
    """Return the lines that describe why `text` is not a valid configuration."""
    data = tomllib.loads(text)
    with pytest.raises(ValidationError) as caught:
        Settings(**data)
    return describe_validation_error(FILE, caught.value, data).splitlines()


def setting(value: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        value = getattr(value, name)
    return value


# -- defaults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dotted", "expected"),
    [
        pytest.param("mail.max_attempts", 8, id="max-attempts"),
        pytest.param("mail.retry_after_s", 60.0, id="retry-after-s"),
        pytest.param("mail.retry_max_s", 3600.0, id="retry-max-s"),
        pytest.param("mail.batch_size", 100, id="batch-size"),
        pytest.param("mail.connections", 1, id="connections"),
        pytest.param("web.unsubscribe_valid_days", 365, id="unsubscribe-valid-days"),
        pytest.param("daemon.dispatch_every_s", 5.0, id="dispatch-every-s"),
        pytest.param("daemon.log_format", "text", id="log-format"),
        pytest.param("daemon.health_grace_minutes", 60, id="health-grace-minutes"),
    ],
)
def test_default(dotted: str, expected: object) -> None:
    assert setting(settings(), dotted) == expected


def test_agency_delivery_defaults() -> None:
    [agency] = settings().agency

    assert agency.max_per_minute is None  # no rate limit unless set
    assert agency.summary_to is None
    assert agency.unsubscribe_mailto is None


# -- values from the file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "dotted", "expected"),
    [
        pytest.param("[mail]\nmax_attempts = 1\n", "mail.max_attempts", 1,
                     id="max-attempts-1"),
        pytest.param("[mail]\nretry_after_s = 0.5\n", "mail.retry_after_s", 0.5,
                     id="retry-after-fraction"),
        pytest.param("[mail]\nretry_max_s = 86400\n", "mail.retry_max_s", 86400.0,
                     id="retry-max-a-day"),
        pytest.param("[mail]\nbatch_size = 1\n", "mail.batch_size", 1, id="batch-size-1"),
        pytest.param("[mail]\nconnections = 4\n", "mail.connections", 4, id="connections-4"),
        pytest.param("[web]\nunsubscribe_valid_days = 1\n", "web.unsubscribe_valid_days", 1,
                     id="unsubscribe-valid-1-day"),
        pytest.param("[daemon]\ndispatch_every_s = 0.25\n", "daemon.dispatch_every_s", 0.25,
                     id="dispatch-every-quarter-second"),
        pytest.param('[daemon]\nlog_format = "json"\n', "daemon.log_format", "json",
                     id="log-format-json"),
        pytest.param("[daemon]\nhealth_grace_minutes = 0\n", "daemon.health_grace_minutes", 0,
                     id="health-grace-0"),
    ],
)  # fmt: skip
def test_value_from_the_file(toml: str, dotted: str, expected: object) -> None:
    assert setting(settings(toml + ANNECY), dotted) == expected


@pytest.mark.parametrize(
    ("line", "name", "expected"),
    [
        pytest.param("max_per_minute = 0.5\n", "max_per_minute", 0.5, id="max-per-minute-slow"),
        pytest.param("max_per_minute = 600\n", "max_per_minute", 600.0,
                     id="max-per-minute-fast"),
        pytest.param('summary_to = "direction@agence-du-lac.example"\n', "summary_to",
                     "direction@agence-du-lac.example", id="summary-to-bare-address"),
        pytest.param('summary_to = "Direction <direction@agence-du-lac.example>"\n',
                     "summary_to", "Direction <direction@agence-du-lac.example>",
                     id="summary-to-mailbox"),
        pytest.param('unsubscribe_mailto = "stop@agence-du-lac.example"\n',
                     "unsubscribe_mailto", "stop@agence-du-lac.example",
                     id="unsubscribe-mailto"),
    ],
)  # fmt: skip
def test_agency_value_from_the_file(line: str, name: str, expected: object) -> None:
    [agency] = settings(ANNECY + line).agency

    assert getattr(agency, name) == expected


@pytest.mark.parametrize(
    ("variable", "value", "dotted", "expected"),
    [
        pytest.param("REMINDERS_MAIL__MAX_ATTEMPTS", "3", "mail.max_attempts", 3,
                     id="max-attempts"),
        pytest.param("REMINDERS_MAIL__RETRY_AFTER_S", "30", "mail.retry_after_s", 30.0,
                     id="retry-after-s"),
        pytest.param("REMINDERS_WEB__UNSUBSCRIBE_VALID_DAYS", "30", "web.unsubscribe_valid_days",
                     30, id="unsubscribe-valid-days"),
        pytest.param("REMINDERS_DAEMON__LOG_FORMAT", "json", "daemon.log_format", "json",
                     id="log-format"),
        pytest.param("REMINDERS_DAEMON__DISPATCH_EVERY_S", "1", "daemon.dispatch_every_s", 1.0,
                     id="dispatch-every-s"),
    ],
)  # fmt: skip
def test_an_environment_variable_overrides_a_delivery_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, dotted: str, expected: object
) -> None:
    assert setting(settings(), dotted) != expected

    monkeypatch.setenv(variable, value)

    assert setting(settings(), dotted) == expected


# -- mistakes: one line naming the key -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("[mail]\nmax_attempts = 0\n" + ANNECY,
                     "reminders.toml: mail.max_attempts: Input should be greater than or equal "
                     "to 1 (got 0)",
                     id="max-attempts-0"),
        pytest.param("[mail]\nretry_after_s = 0\n" + ANNECY,
                     "reminders.toml: mail.retry_after_s: Input should be greater than 0",
                     id="retry-after-0"),
        pytest.param("[mail]\nretry_max_s = -1\n" + ANNECY,
                     "reminders.toml: mail.retry_max_s: Input should be greater than 0 (got -1)",
                     id="retry-max-negative"),
        pytest.param("[mail]\nretry_after = 60\n" + ANNECY,
                     "reminders.toml: mail.retry_after: unknown key: remove it or check its "
                     "spelling in config.example.toml",
                     id="retry-after-without-unit"),
        pytest.param("[web]\nunsubscribe_valid_days = 0\n" + ANNECY,
                     "reminders.toml: web.unsubscribe_valid_days: Input should be greater than "
                     "or equal to 1 (got 0)",
                     id="unsubscribe-valid-0-days"),
        pytest.param("[daemon]\ndispatch_every_s = 0\n" + ANNECY,
                     "reminders.toml: daemon.dispatch_every_s: Input should be greater than 0",
                     id="dispatch-every-0"),
        pytest.param('[daemon]\nlog_format = "xml"\n' + ANNECY,
                     "reminders.toml: daemon.log_format: Input should be 'text' or 'json', "
                     "not 'xml'",
                     id="log-format-xml"),
        pytest.param("[daemon]\nhealth_grace_minutes = -5\n" + ANNECY,
                     "reminders.toml: daemon.health_grace_minutes: Input should be greater "
                     "than or equal to 0 (got -5)",
                     id="health-grace-negative"),
        pytest.param("[daemon]\nplan_every = 5\n" + ANNECY,
                     "reminders.toml: daemon.plan_every: unknown key: remove it or check its "
                     "spelling in config.example.toml",
                     id="daemon-unknown-key"),
        pytest.param(ANNECY + "max_per_minute = 0\n",
                     "reminders.toml: agency[0] (annecy).max_per_minute: Input should be "
                     "greater than 0",
                     id="max-per-minute-0"),
        pytest.param(ANNECY + "max_per_minute = -10\n",
                     "reminders.toml: agency[0] (annecy).max_per_minute: Input should be "
                     "greater than 0 (got -10)",
                     id="max-per-minute-negative"),
    ],
)  # fmt: skip
def test_a_mistake_is_one_line_naming_the_key(text: str, expected: str) -> None:
    assert problems(text) == [expected]


@pytest.mark.parametrize("key", ["summary_to", "unsubscribe_mailto"])
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("direction", "An email address must have an @-sign.", id="no-at-sign"),
        pytest.param("Direction <direction@agence-du-lac>",
                     "The part after the @-sign is not valid. It should have a period.",
                     id="domain-without-a-dot"),
    ],
)  # fmt: skip
def test_an_agency_address_must_be_a_mailbox(key: str, value: str, reason: str) -> None:
    assert problems(ANNECY + f'{key} = "{value}"\n') == [
        f"reminders.toml: agency[0] (annecy).{key}: {value!r} is not a valid mailbox "
        f"({reason}): write 'Name <address@example.com>'"
    ]


@pytest.mark.parametrize("key", ["summary_to", "unsubscribe_mailto"])
def test_an_agency_address_is_one_mailbox_not_a_list(key: str) -> None:
    # Only the first would ever be written to.
    [line] = problems(
        ANNECY + f'{key} = "direction@agence-du-lac.example, compta@agence-du-lac.example"\n'
    )

    assert line.startswith(f"reminders.toml: agency[0] (annecy).{key}: ")


def test_an_invalid_environment_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMINDERS_DAEMON__LOG_FORMAT", "xml")

    assert problems(ANNECY) == [
        "environment variable REMINDERS_DAEMON__LOG_FORMAT (daemon.log_format): Input should "
        "be 'text' or 'json', not 'xml'"
    ]


# -- link_secret: the key that signs links, from the environment only ---------------------------


def test_the_link_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_WEB__SECRET_KEY", "0123456789abcdef-long-enough")

    assert settings().link_secret() == "0123456789abcdef-long-enough"


def test_a_link_secret_of_exactly_16_characters_is_enough(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMINDERS_WEB__SECRET_KEY", "0123456789abcdef")

    assert settings().link_secret() == "0123456789abcdef"


def test_an_unset_link_secret_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        settings().link_secret()

    message = str(caught.value)
    assert message.startswith("REMINDERS_WEB__SECRET_KEY is not set: ")
    assert "\n" not in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("value", "state"),
    [
        pytest.param("", "is not set", id="empty"),
        pytest.param("   ", "is not set", id="only-spaces"),
        pytest.param("0123456789abcde", "is shorter than 16 characters", id="15-characters"),
        pytest.param("  short-secret  ", "is shorter than 16 characters",
                     id="padded-with-spaces-to-16"),
    ],
)  # fmt: skip
def test_a_missing_or_short_link_secret_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, state: str
) -> None:
    monkeypatch.setenv("REMINDERS_WEB__SECRET_KEY", value)

    with pytest.raises(ConfigError) as caught:
        settings().link_secret()

    assert str(caught.value).startswith(f"REMINDERS_WEB__SECRET_KEY {state}: ")
    assert value.strip() == "" or value.strip() not in str(caught.value)
