"""Configuration: one TOML file, overridden by `REMINDERS_*` environment variables.

Loaded once at the entry point and passed down; nothing reads it at import time.
Secrets (`smtp.password`, `web.secret_key`, `dkim.private_key`) come only from the
environment.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import time
from email.utils import getaddresses, parseaddr
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .bookings import ANCHOR_FIELDS
from .clock import UTC_ZONE
from .errors import ConfigError, UsageError
from .kinds import (
    BUILT_IN_KINDS,
    ELIGIBILITY,
    MAX_DAYS,
    Direction,
    Kind,
    KindDefinition,
    activate,
)

#: Where `--config` falls back to when neither the option nor REMINDERS_CONFIG is given.
DEFAULT_CONFIG_PATH = Path("reminders.toml")

_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_MIN_SECRET_LENGTH = 16
_SECRETS = {
    ("smtp", "password"): "REMINDERS_SMTP__PASSWORD",
    ("web", "secret_key"): "REMINDERS_WEB__SECRET_KEY",
    ("dkim", "private_key"): "REMINDERS_DKIM__PRIVATE_KEY",
}
#: A DNS name in ASCII: labels of letters, digits and inner hyphens (and '_' in selectors).
_DNS_NAME = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*$")


_T = TypeVar("_T")


def _too_long(days: int) -> str:
    return f"must be at most {MAX_DAYS} days (ten years), not {days}"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    #: SQLAlchemy URL; a relative SQLite path is relative to the config file
    url: str = "sqlite:///reminders.db"


class MailSettings(_Section):
    transport: Literal["smtp", "maildir"] = "smtp"
    #: folder the maildir transport writes to, relative to the config file
    maildir: str = "outbox"
    #: transient failures (server unreachable, 4xx) before an item is given up as failed
    max_attempts: int = Field(default=8, ge=1)
    #: wait before the first retry; it doubles after each failure, up to retry_max_s
    retry_after_s: float = Field(default=60.0, gt=0)
    retry_max_s: float = Field(default=3600.0, gt=0)
    #: emails claimed at once: a crash leaves at most this many per connection `unknown`
    batch_size: int = Field(default=100, ge=1, le=1000)
    #: SMTP connections a batch sends over in parallel
    connections: int = Field(default=1, ge=1, le=16)


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1025, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    #: PEM file of the certificate authority to trust for the server (None: the system's)
    ca_file: str | None = None


class WebSettings(_Section):
    base_url: str = "http://127.0.0.1:8080"
    secret_key: SecretStr | None = None
    #: days the unsubscribe link of an email keeps working
    unsubscribe_valid_days: int = Field(default=365, ge=1)

    @field_validator("base_url")
    @classmethod
    def _is_http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http:// or https:// URL, not {value!r}")
        return value.rstrip("/")


class ConsentSettings(_Section):
    reconfirm_after_days: int = Field(default=730, ge=1)
    #: days the link of a confirmation email works (mail may sit in a junk folder)
    confirmation_valid_days: int = Field(default=30, ge=1)


class DaemonSettings(_Section):
    #: seconds between two looks for approved emails to send
    dispatch_every_s: float = Field(default=5.0, gt=0)
    #: "text" (key=value) or "json" (one object per line) log lines
    log_format: Literal["text", "json"] = "text"
    #: minutes after plan_at within which `reminders health` still accepts yesterday's pass
    health_grace_minutes: int = Field(default=60, ge=0)


class TemplatesSettings(_Section):
    #: folder of the site's templates, relative to the config file; they shadow the
    #: templates shipped with reminders file by file (None: the shipped ones only)
    dir: str | None = None


class KindSettings(_Section):
    """An agency's own kind, over one of the booking date fields."""

    anchor: str
    direction: Direction
    #: which built-in kind's eligibility rule applies
    eligible_as: str
    retention: int | None = Field(default=None, ge=0)
    template: str | None = None
    tab: dict[str, str] = Field(default_factory=dict)

    @field_validator("retention")
    @classmethod
    def _at_most_ten_years(cls, value: int | None) -> int | None:
        if value is not None and value > MAX_DAYS:
            raise ValueError(_too_long(value))
        return value

    @field_validator("anchor")
    @classmethod
    def _known_anchor(cls, value: str) -> str:
        if value not in ANCHOR_FIELDS:
            raise ValueError(f"unknown anchor {value!r}: use one of {', '.join(ANCHOR_FIELDS)}")
        return value

    @field_validator("eligible_as")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        if value not in ELIGIBILITY:
            raise ValueError(f"unknown rule {value!r}: use one of {', '.join(ELIGIBILITY)}")
        return value


