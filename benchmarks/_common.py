"""What the benchmarks share: the `reminders` under test, a throwaway PostgreSQL, progress.

The benchmarks import it as a sibling module (they run as scripts from this folder).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def _postgresql_bin() -> Path:
    """The folder of initdb and pg_ctl: pg_config's, else Debian's newest."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if found.returncode == 0 and (Path(found.stdout.strip()) / "initdb").exists():
            return Path(found.stdout.strip())
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return debian[-1].parent if debian else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _postgresql_bin()
INITDB_OPTIONS = ("-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def as_postgres(command: list[str]) -> list[str]:
    """initdb and pg_ctl refuse root: run them as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def temporary_postgresql(cluster: Callable[[Path, int], T]) -> Iterator[T]:
    """Start a PostgreSQL cluster on a free loopback port; yield `cluster(folder, port)`."""
    folder = Path(tempfile.mkdtemp(prefix="reminders-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder}"
    pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-w"]
    try:
        subprocess.run(
            as_postgres([str(PG_BIN / "initdb"), "-D", str(data), *INITDB_OPTIONS]),
            check=True,
            capture_output=True,
        )
        subprocess.run(
            as_postgres([*pg_ctl, "-l", str(folder / "server.log"), "-o", options, "start"]),
            check=True,
            capture_output=True,
        )
        yield cluster(folder, port)
    finally:
        subprocess.run(
            as_postgres([*pg_ctl, "-m", "fast", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def reminders_command() -> list[str]:
    """The `reminders` entry point of the interpreter running this script."""
    beside = Path(sys.executable).parent / "reminders"
    found = str(beside) if beside.exists() else shutil.which("reminders")
    if not found:
        sys.exit("the reminders command is not installed: pip install -e . first")
    return [found]


def reminders_source() -> str:
    """Where the measured `reminders` comes from: its folder, and its commit in a checkout.

    Its modules are compiled to bytecode first, as installing a package does: an
    editable install under PYTHONDONTWRITEBYTECODE would otherwise compile them
    again in every timed process (about 40 ms each), where the bare scripts'
    libraries are compiled already.
    """
    found = subprocess.run(
        [sys.executable, "-c", "import reminders; print(reminders.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    package = Path(found.stdout.strip()).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    git = ["git", "-C", str(package)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if commit.returncode != 0:
        return str(package)
    changed = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True)
    dirty = " with uncommitted changes" if changed.stdout.strip() else ""
    return f"{package} (commit {commit.stdout.strip()}{dirty})"


def gist(stderr: str) -> str:
    """What went wrong, in one line: the exception's line, else the last line."""
    lines = stderr.splitlines() or ["(nothing on stderr)"]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    line = (raised or lines)[-1]
    return line if len(line) <= 300 else f"{line[:300]}..."


def progress(step: str) -> None:
    print(f"... {step}", file=sys.stderr, flush=True)
