"""config.example.toml is the reference: it loads, and it documents every setting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from reminders.config import AgencySettings, KindSettings, Settings, load_settings

EXAMPLE = Path(__file__).parents[2] / "config.example.toml"

#: Settings read only from the environment, never written in the file.
SECRETS = {("smtp", "password"), ("web", "secret_key"), ("dkim", "private_key")}


def _keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _sections() -> list[tuple[str, str]]:
    found = []
    for section, field in Settings.model_fields.items():
        # An optional section ([dkim]) is `Section | None`.
        annotation = next(iter(get_args(field.annotation)), field.annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += [(section, key) for key in _keys(annotation)]
    found += [("agency", key) for key in _keys(AgencySettings)]
    found += [("agency.kinds.NAME", key) for key in _keys(KindSettings)]
    return found


@pytest.mark.parametrize(
    ("section", "key"),
    [pytest.param(s, k, id=f"{s}.{k}") for s, k in _sections() if (s, k) not in SECRETS],
)
def test_every_setting_is_documented_in_the_example(section: str, key: str) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")

    written = re.search(rf"^#?\s*{re.escape(key)}\s*=", text, flags=re.MULTILINE)
    table = re.search(rf"^\[{re.escape(key)}\]|^\[agency\.{re.escape(key)}[.\]]", text, re.M)

    assert written or table, f"{section}.{key} is not shown in config.example.toml"


def test_the_example_loads_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("REMINDERS_SMTP__PASSWORD", "REMINDERS_WEB__SECRET_KEY"):
        monkeypatch.delenv(variable, raising=False)

    settings = load_settings(EXAMPLE)

    assert [a.code for a in settings.agency] == ["annecy", "montreal"]
    assert settings.agency[0].summary_to is not None
