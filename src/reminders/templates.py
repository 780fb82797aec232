"""Rendering reminder emails from Jinja templates admins may edit (sandboxed).

Layout of a templates folder (the defaults, or an agency's override folder that
shadows them file by file)::

    <template>/subject.<lang>.txt   one line
    <template>/body.<lang>.txt      the plain-text part
    <template>/body.<lang>.html     the HTML part (autoescaped)

`<template>` is the kind's name unless the kind names another; `<lang>` is a
language code (`fr`, `en`). The language is the contact's, then the agency's,
then English: the first for which the kind has a subject template.

What a template may render is capped: each part at most `MAX_PART_CHARS`
characters, `MAX_LOOP_STEPS` steps over `range()` and `MAX_RENDER_S` seconds.
Output is streamed and stopped at the cap; repeating a string or list (`'x' * n`),
a power and `%`-formatting are refused before they build a value past it; loops
over `range()` count their steps and every call looks at the clock, so a loop that
prints nothing (in a macro or a `{% set %}` block) is stopped too. Breaking a cap
is a `TemplateError` naming the file and the cap.
"""

from __future__ import annotations

import contextlib
import functools
import re
import traceback
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, cast, overload

import jinja2
import jinja2.bccache
import markupsafe
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, get_date_format
from babel.numbers import format_currency, format_decimal
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from .clock import monotonic_s
from .errors import TemplateError
from .queue import Rendered

FALLBACK_LANGUAGE = "en"
PARTS = ("subject", "text", "html")
_FILES = {"subject": "subject.{lang}.txt", "text": "body.{lang}.txt", "html": "body.{lang}.html"}

#: The most characters one part of one email may render: 1 MB of text is hundreds
#: of pages, far more than any reminder, and small enough to store and send.
MAX_PART_CHARS = 1_000_000
#: The most seconds one part may take to render (the shipped ones take milliseconds).
MAX_RENDER_S = 2.0
#: The most steps one part may take over `range()` loops, all loops together: a loop
#: that prints nothing (in a macro or a `{% set %}` block) still fills memory.
MAX_LOOP_STEPS = 1_000_000
#: Loop steps over `range()` between two looks at the budget.
_STEPS_PER_CHECK = 1024
#: Pieces of streamed output between two looks at the clock (a piece is quick to make).
_PIECES_PER_CHECK = 64
#: The most bits a power may have: its decimal digits already exceed what Python prints.
_MAX_POWER_BITS = 16_384
#: A `%` conversion's width and precision (`%-08.3f`, `%*d`).
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


class _OverBudget(Exception):
    """A render broke a cap; the message says which."""


class _Budget:
    """What the render under way may still spend: its deadline and its output size."""

    def __init__(self, timer: Callable[[], float], max_chars: int, max_seconds: float) -> None:
        self._timer = timer
        self._deadline = timer() + max_seconds
        self.max_chars = max_chars
        self.max_seconds = max_seconds
        self._steps_left = MAX_LOOP_STEPS

    def check_time(self) -> None:
        if self._timer() > self._deadline:
            raise _OverBudget(f"takes more than {self.max_seconds:g} s to render")

    def take_steps(self, steps: int) -> None:
        self._steps_left -= steps
        if self._steps_left < 0:
            raise _OverBudget(f"loops more than {MAX_LOOP_STEPS} times")
        self.check_time()

    def check_size(self, size: int) -> None:
        if size > self.max_chars:
            raise _OverBudget(f"renders more than {self.max_chars} characters")


#: The budget of the render under way in this thread (None: not rendering, e.g. compiling).
_BUDGET: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _check_time() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.check_time()