class DkimSettings(_Section):
    """Sign every email with DKIM; the key from `key_file` or REMINDERS_DKIM__PRIVATE_KEY."""

    #: the signing domain (d=): each agency's sender domain should be it or under it
    domain: str
    #: the public key is published in DNS at <selector>._domainkey.<domain>
    selector: str
    #: PEM file of the RSA private key, relative to the config file
    key_file: str | None = None
    #: the PEM itself, only from the environment variable REMINDERS_DKIM__PRIVATE_KEY
    private_key: SecretStr | None = None

    @field_validator("domain", "selector")
    @classmethod
    def _dns_name(cls, value: str, info: ValidationInfo) -> str:
        name = value.strip().rstrip(".").lower()
        if not name.isascii():
            raise ValueError(f"{value!r} is not ASCII: write the name in its xn-- form (IDNA)")
        if not _DNS_NAME.match(name) or (info.field_name == "domain" and "." not in name):
            example = "'agence-du-lac.example'" if info.field_name == "domain" else "'reminders'"
            raise ValueError(f"{value!r} is not a DNS name: write e.g. {example}")
        return name

    @model_validator(mode="after")
    def _one_key(self) -> DkimSettings:
        if self.key_file is None and self.private_key is None:
            raise ValueError(
                "no key: set key_file to the PEM file of the private key, or put the PEM "
                "in the environment variable REMINDERS_DKIM__PRIVATE_KEY"
            )
        if self.key_file is not None and self.private_key is not None:
            raise ValueError(
                "the key is given twice, in key_file and in REMINDERS_DKIM__PRIVATE_KEY: "
                "keep one of them"
            )
        return self


