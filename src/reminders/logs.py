"""Structured logs of the daemon: one line per event, `key=value` text or JSON.

Each line carries the instant from the injected clock, a level, the event's name
(`plan.done`, `mail.sent`, ...) and its fields. Library messages (APScheduler's
warnings) come through the same lines, as the event `library`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import date, datetime
from enum import Enum
from typing import Any, TextIO

from .clock import Clock

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


class EventLog:
    """Writes events as lines to a stream (standard error by default)."""

    def __init__(
        self, clock: Clock, *, json_lines: bool = False, stream: TextIO | None = None
    ) -> None:
        self._clock = clock
        self._json = json_lines
        self._stream = stream
        self._lock = threading.Lock()

    def info(self, event: str, **fields: Any) -> None:
        self.write("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.write("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self.write("error", event, fields)

    def write(self, level: str, event: str, fields: dict[str, Any]) -> None:
        record = {
            "at": self._clock.now().isoformat(timespec="milliseconds"),
            "level": level,
            "event": event,
            **{k: v for k, v in fields.items() if v is not None},
        }
        line = (
            json.dumps(record, ensure_ascii=False, default=_plain)
            if self._json
            else " ".join(_pair(k, v) for k, v in record.items())
        )
        stream = self._stream or sys.stderr
        with self._lock:
            stream.write(line + "\n")
            stream.flush()

    def capture_library_logs(self, *names: str) -> None:
        """Send the warnings of these loggers (e.g. 'apscheduler') to this log."""
        handler = _Handler(self)
        for name in names:
            logger = logging.getLogger(name)
            logger.handlers[:] = [handler]
            logger.setLevel(logging.WARNING)
            logger.propagate = False


class _Handler(logging.Handler):
    def __init__(self, log: EventLog) -> None:
        super().__init__()
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        self._log.write(level, "library", {"logger": record.name, "message": record.getMessage()})


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return str(value)


def _pair(key: str, value: Any) -> str:
    text = _plain(value) if not isinstance(value, str | int | float | bool) else value
    text = str(text)
    if text == "" or any(c.isspace() or c in '"=' for c in text):
        text = json.dumps(text, ensure_ascii=False)
    return f"{key}={text}"
