"""Consent: whether a contact may be written to, and if not, why.

This stage reads the contact's own columns (`email_confirmed`, `email_opt_out`);
the per-address registry replaces `reason_for` without its callers changing.
"""

from __future__ import annotations

from enum import StrEnum

from email_validator import EmailNotValidError, validate_email

from .errors import InvalidAddress


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


def normalise_address(address: str) -> str:
    """Return the form an address is known by: how it is compared, signed and sent.

    The local part is kept as written (Unicode NFC: `+tags` and dots are the
    owner's business); the domain is lower-cased and in its ASCII (IDNA) form.
    Two spellings that differ only in letter case compare equal with `same_address`.
    """
    try:
        valid = validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise InvalidAddress(f"{address!r} is not a valid email address: {error}") from None
    return f"{valid.local_part}@{valid.ascii_domain}"


def same_address(a: str, b: str) -> bool:
    """Tell whether two normalised addresses are the same mailbox (case-insensitive)."""
    return a.casefold() == b.casefold()
