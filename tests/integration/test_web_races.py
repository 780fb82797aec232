"""Concurrent requests on one link: real POSTs over HTTP, at once, on SQLite and PostgreSQL.

Threads released together each post through their own connection to the app served by
uvicorn. Where the window between a request's read and its write is only a few
milliseconds, `reads_meet` holds each reader until the others have read too (at most
half a second), as a slow disk or a busy database would: it delays, never decides.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from integration.dispatch_world import World
from integration.web_site import GUEST, Site, confirm_token_in, forms_in, running_site
from reminders import registry
from reminders.store._consent import ConsentStore

#: How long a reader waits for the others at most (seconds).
MEETING_S = 0.5


@pytest.fixture
def site(world: World) -> Iterator[Site]:
    with running_site(world) as site:
        yield site


def at_once(site: Site, posts: list[tuple[str, dict[str, str]]]) -> list[httpx.Response]:
    """POST each (path, form) from its own thread and connection, all released together."""
    start = threading.Barrier(len(posts))
    responses: list[httpx.Response | None] = [None] * len(posts)
    base_url = str(site.client.base_url)

    def post(index: int, path: str, form: dict[str, str]) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            start.wait(timeout=10)
            responses[index] = client.post(path, data=form)

    threads = [
        threading.Thread(target=post, args=(i, path, form)) for i, (path, form) in enumerate(posts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None for r in responses), "a request did not finish"
    return [r for r in responses if r is not None]


def meeting(monkeypatch: pytest.MonkeyPatch, owner: type, name: str, expected: int) -> None:
    """Make `owner.name` wait, after it returns, until `expected` callers have returned."""
    original: Callable[..., Any] = getattr(owner, name)
    arrived = threading.Semaphore(0)
    count = [0]
    lock = threading.Lock()
    everyone = threading.Event()

    def waiting(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        with lock:
            count[0] += 1
            if count[0] >= expected:
                everyone.set()
        arrived.release()
        everyone.wait(timeout=MEETING_S)
        return result

    monkeypatch.setattr(owner, name, waiting)


def confirmations(site: Site) -> int:
    found = registry.status(site.world.database, site.world.settings, GUEST)
    return sum(1 for event in found.history if event.action == "confirm")


# -- (a) two "send me a new confirmation" at once --------------------------------------------


def test_asking_twice_at_once_for_a_new_email_sends_one_and_its_link_works(site: Site) -> None:
    token = site.send_confirmation()
    site.world.clock.advance(days=31)
    [(renew, form)] = forms_in(site.client.get(f"/confirm/{token}").text)
    sent_before = len(site.world.mail_server.to(GUEST))

    responses = at_once(site, [(renew, form)] * 4)

    codes = sorted(r.status_code for r in responses)
    new_emails = site.world.mail_server.to(GUEST)[sent_before:]
    assert codes == [200, 429, 429, 429], codes
    assert len(new_emails) == 1, f"{len(new_emails)} emails sent for one 200"
    link = confirm_token_in(new_emails[0])
    done = site.client.post(f"/confirm/{link}")
    assert done.status_code == 200, done.text
    assert site.status()[0] == "ok"


# -- (b) one confirmation link posted many times at once -------------------------------------


@pytest.mark.parametrize("reads", ["as-they-come", "reads-meet"])
def test_one_link_posted_ten_times_at_once_confirms_once(
    site: Site, monkeypatch: pytest.MonkeyPatch, reads: str
) -> None:
    token = site.send_confirmation()
    if reads == "reads-meet":
        meeting(monkeypatch, ConsentStore, "confirmation", expected=10)

    responses = at_once(site, [(f"/confirm/{token}", {})] * 10)

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 9, codes
    assert confirmations(site) == 1
    assert site.status()[0] == "ok"
