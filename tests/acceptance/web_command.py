"""`reminders web` running as a process, as an operator starts it, and stopped with SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

from acceptance.workspace import REMINDERS, Workspace, clean_environment


class WebCommand:
    """The installed `reminders web`, run in a workspace with an environment of overrides."""

    def __init__(
        self, workspace: Workspace, port: int, env: dict[str, str | None], *args: str
    ) -> None:
        self.workspace = workspace
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env
        self.args = args
        self.log_path: Path = workspace.folder / "web.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20) -> WebCommand:
        """Start it and wait until it accepts connections."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(REMINDERS), "web", *self.args],
                cwd=self.workspace.folder,
                env=clean_environment(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"reminders web exited {self.process.returncode}:\n{self.log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"reminders web did not listen on port {self.port}:\n{self.log}")

    def stop(self) -> int:
        """Send SIGTERM; return the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")
