"""Rendering reminder emails from Jinja templates admins may edit (sandboxed).

Layout of a templates folder (the defaults, or an agency's override folder that
shadows them file by file)::

    <template>/subject.<lang>.txt   one line
    <template>/body.<lang>.txt      the plain-text part
    <template>/body.<lang>.html     the HTML part (autoescaped)

`<template>` is the kind's name unless the kind names another; `<lang>` is a
language code (`fr`, `en`). The language is the contact's, then the agency's,
then English: the first for which the kind has a subject template.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateError
from .queue import Rendered

FALLBACK_LANGUAGE = "en"
PARTS = ("subject", "text", "html")
_FILES = {"subject": "subject.{lang}.txt", "text": "body.{lang}.txt", "html": "body.{lang}.html"}


def shipped_templates() -> Path:
    """Return the folder of the templates that ship with reminders."""
    packaged = Path(__file__).with_name("default_templates")  # installed from a wheel
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"  # a source checkout


def language_of(locale: str | None) -> str | None:
    """Return the language code of a locale such as 'fr_FR' or 'en-GB', or None."""
    if not locale:
        return None
    try:
        return Locale.parse(locale.replace("-", "_")).language
    except (UnknownLocaleError, ValueError):
        return None


class Renderer:
    """Renders the emails of one agency: its own templates first, then the defaults."""

    def __init__(self, *folders: Path | None) -> None:
        """Look templates up in `folders` in order, then in the shipped defaults.

        A missing folder is fine here: the loader finds nothing there (the
        configuration check reports folders that were named but do not exist).
        """
        self._folders = [str(d) for d in (*folders, shipped_templates()) if d is not None]
        # Immutable: a template may read the values it is given, never change them.
        self._env = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(self._folders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["date"] = _format_date
        self._env.filters["money"] = _format_money
        self._env.filters["number"] = _format_number

    def language_for(self, template: str, *candidates: str | None) -> str:
        """Pick the first language among `candidates` (then English) the kind has templates in."""
        for locale in (*candidates, FALLBACK_LANGUAGE):
            language = language_of(locale)
            if language and self._exists(template, "subject", language):
                return language
        raise TemplateError(
            f"no templates for '{template}': create {template}/subject.en.txt, body.en.txt "
            f"and body.en.html in {self._describe_folders()}"
        )

    def render(self, template: str, language: str, context: Mapping[str, Any]) -> Rendered:
        """Render subject, text and HTML of `template` in `language`."""
        values = {**context, "language": language}
        parts = {
            part: self._render_part(_FILES[part].format(lang=language), template, values, language)
            for part in PARTS
        }
        subject = " ".join(parts["subject"].split())  # one header line, no injection
        if not subject:
            raise TemplateError(
                f"template {template}/{_FILES['subject'].format(lang=language)} rendered an "
                "empty subject: give it some text"
            )
        return Rendered(subject=subject, text=parts["text"], html=parts["html"], locale=language)

    def check(self, template: str, languages: tuple[str, ...] = ("fr", "en")) -> list[str]:
        """Compile every part of `template` in the given languages; return the problems."""
        problems = []
        for language in languages:
            for part in PARTS:
                name = f"{template}/{_FILES[part].format(lang=language)}"
                try:
                    self._env.get_template(name)
                except jinja2.TemplateNotFound:
                    problems.append(f"template {name} is missing in {self._describe_folders()}")
                except jinja2.TemplateSyntaxError as error:
                    problems.append(_describe(error, name))
        return problems

    def has(self, template: str, language: str) -> bool:
        """Tell whether `template` has a subject in `language`."""
        return self._exists(template, "subject", language)

    def _exists(self, template: str, part: str, language: str) -> bool:
        name = f"{template}/{_FILES[part].format(lang=language)}"
        return any((Path(folder) / name).is_file() for folder in self._folders)

    def _render_part(
        self, filename: str, template: str, values: Mapping[str, Any], language: str
    ) -> str:
        name = f"{template}/{filename}"
        try:
            compiled = self._env.get_template(name)
            return compiled.render(values).strip() + "\n"
        except jinja2.TemplateNotFound:
            raise TemplateError(
                f"template {name} is missing in {self._describe_folders()}: create it"
            ) from None
        except jinja2.TemplateError as error:
            raise TemplateError(_describe(error, name)) from None
        except (ArithmeticError, TypeError, ValueError, LookupError) as error:
            raise TemplateError(_describe(error, name)) from None

    def _describe_folders(self) -> str:
        return " or ".join(f"'{f}'" for f in self._folders)


def _describe(error: Exception, name: str) -> str:
    """Say which template and line broke, and how."""
    filename, lineno = name, getattr(error, "lineno", None)
    if isinstance(error, jinja2.TemplateSyntaxError):
        filename = error.filename or error.name or name
    else:
        # Jinja rewrites tracebacks so template frames carry the template's path and line.
        for frame in reversed(traceback.extract_tb(error.__traceback__)):
            if frame.filename.endswith((".txt", ".html")):
                filename, lineno = frame.filename, frame.lineno
                break
    message = getattr(error, "message", None) or str(error)
    where = f"{filename} line {lineno}" if lineno else filename
    return f"template {where}: {message}: fix the template, then run 'reminders config check'"


@jinja2.pass_context
def _format_date(context: jinja2.runtime.Context, value: date | None, style: str = "long") -> str:
    if value is None:
        return ""
    return format_date(value, format=style, locale=context["language"])


@jinja2.pass_context
def _format_money(
    context: jinja2.runtime.Context, value: Decimal | int | float, currency: str
) -> str:
    return format_currency(value, currency, locale=context["language"])


@jinja2.pass_context
def _format_number(context: jinja2.runtime.Context, value: Decimal | int | float) -> str:
    return format_decimal(value, locale=context["language"])
