"""`reminders run`: the daemon as operators run it, in a process of its own.

Its clock is frozen by the test where the day matters (freezegun, ticking from a
chosen instant, started before reminders is imported); signals are real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from acceptance.test_send_cli import smtp_env
from acceptance.workspace import (
    REMINDERS,
    Workspace,
    by_ref,
    clean_environment,
    config_text,
)
from mail_server import MailServer

#: Runs the command with its clock frozen at argv[1], ticking from there.
FROZEN = (
    "import sys; from freezegun import freeze_time; "
    "freeze_time(sys.argv[1], tick=True).start(); "
    "from reminders.cli import main; sys.argv = ['reminders', *sys.argv[2:]]; main()"
)


class Daemon:
    """A `reminders run` process whose JSON log lines are collected as they come."""

    def __init__(
        self, workspace: Workspace, env: dict[str, str | None], frozen_at: str | None = None
    ) -> None:
        command = (
            [sys.executable, "-c", FROZEN, frozen_at, "run", "--log-format", "json"]
            if frozen_at
            else [str(REMINDERS), "run", "--log-format", "json"]
        )
        self.process = subprocess.Popen(
            command,
            cwd=workspace.folder,
            env=clean_environment(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            lines = list(self.lines)
        parsed = []
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                raise AssertionError(f"not a JSON log line: {line!r}\n" + self.log()) from None
            if name is None or event["event"] == name:
                parsed.append(event)
        return parsed

    def wait_for(self, name: str, timeout_s: float = 30.0, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.events(name):
                if all(event.get(k) == v for k, v in fields.items()):
                    return event
            if self.process.poll() is not None:
                self._reader.join(5)
                for event in self.events(name):
                    if all(event.get(k) == v for k, v in fields.items()):
                        return event
                raise AssertionError(f"the daemon exited before {name}:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"no {name} {fields} within {timeout_s} s:\n{self.log()}")

    def signal(self, number: int) -> None:
        os.kill(self.process.pid, number)

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        code = self.process.wait(timeout_s)
        self.close()
        return code

    def close(self) -> None:
        self._reader.join(5)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def log(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test starts; any still running at the end are killed."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(10)
        daemon.close()


def daemon_env(server: MailServer, **more: str) -> dict[str, str | None]:
    settings = {"REMINDERS_DAEMON__DISPATCH_EVERY_S": "0.3", "REMINDERS_MAIL__RETRY_AFTER_S": "1"}
    return smtp_env(server, **{**settings, **more})


def with_agency_lines(workspace: Workspace, code: str, *lines: str) -> None:
    """Add lines to one agency's table of the workspace's configuration."""
    text = config_text()
    anchor = f'templates_dir = "agency-templates/{code}"\n'
    assert anchor in text
    workspace.write(
        "reminders.toml", text.replace(anchor, anchor + "".join(f"{x}\n" for x in lines))
    )


def test_it_starts_stops_on_sigterm_and_exits_0(
    planned: Workspace, mail_server: MailServer, daemons: list[Daemon]
) -> None:
    daemon = Daemon(planned, daemon_env(mail_server))
    daemons.append(daemon)

    started = daemon.wait_for("daemon.started")
    code = daemon.stop()

    assert code == 0, daemon.log()
    assert started["agencies"] == "annecy,montreal,auckland"
    assert daemon.events("daemon.stopped")
    assert {e["level"] for e in daemon.events()} <= {"info", "warning"}, daemon.log()


def test_it_plans_each_agency_at_its_local_plan_at(
    loaded: Workspace, mail_server: MailServer, daemons: list[Daemon]
) -> None:
    # Every agency planned 2026-11-30 already. At 05:29:57 UTC on 2026-12-01 it is
    # 06:29:57 in Paris (annecy plans at 06:30), 00:29 in Toronto (montreal: not
    # yet), and 18:29 in Auckland, whose 06:30 pass of that day was missed: caught up.
    loaded.ok("plan", "--date", "2026-11-30")
    daemon = Daemon(loaded, daemon_env(mail_server), frozen_at="2026-12-01T05:29:57Z")
    daemons.append(daemon)

    caught_up = daemon.wait_for("plan.done", agency="auckland")
    on_time = daemon.wait_for("plan.done", agency="annecy", timeout_s=20)
    assert daemon.stop() == 0, daemon.log()

    assert caught_up["day"] == "2026-12-01"
    assert on_time["day"] == "2026-12-01"
    assert on_time["at"].startswith("2026-12-01T05:30:0"), on_time
    assert not daemon.events("plan.done")[2:], "montreal must wait for 06:30 in Toronto"
    assert not [e for e in daemon.events("plan.done") if e["agency"] == "montreal"]
    # What a pass on 2026-12-01 queues for annecy is now in the list.
    queued = by_ref(loaded.queue("--agency", "annecy"))
    assert ("B-1", "balance_due") in queued and ("B-7", "arrival") not in queued


def test_auto_send_kinds_go_out_without_staff_and_survive_a_server_outage(
    loaded: Workspace, mail_server: MailServer, daemons: list[Daemon]
) -> None:
    with_agency_lines(loaded, "montreal", "max_per_minute = 600")
    text = (loaded.folder / "reminders.toml").read_text(encoding="utf-8")
    loaded.write("reminders.toml", text + "\n[agency.auto_send]\narrival = true\n")
    mail_server.stop()
    # Auto-send approves what the daemon's own pass queues (the catch-up pass of a
    # database never planned) and is listed today: the day the data is made for.
    daemon = Daemon(loaded, daemon_env(mail_server), frozen_at="2026-12-01T08:00:00Z")
    daemons.append(daemon)

    retry = daemon.wait_for("mail.retry")
    assert loaded.queue("--status", "sent") == []
    mail_server.start()
    sent = daemon.wait_for("mail.sent", timeout_s=30)
    assert daemon.stop() == 0, daemon.log()

    # auckland is the last [[agency]] table, so the auto_send table belongs to it.
    assert retry["agency"] == "auckland" and sent["agency"] == "auckland"
    received = mail_server.messages()
    assert [m.rcpt_to for m in received] == [("aroha.ngata@example.nz",)]
    item = by_ref(loaded.queue("--status", "sent"))[("B-6", "arrival")]
    assert received[0].message["Message-ID"] == item["message_id"]
    assert item["approved_by"] == "auto_send"
    # Staff-reviewed kinds still wait for staff.
    assert ("B-5", "arrival") in by_ref(loaded.queue())


def test_sigterm_lets_the_message_in_flight_finish(
    planned: Workspace, planned_ids: dict[tuple[str, str], int], mail_server: MailServer,
    daemons: list[Daemon],
) -> None:  # fmt: skip
    ids = [planned_ids[("B-1", "balance_due")], planned_ids[("B-5", "arrival")]]
    mail_server.stop()
    planned.run("send", *map(str, ids), env=smtp_env(mail_server))  # both approved, not sent
    mail_server.start()
    mail_server.stall_s = 2
    daemon = Daemon(planned, daemon_env(mail_server, REMINDERS_MAIL__RETRY_AFTER_S="0.1"))
    daemons.append(daemon)
    assert mail_server.data_started.wait(30), daemon.log()

    daemon.signal(signal.SIGTERM)
    code = daemon.stop()

    assert code == 0, daemon.log()
    statuses = sorted(i["status"] for i in planned.queue("--status", "all") if i["id"] in ids)
    assert statuses == ["approved", "sent"], daemon.log()
    assert len(mail_server.messages()) == 1


def test_sighup_with_a_broken_file_keeps_running_on_the_old_configuration(
    planned: Workspace, mail_server: MailServer, daemons: list[Daemon]
) -> None:
    daemon = Daemon(planned, daemon_env(mail_server))
    daemons.append(daemon)
    daemon.wait_for("daemon.started")
    good = (planned.folder / "reminders.toml").read_text(encoding="utf-8")

    planned.write("reminders.toml", good + "\n[[agency]\ncode = broken\n")
    daemon.signal(signal.SIGHUP)
    failed = daemon.wait_for("config.reload_failed")
    time.sleep(0.5)
    assert daemon.process.poll() is None, daemon.log()

    planned.write("reminders.toml", good.replace('name = "Kiwi Baches"', 'name = "Kiwi Baches NZ"'))
    daemon.signal(signal.SIGHUP)
    reloaded = daemon.wait_for("config.reloaded")

    assert daemon.stop() == 0, daemon.log()
    assert "invalid TOML" in failed["error"] and "reminders.toml" in failed["error"]
    assert failed["action"] == "kept the previous configuration"
    assert reloaded["agencies"] == "annecy,montreal,auckland"


def test_it_refuses_to_start_without_the_signing_key(
    planned: Workspace, mail_server: MailServer
) -> None:
    env = daemon_env(mail_server, REMINDERS_WEB__SECRET_KEY="")

    result = planned.run("run", env=env)

    assert result.code == 2, result.describe()
    assert result.errors == [result.errors[0]] and "REMINDERS_WEB__SECRET_KEY" in result.stderr


def test_health_reports_late_planning_and_recent_planning(loaded: Workspace) -> None:
    late = loaded.run("health")
    loaded.ok("plan")
    fine = loaded.json("health")

    assert late.code == 1, late.describe()
    assert late.errors == [late.errors[0]] and "planning is late" in late.stderr
    assert "annecy, montreal, auckland" in late.stderr
    assert [row["ok"] for row in fine] == [True, True, True]


def test_today_emails_the_summary_to_the_agency(
    planned: Workspace, mail_server: MailServer
) -> None:
    with_agency_lines(
        planned, "annecy", 'summary_to = "Direction <direction@agence-du-lac.example>"'
    )

    result = planned.ok("today", "--email", env=smtp_env(mail_server))

    assert "direction@agence-du-lac.example" in result.stdout
    [received] = mail_server.messages()
    assert received.rcpt_to == ("direction@agence-du-lac.example",)
    assert "Infos du jour" in received.message["Subject"]
    assert "Rappel solde : 1 à envoyer (1 prêt, 0 sans consentement)" in received.part("plain")
