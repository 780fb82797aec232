"""`reminders web` as an operator runs it: the secret it needs, where it listens, how it stops."""

from __future__ import annotations

import socket

import httpx

from acceptance.test_send_cli import SECRET
from acceptance.web_command import WebCommand
from acceptance.workspace import Workspace, assert_fails
from mail_server import free_port


def web_env(port: int, **more: str) -> dict[str, str | None]:
    return {
        "REMINDERS_WEB__SECRET_KEY": SECRET,
        "REMINDERS_WEB__BASE_URL": f"http://127.0.0.1:{port}",
        **more,
    }


def test_it_refuses_to_start_without_the_signing_key(loaded: Workspace) -> None:
    result = loaded.run("web", env={"REMINDERS_WEB__BASE_URL": f"http://127.0.0.1:{free_port()}"})

    assert_fails(result, 2, "REMINDERS_WEB__SECRET_KEY is not set")


def test_it_listens_on_the_port_of_base_url_and_stops_cleanly_on_sigterm(
    loaded: Workspace,
) -> None:
    port = free_port()
    web = WebCommand(loaded, port, web_env(port)).start()
    try:
        with httpx.Client(base_url=web.url, follow_redirects=False, timeout=10) as client:
            missing = client.get("/")
            forged = client.get("/unsubscribe/forged-token-value")
    finally:
        code = web.stop()

    assert code == 0, web.log
    assert missing.status_code == 404
    assert forged.status_code == 400
    assert missing.headers["x-frame-options"] == "DENY"
    log = web.log
    assert "event=web.started" in log
    assert "route=/unsubscribe/{token}" in log
    assert "forged-token-value" not in log
    assert "event=web.stopped" in log
    assert "Traceback" not in log


def test_port_and_host_options_override_base_url(loaded: Workspace) -> None:
    port = free_port()
    web = WebCommand(
        loaded, port, web_env(free_port()), "--host", "127.0.0.1", "--port", str(port)
    ).start()
    try:
        with httpx.Client(base_url=web.url, timeout=10) as client:
            assert client.get("/style.css").status_code == 200
    finally:
        assert web.stop() == 0, web.log


def test_a_busy_port_is_one_line_and_exit_1(loaded: Workspace) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]

        result = loaded.run("web", env=web_env(port))

    assert_fails(result, 1, f"cannot listen on 127.0.0.1:{port}", "--port")
