"""Only `clock.py` reads the clock: everything else is handed `today` or a `Clock`."""

from __future__ import annotations

import ast
from pathlib import Path

import reminders

PACKAGE = Path(reminders.__file__).parent

#: Calls that read the current time, as dotted names (matched on their last parts).
CLOCK_READS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
}


def _dotted(node: ast.expr) -> tuple[str, ...]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def clock_reads(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Return 'file:line: call' for every call in `path` that reads the clock."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _dotted(node.func)[-2:] in CLOCK_READS:
            name = ".".join(_dotted(node.func))
            found.append(f"{path.relative_to(root)}:{node.lineno}: {name}()")
    return found


def test_only_clock_py_reads_the_clock() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert modules, f"no modules found under {PACKAGE}"

    offenders = [
        read for path in modules if path != PACKAGE / "clock.py" for read in clock_reads(path)
    ]

    assert not offenders, (
        "these read the clock; take `today`/`now` as an argument or use the injected Clock:\n"
        + "\n".join(offenders)
    )


def test_the_scan_finds_clock_reads_but_not_mentions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '''"""Nothing here calls datetime.now() in a docstring."""
import datetime as dt
import time
from datetime import date, datetime

# date.today() in a comment is fine
stamp = time.time()
today = date.today()
now = dt.datetime.now(dt.UTC)
later = datetime.utcnow()
elapsed = time.monotonic()
''',
        encoding="utf-8",
    )

    assert clock_reads(sample, root=tmp_path) == [
        "sample.py:7: time.time()",
        "sample.py:8: date.today()",
        "sample.py:9: dt.datetime.now()",
        "sample.py:10: datetime.utcnow()",
    ]
