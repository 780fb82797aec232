"""Consent: whether a contact may be written to, and if not, why.

This stage reads the contact's own columns (`email_confirmed`, `email_opt_out`);
the per-address registry replaces `reason_for` without its callers changing.
"""

from __future__ import annotations

from enum import StrEnum


class ConsentReason(StrEnum):
    OK = "ok"  #: confirmed and not opted out: may be sent
    NO_ADDRESS = "no_address"  #: the contact has no email address
    UNCONFIRMED = "unconfirmed"  #: never confirmed (double opt-in not done)
    CONFIRMATION_PENDING = "confirmation_pending"  #: confirmation email sent, not clicked yet
    OPTED_OUT = "opted_out"  #: the address asked not to be written to
    INACTIVE = "inactive"  #: no confirmed activity for too long: must confirm again


def reason_for(*, address: str | None, confirmed: bool, opted_out: bool) -> ConsentReason:
    """Tell whether an address may be written to (`OK`) or why not."""
    if not address:
        return ConsentReason.NO_ADDRESS
    if opted_out:
        return ConsentReason.OPTED_OUT
    if not confirmed:
        return ConsentReason.UNCONFIRMED
    return ConsentReason.OK