class AgencySettings(_Section):
    code: str
    name: str
    timezone: str
    locale: str = "en"
    sender: str
    reply_to: str | None = None
    plan_at: str = "06:30"
    #: at most this many emails a minute leave for this agency, spaced evenly across
    #: every process sharing the database (None: no limit)
    max_per_minute: float | None = Field(default=None, gt=0)
    #: where the daily summary ("infos du jour") is emailed after the planning pass
    summary_to: str | None = None
    #: mailto: address of the List-Unsubscribe header (default: the sender's address)
    unsubscribe_mailto: str | None = None
    #: folder whose templates override the defaults for this agency
    templates_dir: str | None = None
    delays: dict[str, int] = Field(default_factory=dict)
    retention: dict[str, int] = Field(default_factory=dict)
    auto_send: dict[str, bool] = Field(default_factory=dict)
    #: kinds a contact cannot refuse on their settings page (true), e.g. a balance
    #: reminder about money owed; unsubscribing from everything still stops them
    required: dict[str, bool] = Field(default_factory=dict)
    kinds: dict[str, KindSettings] = Field(default_factory=dict)

    @field_validator("code")
    @classmethod
    def _code_shape(cls, value: str) -> str:
        if not _CODE.match(value):
            raise ValueError(
                f"{value!r} is not a valid code: use lower-case letters, digits, '-' and '_'"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as 'Europe/Paris'"
            ) from None
        return value

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        try:
            Locale.parse(value)
        except (UnknownLocaleError, ValueError):
            raise ValueError(f"unknown locale {value!r}: use a code such as 'fr' or 'en'") from None
        return value

    @field_validator("sender", "reply_to", "summary_to", "unsubscribe_mailto")
    @classmethod
    def _mailbox(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(getaddresses([value])) != 1:
            raise ValueError(f"{value!r} holds several addresses: give exactly one")
        _, address = parseaddr(value)
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as error:
            raise ValueError(
                f"{value!r} is not a valid mailbox ({error}): write 'Name <address@example.com>'"
            ) from None
        return value

    @field_validator("plan_at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not re.match(r"^\d{2}:\d{2}$", value):
            raise ValueError(f"{value!r} is not a time: write HH:MM, e.g. '06:30'")
        try:
            time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a time: write HH:MM, e.g. '06:30'") from None
        return value

    @model_validator(mode="after")
    def _kinds_are_known(self) -> AgencySettings:
        problems = []
        for name in self.kinds:
            if name in BUILT_IN_KINDS:
                problems.append(f"kinds.{name}: '{name}' is a built-in kind: choose another name")
            elif not _CODE.match(name):
                problems.append(f"kinds.{name}: use lower-case letters, digits, '-' and '_'")
        known = [*BUILT_IN_KINDS, *self.kinds]
        for table in ("delays", "retention", "auto_send", "required"):
            flags = table in ("auto_send", "required")
            for name, value in getattr(self, table).items():
                if name not in known:
                    problems.append(
                        f"{table}.{name}: unknown kind {name!r}: known kinds are "
                        f"{', '.join(known)} (declare your own under [agency.kinds.NAME])"
                    )
                elif not flags and value < 0:
                    problems.append(f"{table}.{name}: must be 0 or more days, not {value}")
                elif not flags and value > MAX_DAYS:
                    problems.append(f"{table}.{name}: {_too_long(value)}")
        if problems:
            # One line each: describe_validation_error prefixes every line with the key.
            raise ValueError("\n".join(problems))
        return self

    # An agency is a frozen value loaded once: what is derived from it (its zone, its
    # kinds with their delays, the parsed sender) is computed on first use and kept.

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def language(self) -> str:
        return Locale.parse(self.locale).language

    @cached_property
    def plan_time(self) -> time:
        return time.fromisoformat(self.plan_at)

    @cached_property
    def sender_email(self) -> str:
        """The address of the sender mailbox, without its display name."""
        return parseaddr(self.sender)[1]

    def definitions(self) -> dict[str, KindDefinition]:
        """Return every kind this agency knows, built-in and its own, enabled or not.

        The same dict every call: do not change it.
        """
        return self._definitions

    @cached_property
    def _definitions(self) -> dict[str, KindDefinition]:
        own = {
            name: KindDefinition(
                name=name,
                anchor=spec.anchor,
                direction=spec.direction,
                eligibility=ELIGIBILITY[spec.eligible_as],
                retention_days=spec.retention,
                template=spec.template or name,
                tab=spec.tab or {"en": name.replace("_", " ").capitalize()},
            )
            for name, spec in self.kinds.items()
        }
        return {**BUILT_IN_KINDS, **own}

    def enabled_kinds(self) -> list[Kind]:
        """Return the kinds switched on by a delay, in a stable order."""
        return list(self._enabled.values())

    @cached_property
    def _enabled(self) -> dict[str, Kind]:
        definitions = self.definitions()
        return {
            name: activate(
                definitions[name],
                delay_days=delay,
                retention_days=self.retention.get(name),
                auto_send=self.auto_send.get(name, False),
            )
            for name, delay in self.delays.items()
        }

    @cached_property
    def _required(self) -> frozenset[str]:
        return frozenset(name for name in self._enabled if self.required.get(name))

    def required_kinds(self) -> frozenset[str]:
        """Return the enabled kinds a contact cannot refuse (`[agency.required]`)."""
        return self._required

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with `update` applied, deriving its values afresh (not the original's)."""
        copy = super().model_copy(update=update, deep=deep)
        for name in _CACHED:
            copy.__dict__.pop(name, None)
        return copy

    @cached_property
    def _derived(self) -> dict[str, Any]:
        """What other modules derived from this agency, by name (`derived`)."""
        return {}

    def derived(self, name: str, build: Callable[[AgencySettings], _T]) -> _T:
        """Return `build(self)`, computed once for this agency under `name`.

        For what other modules derive from an agency (`messages.agency_sender` parses
        its mailboxes): once a configuration, not once an email.
        """
        if name not in self._derived:
            self._derived[name] = build(self)
        return self._derived[name]  # type: ignore[no-any-return]

    def kind_name(self, name_or_tab: str) -> str | None:
        """Return the kind named `name_or_tab`, or whose tab label it is (any language).

        Labels are matched whatever their case and surrounding spaces: staff type
        what they see in `today` and `queue` ("Rappel solde", "after departure").
        """
        definitions = self.definitions()
        if name_or_tab in definitions:
            return name_or_tab
        wanted = " ".join(name_or_tab.split()).casefold()
        for name, definition in definitions.items():
            if any(
                " ".join(label.split()).casefold() == wanted for label in definition.tab.values()
            ):
                return name
        return None

    def kind(self, name: str) -> Kind:
        """Return the enabled kind `name` (or whose tab label it is), or explain which are."""
        name = self.kind_name(name) or name
        if name in self._enabled:
            return self._enabled[name]
        enabled = ", ".join(k.name for k in self.enabled_kinds()) or "none"
        raise UsageError(
            f"kind {name!r} is not enabled for agency {self.code!r}: enabled kinds are {enabled}"
        )


#: The values an agency computes on first use and keeps (`cached_property`).
_CACHED = tuple(
    name for name, value in vars(AgencySettings).items() if isinstance(value, cached_property)
)


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="REMINDERS_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    database: DatabaseSettings = DatabaseSettings()
    mail: MailSettings = MailSettings()
    smtp: SmtpSettings = SmtpSettings()
    web: WebSettings = WebSettings()
    consent: ConsentSettings = ConsentSettings()
    daemon: DaemonSettings = DaemonSettings()
    templates: TemplatesSettings = TemplatesSettings()
    agency: list[AgencySettings] = Field(default_factory=list)
    dkim: DkimSettings | None = None
    #: folder relative paths are resolved against (the config file's); not a setting
    _base_dir: Path = PrivateAttr(default_factory=Path)
    #: the DKIM key once loaded (`dkim.signer_for`): once a configuration, not per email
    _dkim_signer: object = PrivateAttr(default=None)
    #: (the agency list it was built from, the agencies by code): `agency_by_code`
    _by_code: tuple[list[AgencySettings], dict[str, AgencySettings]] | None = PrivateAttr(
        default=None
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file, which arrives as init arguments.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _unique_codes(self) -> Settings:
        seen: set[str] = set()
        for agency in self.agency:
            if agency.code in seen:
                raise ValueError(f"agency code {agency.code!r} appears twice: codes must be unique")
            seen.add(agency.code)
        return self

    def path(self, value: str) -> Path:
        """Resolve a path setting against the config file's folder."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else self._base_dir / candidate

    @property
    def database_url(self) -> str:
        """Return the database URL with a relative SQLite path made absolute."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite://":
            file = url[len(prefix) :]
            if file and file != ":memory:" and not file.startswith("/"):
                return prefix + str(self.path(file))
        return url

    @property
    def templates_path(self) -> Path | None:
        """Return the site's templates folder, if one is configured."""
        return self.path(self.templates.dir) if self.templates.dir else None

    @property
    def maildir_path(self) -> Path:
        return self.path(self.mail.maildir)

    def link_secret(self) -> str:
        """Return the key that signs the links in emails, or say which variable to set."""
        key = self.web.secret_key.get_secret_value().strip() if self.web.secret_key else ""
        if len(key) < _MIN_SECRET_LENGTH:
            state = "is not set" if not key else f"is shorter than {_MIN_SECRET_LENGTH} characters"
            raise ConfigError(
                f"REMINDERS_WEB__SECRET_KEY {state}: it signs the links in emails; set it to a "
                'long random string, e.g. python -c "import secrets; '
                'print(secrets.token_urlsafe(32))"'
            )
        return key

    def _agencies_by_code(self) -> dict[str, AgencySettings]:
        """The agencies by code, built once (again if the list was replaced or grew)."""
        built = self._by_code
        if built is None or built[0] is not self.agency or len(built[1]) != len(self.agency):
            built = (self.agency, {a.code: a for a in self.agency})
            self._by_code = built
        return built[1]

    def find_agency(self, code: str) -> AgencySettings | None:
        """Return the agency `code`, or None if none has that code."""
        return self._agencies_by_code().get(code)

    def agency_by_code(self, code: str) -> AgencySettings:
        """Return the agency `code`, or explain which ones exist."""
        agency = self._agencies_by_code().get(code)
        if agency is None:
            raise UsageError(f"unknown agency {code!r}: known agencies are {self.agency_codes()}")
        return agency

    def agency_zone(self, code: str) -> ZoneInfo:
        """Return the time zone of agency `code`; UTC for one no longer configured."""
        agency = self._agencies_by_code().get(code)
        return agency.zone if agency is not None else UTC_ZONE

    def agency_codes(self) -> str:
        return ", ".join(a.code for a in self.agency) or "none (add an [[agency]] table)"

    def kind_name(self, name_or_tab: str, agency: str | None = None) -> str:
        """Return the kind `name_or_tab` names (a kind's name or its tab label), or explain."""
        for each in self.agencies(agency):
            found = each.kind_name(name_or_tab)
            if found is not None:
                return found
        known = sorted({k for a in self.agencies(agency) for k in a.definitions()})
        labels = sorted(
            {
                label
                for a in self.agencies(agency)
                for k in a.enabled_kinds()
                for label in k.tab.values()
            }
        )
        raise UsageError(
            f"unknown kind {name_or_tab!r}: give a kind ({', '.join(known)}) or a tab label "
            f"({', '.join(labels)})"
        )

    def agencies(self, code: str | None = None) -> list[AgencySettings]:
        """Return all agencies, or just `code` (checked)."""
        return [self.agency_by_code(code)] if code else list(self.agency)

    def agency_templates_path(self, agency: AgencySettings) -> Path | None:
        """Return the agency's own folder (default: `<templates.dir>/agencies/<code>`)."""
        if agency.templates_dir:
            return self.path(agency.templates_dir)
        site = self.templates_path
        return site / "agencies" / agency.code if site else None


def config_path(option: str | None) -> Path:
    """Pick the config file: `--config`, then REMINDERS_CONFIG, then ./reminders.toml."""
    return Path(option or os.environ.get("REMINDERS_CONFIG") or DEFAULT_CONFIG_PATH)


def load_settings(path: Path) -> Settings:
    """Read, validate and return the configuration in `path` (env overrides applied)."""
    if not path.is_file():
        raise ConfigError(
            f"config file '{path}' not found: pass --config PATH or set REMINDERS_CONFIG "
            "(start from config.example.toml)"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text: save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}: fix the syntax") from None
    for (section, key), variable in _SECRETS.items():
        if key in (data.get(section) or {}):
            raise ConfigError(
                f"{path}: {section}.{key}: secrets are not read from the file: "
                f"remove it and set the environment variable {variable}"
            )
    try:
        settings = Settings(**data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(path, error, data)) from None
    settings._base_dir = path.resolve().parent
    return settings


def describe_validation_error(path: Path, error: ValidationError, data: dict[str, Any]) -> str:
    """Turn a pydantic error into lines naming the file, the key and what is allowed."""
    lines: list[str] = []
    for problem in error.errors():
        key = _key_name(problem["loc"], data)
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key: remove it or check its spelling in config.example.toml"
        elif problem["type"] == "missing":
            message = "missing: this key is required (see config.example.toml)"
        elif problem["type"] == "literal_error":
            message = f"{message}, not {problem['input']!r}"
        elif (
            "input" in problem
            and isinstance(problem["input"], str | int | float | bool)
            and repr(problem["input"]) not in message
        ):
            message = f"{message} (got {problem['input']!r})"
        variable = _environment_variable(problem["loc"], data)
        where = f"environment variable {variable} ({key})" if variable else f"{path}: {key}"
        lines.extend(
            f"{where}: {line}" if key else f"{path}: {line}" for line in message.split("\n")
        )
    return "\n".join(lines)


def _environment_variable(loc: tuple[int | str, ...], data: dict[str, Any]) -> str | None:
    """Name the REMINDERS_* variable a bad setting came from, when not from the file."""
    node: Any = data
    for part in loc:
        if isinstance(part, int) or not isinstance(node, dict) or part not in node:
            break
        node = node[part]
    else:
        return None  # the key is in the file
    names = [str(p) for p in loc if not isinstance(p, int)]
    for length in range(len(names), 0, -1):
        variable = "REMINDERS_" + "__".join(names[:length]).upper()
        if any(name.upper() == variable for name in os.environ):
            return variable
    return None


def _key_name(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            code = node[part].get("code") if isinstance(node, list) and part < len(node) else None
            label = f"[{part}]" if not isinstance(code, str) else f"[{part}] ({code})"
            parts[-1] = parts[-1] + label if parts else label
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            parts.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts)
