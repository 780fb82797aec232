"""`reminders edit`: an email whose text staff change keeps the agency's branded HTML.

The HTML part is built again from the kind's layout around the edited text, escaped:
the header, the footer and its unsubscribe link stay. Commands run in process on a
fixed clock (see test_local_day), sending into a maildir.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import shlex
import sys
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from acceptance.test_local_day import invoke, invoke_json
from acceptance.workspace import Workspace
from reminders.clock import FixedClock

#: 2026-12-01 in every agency's zone
MORNING = FixedClock(datetime(2026, 12, 1, 15, 0, tzinfo=UTC))
ORIGINAL = "We wish you a safe journey and a wonderful stay."
#: What staff type instead: markup, a lone carriage return, an ampersand.
EDITED = "Your <script>alert(1)</script> keys & map\rwait at the door."
ESCAPED = "Your &lt;script&gt;alert(1)&lt;/script&gt; keys &amp; map<br>\nwait at the door."

#: An $EDITOR that replaces one sentence of the text part, and leaves the HTML part alone.
EDITOR_SCRIPT = """\
import os
import sys
from pathlib import Path

path = Path(sys.argv[-1])
document = path.read_text(encoding="utf-8")
text, marker, html = document.partition("-----8<-----")
edited = os.environ["EDITED"].replace("<NUL>", chr(0))  # no NUL in an environment
text = text.replace(os.environ["ORIGINAL"], edited)
path.write_text(text + marker + html, encoding="utf-8", newline="")
later = path.stat().st_mtime + 10
os.utime(path, (later, later))
"""


@pytest.fixture(autouse=True)
def _maildir(monkeypatch: pytest.MonkeyPatch, planned: Workspace) -> None:
    """Send into the maildir; the editor replaces ORIGINAL by EDITED."""
    for variable in [v for v in os.environ if v.startswith("REMINDERS_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("REMINDERS_MAIL__TRANSPORT", "maildir")
    monkeypatch.setenv("REMINDERS_WEB__SECRET_KEY", "a-throwaway-key-for-the-edit-layout-tests")
    monkeypatch.setenv("REMINDERS_WEB__BASE_URL", "https://links.example")
    script = planned.write("editor.py", EDITOR_SCRIPT)
    monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")
    monkeypatch.setenv("ORIGINAL", ORIGINAL)
    monkeypatch.setenv("EDITED", EDITED)


def arrival_in_montreal(workspace: Workspace) -> int:
    [item] = [
        i for i in invoke_json(workspace, "queue", clock=MORNING) if i["booking_ref"] == "B-5"
    ]
    return int(item["id"])


def html_of(workspace: Workspace, item_id: int) -> str:
    shown = invoke_json(workspace, "show", str(item_id), clock=MORNING)
    html: str = shown["html"]
    return html


def test_a_text_only_edit_keeps_the_agencys_header_and_footer(planned: Workspace) -> None:
    item_id = arrival_in_montreal(planned)
    before = html_of(planned, item_id)

    edited = invoke(planned, "edit", str(item_id), clock=MORNING)
    html = html_of(planned, item_id)
    shown = invoke(planned, "show", str(item_id), "--html", clock=MORNING).stdout
    text = invoke_json(planned, "show", str(item_id), clock=MORNING)["text"]

    assert edited.code == 0, edited.describe()
    assert ORIGINAL in before and ORIGINAL not in html
    # The agency's header, and its footer with the unsubscribe link to be made at sending.
    header = 'color:#1f6f8b;">Chalets Laurentides</div>'
    assert header in before and header in html
    assert '<a href="%UNSUBSCRIBE_URL%" style="color:#777777;">Unsubscribe</a>' in html
    assert "You are receiving this message about your booking B-5." in html
    # Staff's text, escaped, in the layout's paragraphs; nothing of it runs.
    assert ESCAPED in html and "<script>" not in html
    assert '<p style="margin:0 0 16px 0;">Dear Olivia Tremblay,</p>' in html
    # The summary box went with the content it summed up; the text's own footer
    # (its unsubscribe line) is not repeated above the layout's.
    assert "border-left:3px solid #1f6f8b" in before and "border-left" not in html
    assert html.count("%UNSUBSCRIBE_URL%") == 1
    assert text.rstrip().endswith("Unsubscribe: %UNSUBSCRIBE_URL%\nEmail settings: %SETTINGS_URL%")
    assert shown.endswith(html)


def test_the_sent_email_has_the_branded_html_with_its_unsubscribe_link(
    planned: Workspace,
) -> None:
    item_id = arrival_in_montreal(planned)
    invoke(planned, "edit", str(item_id), clock=MORNING)

    sent = invoke(planned, "send", str(item_id), clock=MORNING)
    [message] = [
        email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
        for m in mailbox.Maildir(planned.folder / "outbox", create=False)
    ]
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()

    assert sent.code == 0, sent.describe()
    assert 'color:#1f6f8b;">Chalets Laurentides</div>' in html
    assert '<a href="https://links.example/unsubscribe/' in html
    assert "%UNSUBSCRIBE_URL%" not in html
    assert ESCAPED in html and "<script>" not in html


def test_an_edit_holding_a_nul_character_is_refused_and_nothing_saved(
    planned: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    item_id = arrival_in_montreal(planned)
    before = html_of(planned, item_id)
    monkeypatch.setenv("EDITED", "Your keys<NUL>wait at the door.")

    edited = invoke(planned, "edit", str(item_id), clock=MORNING)

    assert edited.code != 0
    assert "control character" in edited.stderr and "nothing saved" in edited.stderr
    assert html_of(planned, item_id) == before
