"""`reminders api-key ...` as an operator runs it, and the keys at work on `reminders web`."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from acceptance.test_web_cli import web_env
from acceptance.web_command import WebCommand
from acceptance.workspace import Workspace, assert_fails
from mail_server import free_port

ADDRESS = "marie.dupont@example.fr"


def create(workspace: Workspace, name: str) -> str:
    result = workspace.ok("api-key", "create", name)
    key, *explanation = result.stdout.splitlines()
    assert key.startswith("rk_") and len(key) >= 40
    assert "shown only now" in " ".join(explanation)
    return key


def test_a_key_is_printed_once_listed_without_it_and_revoked(loaded_on: Workspace) -> None:
    key = create(loaded_on, "crm-sync")
    made = loaded_on.json("api-key", "create", "shop")

    listed = loaded_on.json("api-key", "list")

    assert [k["name"] for k in listed] == ["crm-sync", "shop"]
    assert made["key"].startswith("rk_") and made["name"] == "shop"
    assert listed[0]["actor"] == "api:crm-sync"
    assert listed[0]["last_used_at"] is None and listed[0]["revoked"] is False
    text = loaded_on.ok("api-key", "list").stdout
    assert "crm-sync" in text and "in use" in text
    for shown in (text, str(listed)):
        assert key not in shown and hashlib.sha256(key.encode()).hexdigest() not in shown

    revoked = loaded_on.ok("api-key", "revoke", "crm-sync")
    again = loaded_on.ok("api-key", "revoke", "crm-sync")

    assert "revoked" in revoked.stdout
    assert "already revoked" in again.stdout
    assert loaded_on.json("api-key", "list")[0]["revoked"] is True


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("create", "CRM Sync"), 2, "cannot name an API key"),
        (("create", "api:x"), 2, "cannot name an API key"),
        (("revoke", "nobody"), 1, "no API key named 'nobody'"),
    ],
)
def test_mistakes_are_one_line(
    cli: Workspace, args: tuple[str, ...], code: int, words: str
) -> None:
    assert_fails(cli.run("api-key", *args), code, words)


def test_a_name_is_never_reused_even_revoked(cli: Workspace) -> None:
    create(cli, "crm-sync")
    cli.ok("api-key", "revoke", "crm-sync")

    assert_fails(cli.run("api-key", "create", "crm-sync"), 2, "exists already", "another name")


def test_the_api_served_by_reminders_web_acts_under_the_keys_name(loaded: Workspace) -> None:
    key = create(loaded, "crm-sync")
    port = free_port()
    web = WebCommand(loaded, port, web_env(port)).start()
    try:
        with httpx.Client(base_url=web.url, timeout=10) as client:
            auth = {"Authorization": f"Bearer {key}"}
            anonymous = client.get(f"/api/v1/addresses/{ADDRESS}")
            opted_out = client.post(
                f"/api/v1/addresses/{ADDRESS}/opt-out", json={"method": "crm"}, headers=auth
            )
            described = client.get("/api/v1/openapi.json", headers=auth)
            loaded.ok("api-key", "revoke", "crm-sync")
            revoked = client.get(f"/api/v1/addresses/{ADDRESS}", headers=auth)
    finally:
        assert web.stop() == 0, web.log

    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert opted_out.status_code == 200, opted_out.text
    assert described.status_code == 200
    assert "/api/v1/opt-outs" in described.json()["paths"]
    assert revoked.status_code == 401
    status = loaded.json("consent", "status", ADDRESS)
    assert status["consent"] == "opted_out"
    assert status["history"][-1]["actor"] == "api:crm-sync"
    assert status["history"][-1]["method"] == "crm"
    [listed] = loaded.json("api-key", "list")
    assert listed["last_used_at"] is not None
    assert "key=crm-sync" in web.log
    assert key not in web.log and ADDRESS not in web.log
