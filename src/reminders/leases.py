"""Who holds a claimed item, and until when.

A dispatcher claims items under a name, `host:pid:nonce`, and a lease deadline it
renews while its batch runs. An item still `sending` once its lease passed was
abandoned (the process died, or could not record the outcome): whoever finds it,
its own claimant included, makes it `unknown`. On the claimant's own host a dead
process is known at once, without waiting for the lease.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from datetime import timedelta

_NONCE = re.compile(r"[0-9a-f]{8}")
#: Past the SMTP timeout of each of a transaction's steps (connect, MAIL, RCPT, DATA).
_LEASE_MARGIN_S = 60


def this_process() -> str:
    """Name the current process as a claimant: 'host:pid:nonce'.

    The nonce tells two processes apart that got the same pid, and makes the
    Message-IDs of this process's attempts unique (`message_id`).
    """
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def lease_length(smtp_timeout_s: float) -> timedelta:
    """Return how long a claim holds without renewal: 4 × the SMTP timeout, plus a minute."""
    return timedelta(seconds=4 * smtp_timeout_s + _LEASE_MARGIN_S)


def _parts(claimant: str) -> tuple[str, str, str]:
    """Split a claimant's name into host, pid and nonce ('' for an older 'host:pid' name).

    The nonce is 8 hexadecimal digits, longer than any pid, so a host name holding
    colons is still told apart.
    """
    head, _, last = claimant.rpartition(":")
    if _NONCE.fullmatch(last) and ":" in head:
        host, _, pid = head.rpartition(":")
        if pid.isascii() and pid.isdigit():
            return host, pid, last
    return head, last, ""


def nonce_of(claimant: str) -> str:
    """Return the nonce part of a claimant's name ('' for an older 'host:pid' name)."""
    return _parts(claimant)[2]


def message_id(item_id: int, attempt: int, claimant: str, domain: str) -> str:
    """Return the Message-ID of an item's attempt, derived from its claim alone.

    Anyone can tell it again from the item's row (after a crash, say), so it is
    never written before the message leaves.
    """
    nonce = nonce_of(claimant) or "0"
    return f"<r{item_id}.{attempt}.{nonce}@{domain}>"


def claimant_is_gone(claimant: str | None, host: str) -> bool:
    """Tell whether the process named `claimant` surely stopped (only knowable on `host`)."""
    if not claimant:
        return True
    claimant_host, pid, _nonce = _parts(claimant)
    if claimant_host != host or not (pid.isascii() and pid.isdigit()):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # alive and someone else's, or no pid at all: cannot tell
    return False
