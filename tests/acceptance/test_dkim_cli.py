"""DKIM as a user meets it: config check, then signed emails checked as a receiver would.

Every message the loopback SMTP server (or the maildir) receives is verified with
dkimpy, whose DNS look-up is answered with the TXT record `config check` printed.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest

from acceptance.test_send_cli import smtp_env
from acceptance.workspace import Workspace, assert_fails
from dkim_keys import ec_pem, encrypted_pem, rsa_pem
from mail_server import MailServer

DKIM_SECTION = '\n[dkim]\ndomain = "agence-du-lac.example"\nselector = "reminders"\n'
KEY_FILE = 'key_file = "keys/dkim.pem"\n'


def with_dkim(workspace: Workspace, key: str | None = rsa_pem(), *, key_file: bool = True) -> None:
    """Add the [dkim] section to reminders.toml; write `key` to keys/dkim.pem."""
    text = workspace.config.read_text(encoding="utf-8") + DKIM_SECTION
    workspace.config.write_text(text + (KEY_FILE if key_file else ""), encoding="utf-8")
    if key is not None:
        (workspace.folder / "keys").mkdir(exist_ok=True)
        workspace.write("keys/dkim.pem", key)


def published_dns(workspace: Workspace) -> Callable[..., bytes | None]:
    """Publish what `config check` says to, as a zone would answer it."""
    output = workspace.ok("config", "check").stdout
    [record] = [line for line in output.splitlines() if " IN TXT " in line]
    name, strings = record.split(" IN TXT ")
    value = "".join(re.findall(r'"([^"]*)"', strings))
    zone = {name.encode(): value.encode()}

    def lookup(query: bytes, timeout: int = 5) -> bytes | None:
        return zone.get(query)

    return lookup


def verifies(data: bytes, dns: Callable[..., bytes | None]) -> bool:
    result: bool = dkim.verify(data, dnsfunc=dns)
    return result


def test_config_check_prints_the_record_and_each_agencys_alignment(cli: Workspace) -> None:
    with_dkim(cli)

    output = cli.ok("config", "check").stdout
    as_json = cli.json("config", "check")

    assert "every email is signed d=agence-du-lac.example s=reminders (RSA 2048 bits)" in output
    assert re.search(
        r'^reminders\._domainkey\.agence-du-lac\.example\. IN TXT "v=DKIM1; k=rsa; p=MII',
        output,
        re.M,
    )
    assert "annecy: sender domain agence-du-lac.example aligns" in output
    assert "montreal: sender domain chalets-laurentides.example does NOT align" in output
    assert {a["code"]: a["dkim_aligned"] for a in as_json} == {
        "annecy": True,
        "montreal": False,
        "auckland": False,
    }


def test_without_dkim_config_check_says_nothing_of_it(cli: Workspace) -> None:
    output = cli.ok("config", "check").stdout

    assert "DKIM" not in output
    assert {a["dkim_aligned"] for a in cli.json("config", "check")} == {None}


def test_every_email_sent_over_smtp_verifies_and_a_tampered_one_does_not(
    planned: Workspace, mail_server: MailServer
) -> None:
    with_dkim(planned)
    dns = published_dns(planned)

    planned.ok("send-all", "--agency", "annecy", "--kind", "balance_due", "--yes",
               env=smtp_env(mail_server))  # fmt: skip
    planned.ok("consent", "send-confirmation", "sophie.lefevre@example.fr",
               env=smtp_env(mail_server))  # fmt: skip

    received = mail_server.messages()
    assert len(received) >= 2  # a reminder and a confirmation
    for message in received:
        assert message.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
        assert verifies(message.data, dns), message.message["Message-ID"]
        tampered = re.sub(rb"\r\nSubject: ", b"\r\nSubject: Re: ", message.data, count=1)
        assert not verifies(tampered, dns)
        second_from = b"From: Someone Else <x@evil.example>\r\n" + message.data
        assert not verifies(second_from, dns)


def test_the_key_may_come_from_the_environment(
    planned: Workspace, planned_ids: dict[tuple[str, str], int], mail_server: MailServer
) -> None:
    with_dkim(planned, key=None, key_file=False)
    env = smtp_env(mail_server, REMINDERS_DKIM__PRIVATE_KEY=rsa_pem())
    record = planned.ok("config", "check", env=env).stdout

    planned.ok("send", str(planned_ids[("B-1", "balance_due")]), env=env)

    [message] = mail_server.messages()
    value = "".join(re.findall(r'"([^"]*)"', record.split(" IN TXT ")[1].splitlines()[0]))
    assert verifies(message.data, lambda name, timeout=5: value.encode())


def test_the_maildir_transport_writes_signed_messages(planned: Workspace) -> None:
    with_dkim(planned)
    dns = published_dns(planned)
    env = {"REMINDERS_MAIL__TRANSPORT": "maildir", "REMINDERS_WEB__SECRET_KEY": "k" * 32}

    planned.ok("send-all", "--agency", "annecy", "--kind", "balance_due", "--yes", env=env)

    files = list(mailbox.Maildir(planned.folder / "outbox", create=False))
    assert files
    for message in files:
        assert verifies(message.as_bytes(), dns)


BAD_KEYS = {
    "missing-file": (None, True, {}, ["not found", "openssl genrsa"]),
    "garbage": ("this is not a key\n", True, {}, ["not a PEM private key"]),
    "encrypted": (encrypted_pem(), True, {}, ["passphrase"]),
    "not-rsa": (ec_pem(), True, {}, ["not an RSA key"]),
    "file-and-environment": (
        rsa_pem(),
        True,
        {"REMINDERS_DKIM__PRIVATE_KEY": rsa_pem()},
        ["given twice"],
    ),
    "no-key": (None, False, {}, ["no key"]),
    "garbage-in-environment": (
        None,
        False,
        {"REMINDERS_DKIM__PRIVATE_KEY": "nonsense"},
        ["REMINDERS_DKIM__PRIVATE_KEY", "not a PEM private key"],
    ),
}


@pytest.mark.parametrize(("key", "key_file", "env", "fragments"), BAD_KEYS.values(), ids=BAD_KEYS)
def test_a_key_that_cannot_sign_stops_everything_with_one_line(
    planned: Workspace,
    mail_server: MailServer,
    key: str | None,
    key_file: bool,
    env: dict[str, str],
    fragments: list[str],
) -> None:
    before = planned.queue("--status", "all")
    original = planned.config.read_text(encoding="utf-8")
    with_dkim(planned, key, key_file=key_file)
    environment = smtp_env(mail_server, **env)

    check = planned.run("config", "check", env=environment)
    runs = {
        "send-all": planned.run(
            "send-all", "--agency", "annecy", "--kind", "balance_due", "--yes", env=environment
        ),
        "send": planned.run("send", str(before[0]["id"]), env=environment),
        "confirmation": planned.run(
            "consent", "send-confirmation", "sophie.lefevre@example.fr", env=environment
        ),
        "run": planned.run("run", env=environment),
    }

    # config check lists the agencies it could read on stdout, then says what is wrong.
    assert check.code == 2 and len(check.errors) == 1, check.describe()
    assert all(fragment in check.errors[0] for fragment in fragments), check.describe()
    for what, result in runs.items():
        line = assert_fails(result, 2, *fragments)
        assert len(result.errors) == 1, (what, result.describe())
        assert rsa_pem().splitlines()[1][:20] not in line
    assert mail_server.messages() == []
    planned.config.write_text(original, encoding="utf-8")
    assert planned.queue("--status", "all") == before


def test_the_key_file_is_relative_to_the_config_file(planned: Workspace, tmp_path: Path) -> None:
    with_dkim(planned)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = planned.run("--config", str(planned.config), "config", "check", cwd=elsewhere)

    assert result.code == 0, result.describe()
