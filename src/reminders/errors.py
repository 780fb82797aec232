"""The one exception tree: every message says what happened and what to do."""

from __future__ import annotations


class ReminderError(Exception):
    """Something went wrong; the message says what to do."""

    #: Process exit code the CLI uses for this error.
    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class UsageError(ReminderError):
    """The command line is wrong: see 'reminders --help'."""

    exit_code = 2


class ConfigError(ReminderError):
    """The configuration is invalid: run 'reminders config check'."""

    exit_code = 2


class DatabaseError(ReminderError):
    """The database cannot be used: check database.url and run 'reminders db upgrade'."""


class ImportFileError(ReminderError):
    """The CSV file cannot be imported: fix it and import it again."""


class TemplateError(ReminderError):
    """A template is broken: fix it, then run 'reminders config check'."""


class NotFoundError(ReminderError):
    """No such item: list them with 'reminders queue --status all'."""


class UnknownAddress(NotFoundError):
    """The consent registry never saw this address."""

    def __init__(self, address: str) -> None:
        super().__init__(
            f"{address} is not in the registry: no contact uses it and nothing was "
            "recorded for it (check the spelling, or import the contact)"
        )


class TransitionError(ReminderError):
    """The item is not in a state that allows this: see 'reminders show ID'."""


class InvalidAddress(ReminderError):
    """The email address is not valid: correct it in the contacts file and import it again."""


class StaleEdit(ReminderError):
    """Someone changed this email after you opened it: open it again and redo your change."""