def _take_steps(steps: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.take_steps(steps)


def _check_size(value: object) -> None:
    budget = _BUDGET.get()
    if budget is not None and isinstance(value, str | bytes | list | tuple):
        budget.check_size(len(value))


class _BoundedRange(Sequence[int]):
    """`range()` for templates: iterating it spends the budget's steps and looks at the clock."""

    def __init__(self, numbers: range) -> None:
        self._numbers = numbers

    def __len__(self) -> int:
        return len(self._numbers)

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[int]: ...
    def __getitem__(self, index: int | slice) -> int | Sequence[int]:
        found = self._numbers[index]
        return _BoundedRange(found) if isinstance(found, range) else found

    def __iter__(self) -> Iterator[int]:
        for step, number in enumerate(self._numbers):
            if step % _STEPS_PER_CHECK == 0:
                _take_steps(_STEPS_PER_CHECK)
            yield number


def _bounded_range(*args: int) -> _BoundedRange:
    return _BoundedRange(safe_range(*args))


class _CappedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus the caps: no value past the size cap, no call past the deadline."""

    # Intercepted operators are also never folded at compile time, so `check` is safe too.
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        _check_time()
        budget = _BUDGET.get()
        limit = budget.max_chars if budget is not None else MAX_PART_CHARS
        if operator == "*":
            _refuse_repetition(left, right, limit)
        elif operator == "**":
            _refuse_huge_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _refuse_wide_format(left, right, limit)
        result = super().call_binop(context, operator, left, right)
        _check_size(result)
        return result

    def call(
        __self,  # Jinja's own signature: these names cannot clash with a keyword argument
        __context: jinja2.runtime.Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        _check_time()
        result = super().call(__context, __obj, *args, **kwargs)
        _check_size(result)
        return result


def _refuse_repetition(left: Any, right: Any, limit: int) -> None:
    """Refuse `'x' * n` (or `n * [..]`) whose result would be longer than `limit`."""
    for sequence, times in ((left, right), (right, left)):
        if (
            isinstance(sequence, str | bytes | list | tuple)
            and isinstance(times, int)
            and len(sequence) * times > limit
        ):
            raise _OverBudget(f"repeats a value to more than {limit} characters")


def _refuse_huge_power(base: Any, exponent: Any) -> None:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent * abs(base).bit_length() > _MAX_POWER_BITS
        and abs(base) > 1
    ):
        raise _OverBudget(f"computes a number too large to print ({base} ** {exponent})")


def _refuse_wide_format(template: str, values: Any, limit: int) -> None:
    """Refuse a `%` conversion padded or cut to more than `limit` characters."""
    numbers = values if isinstance(values, tuple) else (values,)
    for spec in _PERCENT_SPEC.finditer(template):
        for size in spec.groups():
            if size == "*":
                if any(isinstance(n, int) and abs(n) > limit for n in numbers):
                    raise _OverBudget(f"formats a value wider than {limit} characters")
            elif size is not None and int(size) > limit:
                raise _OverBudget(f"formats a value wider than {limit} characters")


def shipped_templates() -> Path:
    """Return the folder of the templates that ship with reminders."""
    packaged = Path(__file__).with_name("default_templates")  # installed from a wheel
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"  # a source checkout


@functools.lru_cache(maxsize=1024)
def language_of(locale: str | None) -> str | None:
    """Return the language code of a locale such as 'fr_FR' or 'en-GB', or None."""
    if not locale:
        return None
    try:
        return Locale.parse(locale.replace("-", "_")).language
    except (UnknownLocaleError, ValueError):
        return None


class _SharedBytecode(jinja2.BytecodeCache):
    """Compiled templates kept in memory for the whole process, by file and content.

    Every environment uses it: a file several agencies fall back to (the shipped
    defaults) is compiled once, and a file edited since is compiled again (its
    source's checksum changed).
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_BYTECODE = _SharedBytecode()


@functools.lru_cache(maxsize=256)
def _environment(folders: tuple[str, ...]) -> _CappedSandbox:
    """Return the one sandbox of the process that looks templates up in `folders`.

    Agencies with the same folders (most use the defaults alone) share it, and with
    it the templates it has loaded: a planning pass over hundreds of agencies
    compiles each file once, and the daemon keeps them between passes. Jinja does
    not look at the files on every use (`auto_reload` off: that was a tenth of a
    planning pass); a new `Renderer` drops what changed on disk (`_refresh`).
    """
    # Immutable: a template may read the values it is given, never change them.
    env = _CappedSandbox(
        loader=jinja2.FileSystemLoader(list(folders)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_BYTECODE,
        cache_size=1000,
        auto_reload=False,
    )
    env.filters["date"] = _format_date
    env.filters["money"] = _format_money
    env.filters["number"] = _format_number
    env.globals["range"] = _bounded_range
    return env


def _refresh(env: jinja2.Environment) -> None:
    """Forget the templates of `env` whose file changed (or went) since they were loaded."""
    cache = env.cache
    if cache is None:
        return
    for key, template in list(cache.items()):
        if not template.is_up_to_date:
            with contextlib.suppress(KeyError):  # another thread forgot it first
                del cache[key]


class Renderer:
    """Renders the emails of one agency: its own templates first, then the defaults."""

    def __init__(
        self,
        *folders: Path | None,
        timer: Callable[[], float] = monotonic_s,
        max_part_chars: int = MAX_PART_CHARS,
        max_render_s: float = MAX_RENDER_S,
    ) -> None:
        """Look templates up in `folders` in order, then in the shipped defaults.

        A missing folder is fine here: the loader finds nothing there (the
        configuration check reports folders that were named but do not exist).
        `timer` measures the render budget of `max_render_s` seconds per part.
        """
        self._folders = [str(d) for d in (*folders, shipped_templates()) if d is not None]
        self._timer = timer
        self._max_part_chars = max_part_chars
        self._max_render_s = max_render_s
        self._env = _environment(tuple(f for f in self._folders if Path(f).is_dir()))
        # A renderer sees the files as they are when it is made (Jinja no longer looks
        # at them on every use): those changed since they were loaded are read again.
        _refresh(self._env)
        self._existing: dict[str, bool] = {}

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

    def render_around(
        self,
        template: str,
        language: str,
        context: Mapping[str, Any],
        *,
        content: markupsafe.Markup,
        title: str,
    ) -> str:
        """Render the HTML part of `template` with `content` in place of its own content.

        What the layout puts around the content stays: the agency's header, the
        footer with its links (the unsubscribe link included) and what the kind
        says in it. The kind's content block (its text, its summary box) and the
        signature (staff's text has its own) give way to `content`, which must be
        escaped already (`editing.paragraphs`). Raises `TemplateError` when the
        templates have no content block to put it in.
        """
        name = f"{template}/{_FILES['html'].format(lang=language)}"
        values = {
            **context,
            "language": language,
            "edited_base": name,
            "edited_content": content,
            "edited_title": title,
        }
        html = self._render(name, lambda: self._env.from_string(_AROUND), values)
        if str(content) not in html:
            raise TemplateError(
                f"template {name} has no {{% block content %}} to hold edited text: extend "
                "the layout as the shipped templates do (see templates/README.md)"
            )
        return html

    def text_footer(self, language: str, context: Mapping[str, Any]) -> str | None:
        """Render the footer that ends every plain-text part, or None if there is none."""
        name = f"footer.{language}.txt"
        if not any((Path(folder) / name).is_file() for folder in self._folders):
            return None
        return self._render(
            name, lambda: self._env.get_template(name), {**context, "language": language}
        )

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
        found = self._existing.get(name)
        if found is None:
            found = any((Path(folder) / name).is_file() for folder in self._folders)
            self._existing[name] = found
        return found

    def _render_part(
        self, filename: str, template: str, values: Mapping[str, Any], language: str
    ) -> str:
        name = f"{template}/{filename}"
        return self._render(name, lambda: self._env.get_template(name), values)

    def _render(
        self, name: str, load: Callable[[], jinja2.Template], values: Mapping[str, Any]
    ) -> str:
        """Render the template `load` returns (`name` in messages) within the caps."""
        budget = _Budget(self._timer, self._max_part_chars, self._max_render_s)
        token = _BUDGET.set(budget)
        try:
            compiled = load()
            return _stream(compiled, values, budget).strip() + "\n"
        except _OverBudget as error:
            raise TemplateError(
                f"template {_where(error, name)} {error}, the cap of one part: make it "
                "print or loop less, then run 'reminders config check'"
            ) from None
        except RecursionError:
            raise TemplateError(
                f"template {name}: a macro calls itself without end: fix the template, "
                "then run 'reminders config check'"
            ) from None
        except MemoryError:
            raise TemplateError(
                f"template {name}: asks for more memory than there is: make it print less, "
                "then run 'reminders config check'"
            ) from None
        except jinja2.TemplateNotFound:
            raise TemplateError(
                f"template {name} is missing in {self._describe_folders()}: create it"
            ) from None
        except jinja2.TemplateError as error:
            raise TemplateError(_describe(error, name)) from None
        except (ArithmeticError, TypeError, ValueError, LookupError) as error:
            raise TemplateError(_describe(error, name)) from None
        finally:
            _BUDGET.reset(token)

    def _describe_folders(self) -> str:
        return " or ".join(f"'{f}'" for f in self._folders)


#: The HTML part of an email whose text staff edited: the kind's template (and so its
#: layout) with staff's paragraphs as its content. Autoescaped: the paragraphs come
#: escaped (Markup), the subject does not.
_AROUND = """\
{% extends edited_base %}
{% block title %}{% autoescape true %}{{ edited_title }}{% endautoescape %}{% endblock %}
{% block content %}{% autoescape true %}{{ edited_content }}{% endautoescape %}{% endblock %}
{% block signature %}{% endblock %}
"""


def _stream(compiled: jinja2.Template, values: Mapping[str, Any], budget: _Budget) -> str:
    """Render `compiled` piece by piece, stopping as soon as a cap is broken."""
    pieces: list[str] = []
    append, size, max_chars = pieces.append, 0, budget.max_chars
    stream = cast("Generator[str, None, None]", compiled.generate(values))
    try:
        # Tight: this runs for every piece of every email.
        for count, piece in enumerate(stream):
            size += len(piece)
            if size > max_chars:
                budget.check_size(size)
            if not count % _PIECES_PER_CHECK:
                budget.check_time()
            append(piece)
    finally:
        stream.close()
    return "".join(pieces)


def _describe(error: Exception, name: str) -> str:
    """Say which template and line broke, and how."""
    message = getattr(error, "message", None) or str(error)
    return (
        f"template {_where(error, name)}: {message}: fix the template, then run "
        "'reminders config check'"
    )


def _where(error: Exception, name: str) -> str:
    """Name the template file (and line, when known) where `error` was raised."""
    filename, lineno = name, getattr(error, "lineno", None)
    if isinstance(error, jinja2.TemplateSyntaxError):
        filename = error.filename or error.name or name
    else:
        # Jinja rewrites tracebacks so template frames carry the template's path and line.
        for frame in reversed(traceback.extract_tb(error.__traceback__)):
            if frame.filename.endswith((".txt", ".html")):
                filename, lineno = frame.filename, frame.lineno
                break
    return f"{filename} line {lineno}" if lineno else filename


@jinja2.pass_context
def _format_date(context: jinja2.runtime.Context, value: date | None, style: str = "long") -> str:
    if value is None:
        return ""
    return local_date(value, style, context["language"])


#: A day-of-month field written as one `d` (not `dd`), outside quoted literals.
_DAY_FIELD = re.compile(r"(?<![d'])d(?![d'])")


@functools.lru_cache(maxsize=8192, typed=True)
def local_date(value: date, style: str, language: str) -> str:
    """Write `value` in `language` with Babel's `style` (or a CLDR pattern).

    French writes the first of a month as an ordinal, "1er décembre", which CLDR's
    patterns do not: the day field of the pattern gets the suffix on that day only
    ("2 décembre"; "01/12/2026" in the short style, whose field is `dd`, is left alone).
    """
    if language.split("_")[0] == "fr" and value.day == 1:
        pattern = style
        for named in ("short", "medium", "long", "full"):
            if style == named:
                pattern = get_date_format(named, locale=language).pattern
        style = _DAY_FIELD.sub("d'er'", pattern, count=1)
    return format_date(value, format=style, locale=language)


@jinja2.pass_context
def _format_money(
    context: jinja2.runtime.Context, value: Decimal | int | float, currency: str
) -> str:
    return _currency(value, currency, context["language"])


@functools.lru_cache(maxsize=8192, typed=True)
def _currency(value: Decimal | int | float, currency: str, language: str) -> str:
    """Babel's `format_currency`, kept for the amounts a pass writes again and again."""
    return format_currency(value, currency, locale=language)


@jinja2.pass_context
def _format_number(context: jinja2.runtime.Context, value: Decimal | int | float) -> str:
    return format_decimal(value, locale=context["language"])
