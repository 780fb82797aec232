"""The HTML pages behind the links in emails: templates in French and English, and their forms.

Layout of this folder: `layout.html` and `macros.html` are shared; each page is
`<name>.<lang>.html` (`<lang>` is `fr` or `en`), autoescaped; `one_click.<lang>.txt`
is the line answering an RFC 8058 one-click POST; `style.css` is the only stylesheet
(the Content-Security-Policy allows no inline style and no script).

Every form is one button that POSTs, with a hidden field derived from the link's
token by a keyed HMAC: a POST without the right field did not come from our page.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

FOLDER = Path(__file__).parent
#: The languages pages are written in; the first is the last resort.
LANGUAGES = ("en", "fr")
#: The hidden field that proves a form came from one of our pages.
FORM_FIELD = "csrf"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reader:
    """Who a page is written for."""

    language: str
    #: the name of the agency of a contact using the address (None when unknown)
    agency: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Form:
    """A one-button form: where it POSTs and its anti-forgery field."""

    action: str
    csrf: str


class Pages:
    """Renders the pages (reads the templates when first asked for one)."""

    def __init__(self) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(FOLDER),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html",), disabled_extensions=("txt",), default=True
            ),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def html(self, name: str, reader: Reader, *, root: str, **context: Any) -> str:
        """Render page `name` for `reader`; `root` prefixes the paths (the mount point)."""
        return self._render(f"{name}.{reader.language}.html", reader, root=root, **context)

    def text(self, name: str, reader: Reader, **context: Any) -> str:
        return self._render(f"{name}.{reader.language}.txt", reader, **context)

    def _render(self, file: str, reader: Reader, **context: Any) -> str:
        template = self._env.get_template(file)
        return template.render(lang=reader.language, agency=reader.agency, **context)

    @staticmethod
    def stylesheet() -> str:
        return (FOLDER / "style.css").read_text(encoding="utf-8")


class FormSigner:
    """Derives and checks the anti-forgery field of each form, without cookies."""

    def __init__(self, secret: str) -> None:
        # A key of its own: the link secret under a distinct salt.
        self._key = hmac.new(secret.encode(), b"reminders.web-form", hashlib.sha256).digest()

    def form(self, root: str, action: str, token: str) -> Form:
        """Return the form of `action` (`confirm`, `confirm/renew`, ...) for the link `token`."""
        purpose, _, rest = action.partition("/")
        path = f"{root}/{purpose}/{token}"
        return Form(action=f"{path}/{rest}" if rest else path, csrf=self._field(action, token))

    def is_authentic(self, value: object, action: str, token: str) -> bool:
        """Tell whether `value` is the field of the form `action` of `token`."""
        return isinstance(value, str) and hmac.compare_digest(value, self._field(action, token))

    def _field(self, action: str, token: str) -> str:
        return hmac.new(self._key, f"{action}\0{token}".encode(), hashlib.sha256).hexdigest()


def accepted_language(header: str) -> str | None:
    """Return the language of ours an Accept-Language header prefers most, or None."""
    best, best_q = None, 0.0
    for item in header.split(","):
        tag, _, params = item.partition(";")
        language = tag.strip().lower().partition("-")[0]
        name, _, value = params.strip().partition("=")
        try:
            q = float(value) if name.strip() == "q" else 1.0
        except ValueError:
            continue
        if language in LANGUAGES and q > best_q:  # on a tie the first listed wins
            best, best_q = language, q
    return best
