"""The consent rules, as tables: the state of an address, who may change it, its key.

The expectations are written from the rule table of `reminders.consent`'s docstring,
independently of `decide`: one grid per action, a row per requester, a column per
current opt-out source.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum

import pytest

from reminders.consent import (
    CONTACT_RESEND_INTERVAL,
    KIND_ACTIONS,
    Action,
    AddressConsent,
    ConsentReason,
    Source,
    address_key,
    decide,
    decide_kind,
    normalise_address,
    state_of,
)
from reminders.errors import InvalidAddress

ADDRESS = "Jean.Dupont@example.com"
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
RECONFIRM = timedelta(days=730)
#: when the current opt-out (if any) was made
EARLIER = NOW - timedelta(days=30)
#: when the address was confirmed, in the rows where it was
CONFIRMED = NOW - timedelta(days=100)

AGENT, CONTACT, SYSTEM, IMPORT = Source.AGENT, Source.CONTACT, Source.SYSTEM, Source.IMPORT


def record(**facts: object) -> AddressConsent:
    return AddressConsent(address=ADDRESS, **facts)  # type: ignore[arg-type]


# -- state_of ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(None, ConsentReason.NO_ADDRESS, id="no-record-no-address"),
        pytest.param({}, ConsentReason.UNCONFIRMED, id="nothing-known-unconfirmed"),
        *[
            pytest.param(
                {"opted_out_by": source, "opted_out_at": EARLIER,
                 "confirmed_at": NOW - timedelta(days=1)},
                ConsentReason.OPTED_OUT,
                id=f"opted-out-by-{source}-although-confirmed-yesterday",
            )
            for source in Source
        ],
        pytest.param({"opted_out_by": AGENT, "opted_out_at": EARLIER,
                      "confirmation_sent_at": NOW - timedelta(days=1)},
                     ConsentReason.OPTED_OUT, id="opted-out-beats-confirmation-pending"),
        pytest.param({"confirmed_at": NOW}, ConsentReason.OK, id="confirmed-just-now"),
        pytest.param({"confirmed_at": NOW - timedelta(days=1)}, ConsentReason.OK,
                     id="confirmed-yesterday"),
        pytest.param({"confirmed_at": NOW - RECONFIRM}, ConsentReason.OK,
                     id="confirmed-exactly-reconfirm-after-ago"),
        pytest.param({"confirmed_at": NOW - RECONFIRM - timedelta(seconds=1)},
                     ConsentReason.INACTIVE, id="confirmed-a-second-too-long-ago"),
        pytest.param({"confirmed_at": NOW - RECONFIRM - timedelta(days=365)},
                     ConsentReason.INACTIVE, id="confirmed-three-years-ago"),
        pytest.param({"confirmation_sent_at": NOW - timedelta(days=2)},
                     ConsentReason.CONFIRMATION_PENDING, id="sent-never-confirmed"),
        pytest.param({"confirmation_sent_at": NOW - timedelta(days=400),
                      "staff_confirmation_sent_at": NOW - timedelta(days=400)},
                     ConsentReason.CONFIRMATION_PENDING, id="sent-long-ago-still-pending"),
        pytest.param({"confirmed_at": NOW - RECONFIRM - timedelta(days=10),
                      "confirmation_sent_at": NOW - timedelta(days=1)},
                     ConsentReason.CONFIRMATION_PENDING, id="inactive-then-sent-a-new-one"),
        pytest.param({"confirmed_at": NOW - RECONFIRM - timedelta(days=10),
                      "confirmation_sent_at": NOW - RECONFIRM - timedelta(days=5)},
                     ConsentReason.CONFIRMATION_PENDING,
                     id="sent-after-the-last-confirmation-both-long-ago"),
        pytest.param({"confirmed_at": NOW - timedelta(days=10),
                      "confirmation_sent_at": NOW - timedelta(days=1)},
                     ConsentReason.OK, id="confirmed-recently-and-sent-again-still-ok"),
        pytest.param({"confirmed_at": NOW - timedelta(days=1),
                      "confirmation_sent_at": NOW - timedelta(days=2)},
                     ConsentReason.OK, id="sent-before-a-recent-confirmation-ok"),
        pytest.param({"confirmed_at": NOW - RECONFIRM - timedelta(days=1),
                      "confirmation_sent_at": NOW - RECONFIRM - timedelta(days=2)},
                     ConsentReason.INACTIVE, id="sent-before-an-old-confirmation-inactive"),
        pytest.param({"confirmed_at": NOW - RECONFIRM - timedelta(days=1),
                      "confirmation_sent_at": NOW - RECONFIRM - timedelta(days=1)},
                     ConsentReason.INACTIVE, id="sent-and-confirmed-at-the-same-instant"),
    ],
)  # fmt: skip
def test_state_of(facts: dict[str, object] | None, expected: ConsentReason) -> None:
    consent = None if facts is None else record(**facts)

    assert state_of(consent, NOW, RECONFIRM) is expected


# -- decide: the whole table ------------------------------------------------------------


class Outcome(Enum):
    OUT = "opted out by the requester, now"
    KEEP = "allowed, nothing changes"
    LIFT = "the opt-out is lifted"
    CONFIRM = "confirmed now, any opt-out kept"
    CONFIRM_LIFT = "confirmed now, any opt-out lifted"
    SEND = "a confirmation email goes out now"
    REFUSE = "refused, nothing changes"


OUT, KEEP, LIFT, NO = Outcome.OUT, Outcome.KEEP, Outcome.LIFT, Outcome.REFUSE
CONF, CONF_LIFT, SEND = Outcome.CONFIRM, Outcome.CONFIRM_LIFT, Outcome.SEND

#: the columns of every grid: the address's current opt-out source (None: not opted out)
CURRENT: tuple[Source | None, ...] = (None, AGENT, CONTACT, SYSTEM, IMPORT)

#: action -> requester -> outcome for each current source, in the order of CURRENT.
#: opt_out: anyone, but an opt-out keeps its strongest source. Strength: an import's
#: (an import lifts it) < staff's (only staff lift it: a daily import must not undo what
#: staff recorded on the phone) < the system's < the contact's (only the contact's own
#: confirmation lifts those two, and staff never send a confirmation to an address the
#: contact opted out of, so a bounce must not hide that the contact did).
#: opt_in: staff lift staff's and imports'; an import only an import's; contact and
#: system never opt in. confirm: the contact (lifts any opt-out); an import (lifts
#: none); never staff nor the system. send_confirmation: staff once, never to an opted-out
#: address (lift an agent's or import's opt-out first); the contact from the web page;
#: nobody else.
EXPECTED: dict[Action, dict[Source, tuple[Outcome, ...]]] = {
    #                  none       agent      contact    system     import
    Action.OPT_OUT: {
        AGENT:        (OUT,       KEEP,      KEEP,      KEEP,      OUT),
        CONTACT:      (OUT,       OUT,       KEEP,      OUT,       OUT),
        SYSTEM:       (OUT,       OUT,       KEEP,      KEEP,      OUT),
        IMPORT:       (OUT,       KEEP,      KEEP,      KEEP,      KEEP),
    },
    Action.OPT_IN: {
        AGENT:        (KEEP,      LIFT,      NO,        NO,        LIFT),
        CONTACT:      (NO,        NO,        NO,        NO,        NO),
        SYSTEM:       (NO,        NO,        NO,        NO,        NO),
        IMPORT:       (KEEP,      NO,        NO,        NO,        LIFT),
    },
    Action.CONFIRM: {
        AGENT:        (NO,        NO,        NO,        NO,        NO),
        CONTACT:      (CONF_LIFT, CONF_LIFT, CONF_LIFT, CONF_LIFT, CONF_LIFT),
        SYSTEM:       (NO,        NO,        NO,        NO,        NO),
        IMPORT:       (CONF,      CONF,      CONF,      CONF,      CONF),
    },
    Action.SEND_CONFIRMATION: {
        AGENT:        (SEND,      NO,        NO,        NO,        NO),
        CONTACT:      (SEND,      SEND,      SEND,      SEND,      SEND),
        SYSTEM:       (NO,        NO,        NO,        NO,        NO),
        IMPORT:       (NO,        NO,        NO,        NO,        NO),
    },
}  # fmt: skip


def _expected_record(before: AddressConsent, outcome: Outcome, requester: Source) -> AddressConsent:
    match outcome:
        case Outcome.OUT:
            return replace(before, opted_out_by=requester, opted_out_at=NOW)
        case Outcome.LIFT:
            return replace(before, opted_out_by=None, opted_out_at=None)
        case Outcome.CONFIRM:
            return replace(before, confirmed_at=NOW)
        case Outcome.CONFIRM_LIFT:
            return replace(before, confirmed_at=NOW, opted_out_by=None, opted_out_at=None)
        case Outcome.SEND if requester is AGENT:
            return replace(before, confirmation_sent_at=NOW, staff_confirmation_sent_at=NOW)
        case Outcome.SEND:
            return replace(before, confirmation_sent_at=NOW)
    return before


def _table() -> list[object]:
    rows: list[object] = []
    for action, grid in EXPECTED.items():
        for requester, outcomes in grid.items():
            assert len(outcomes) == len(CURRENT)
            for current, outcome in zip(CURRENT, outcomes, strict=True):
                of = f"of-{current}-opt-out" if current else "not-opted-out"
                rows.append(
                    pytest.param(
                        action, requester, current, outcome, id=f"{action}-by-{requester}-{of}"
                    )
                )
    return rows


def test_the_table_covers_every_action_requester_and_current_source() -> None:
    assert set(EXPECTED) == set(Action) - KIND_ACTIONS
    for grid in EXPECTED.values():
        assert set(grid) == set(Source)
    assert len(_table()) == len(EXPECTED) * len(Source) * (len(Source) + 1)


@pytest.mark.parametrize(("action", "requester", "current", "outcome"), _table())
def test_decide(
    action: Action, requester: Source, current: Source | None, outcome: Outcome
) -> None:
    before = record(opted_out_by=current, opted_out_at=EARLIER if current else None)

    decision = decide(before, action, requester, NOW)

    assert decision.allowed is (outcome is not Outcome.REFUSE)
    assert decision.changes is (outcome not in (Outcome.KEEP, Outcome.REFUSE))
    expected = _expected_record(before, outcome, requester)
    assert decision.record == expected
    if outcome is Outcome.REFUSE:
        assert decision.refusal
    else:
        assert decision.refusal is None


# -- decide: the rows that need more than the current source ------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    before: AddressConsent
    action: Action
    requester: Source
    at: datetime = NOW
    allowed: bool
    changes: bool
    after: AddressConsent | None = None  #: None: unchanged
    #: fragments the refusal must contain (case-insensitive)
    says: tuple[str, ...] = ()


STAFF_SENT = NOW - timedelta(days=3)
CONTACT_SENT = NOW - timedelta(minutes=4)

SPECIAL = [
    pytest.param(
        Case(
            before=record(confirmation_sent_at=STAFF_SENT, staff_confirmation_sent_at=STAFF_SENT),
            action=Action.SEND_CONFIRMATION, requester=AGENT,
            allowed=False, changes=False,
            says=(ADDRESS, "once", STAFF_SENT.date().isoformat(), "ask for a new one"),
        ),
        id="staff-send-confirmation-a-second-time-refused",
    ),
    pytest.param(
        Case(
            before=record(confirmation_sent_at=STAFF_SENT, staff_confirmation_sent_at=STAFF_SENT,
                          confirmed_at=CONFIRMED - RECONFIRM),
            action=Action.SEND_CONFIRMATION, requester=AGENT,
            allowed=False, changes=False, says=("once",),
        ),
        id="staff-send-confirmation-again-to-an-inactive-address-refused",
    ),
    pytest.param(
        Case(
            before=record(confirmation_sent_at=STAFF_SENT, staff_confirmation_sent_at=STAFF_SENT),
            action=Action.SEND_CONFIRMATION, requester=CONTACT,
            allowed=True, changes=True,
            after=record(confirmation_sent_at=NOW, staff_confirmation_sent_at=STAFF_SENT),
        ),
        id="contact-may-ask-after-staff-sent-theirs",
    ),
    pytest.param(
        Case(
            before=record(confirmation_sent_at=CONTACT_SENT),
            action=Action.SEND_CONFIRMATION, requester=CONTACT,
            allowed=False, changes=False, says=("junk",),
        ),
        id="contact-send-confirmation-within-ten-minutes-refused",
    ),
    pytest.param(
        Case(
            before=record(
                confirmation_sent_at=NOW - CONTACT_RESEND_INTERVAL + timedelta(seconds=1)
            ),
            action=Action.SEND_CONFIRMATION, requester=CONTACT,
            allowed=False, changes=False,
        ),
        id="contact-send-confirmation-a-second-before-ten-minutes-refused",
    ),
    pytest.param(
        Case(
            before=record(confirmation_sent_at=NOW - CONTACT_RESEND_INTERVAL),
            action=Action.SEND_CONFIRMATION, requester=CONTACT,
            allowed=True, changes=True, after=record(confirmation_sent_at=NOW),
        ),
        id="contact-send-confirmation-exactly-ten-minutes-later-allowed",
    ),
    pytest.param(
        Case(
            before=record(confirmation_sent_at=NOW - timedelta(minutes=11)),
            action=Action.SEND_CONFIRMATION, requester=CONTACT,
            allowed=True, changes=True, after=record(confirmation_sent_at=NOW),
        ),
        id="contact-send-confirmation-after-ten-minutes-allowed",
    ),
    pytest.param(
        Case(
            before=record(confirmed_at=CONFIRMED),
            action=Action.CONFIRM, requester=IMPORT,
            allowed=True, changes=False,
        ),
        id="import-confirm-when-already-confirmed-keeps-confirmed-at",
    ),
    pytest.param(
        Case(
            before=record(confirmed_at=CONFIRMED - RECONFIRM),
            action=Action.CONFIRM, requester=IMPORT,
            allowed=True, changes=False,
        ),
        id="import-confirm-does-not-reactivate-an-inactive-address",
    ),
    pytest.param(
        Case(
            before=record(confirmed_at=CONFIRMED - RECONFIRM, confirmation_sent_at=STAFF_SENT),
            action=Action.CONFIRM, requester=CONTACT,
            allowed=True, changes=True,
            after=record(confirmed_at=NOW, confirmation_sent_at=STAFF_SENT),
        ),
        id="contact-confirm-reactivates-an-inactive-address",
    ),
    pytest.param(
        Case(
            before=record(opted_out_by=CONTACT, opted_out_at=EARLIER),
            action=Action.OPT_OUT, requester=AGENT,
            allowed=True, changes=False,
        ),
        id="contact-opt-out-not-weakened-by-a-later-agent-opt-out",
    ),
    pytest.param(
        Case(
            before=record(opted_out_by=SYSTEM, opted_out_at=EARLIER),
            action=Action.OPT_OUT, requester=IMPORT,
            allowed=True, changes=False,
        ),
        id="system-opt-out-not-weakened-by-a-later-import-opt-out",
    ),
    pytest.param(
        Case(
            before=record(opted_out_by=AGENT, opted_out_at=EARLIER),
            action=Action.OPT_OUT, requester=IMPORT,
            allowed=True, changes=False,
        ),
        id="agent-opt-out-not-weakened-into-one-an-import-lifts",
    ),
    pytest.param(
        Case(
            before=record(opted_out_by=IMPORT, opted_out_at=EARLIER),
            action=Action.OPT_OUT, requester=AGENT,
            allowed=True, changes=True,
            after=record(opted_out_by=AGENT, opted_out_at=NOW),
        ),
        id="import-opt-out-strengthened-by-a-later-agent-opt-out",
    ),
    pytest.param(
        Case(
            before=record(opted_out_by=AGENT, opted_out_at=EARLIER),
            action=Action.OPT_OUT, requester=AGENT,
            at=NOW - timedelta(days=1),
            allowed=True, changes=False,
        ),
        id="second-agent-opt-out-keeps-the-first-date",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", SPECIAL)
def test_decide_special_rows(case: Case) -> None:
    decision = decide(case.before, case.action, case.requester, case.at)

    assert (decision.allowed, decision.changes) == (case.allowed, case.changes)
    assert decision.record == (case.after or case.before)
    for fragment in case.says:
        assert fragment.casefold() in (decision.refusal or "").casefold()


def test_a_bounce_after_the_contact_unsubscribed_still_stops_staff_confirmation() -> None:
    unsubscribed = record(opted_out_by=CONTACT, opted_out_at=EARLIER)
    bounced = decide(unsubscribed, Action.OPT_OUT, SYSTEM, NOW - timedelta(days=1)).record

    decision = decide(bounced, Action.SEND_CONFIRMATION, AGENT, NOW)

    assert decision.allowed is False
    assert ADDRESS in (decision.refusal or "")


def test_an_unsubscribe_after_a_bounce_stops_staff_confirmation() -> None:
    bounced = record(opted_out_by=SYSTEM, opted_out_at=EARLIER)
    unsubscribed = decide(bounced, Action.OPT_OUT, CONTACT, NOW - timedelta(days=1)).record

    decision = decide(unsubscribed, Action.SEND_CONFIRMATION, AGENT, NOW)

    assert decision.allowed is False
    assert ADDRESS in (decision.refusal or "")


@pytest.mark.parametrize(
    ("before", "action", "requester", "says"),
    [
        pytest.param(record(opted_out_by=CONTACT, opted_out_at=EARLIER), Action.OPT_IN, AGENT,
                     ("only the contact's own confirmation", "confirmation email"),
                     id="staff-opt-in-of-contact-opt-out"),
        pytest.param(record(opted_out_by=SYSTEM, opted_out_at=EARLIER), Action.OPT_IN, AGENT,
                     ("only the contact's own confirmation", "bounce or complaint"),
                     id="staff-opt-in-of-system-opt-out"),
        pytest.param(record(opted_out_by=AGENT, opted_out_at=EARLIER), Action.OPT_IN, IMPORT,
                     ("reminders consent opt-in",), id="import-opt-in-of-agent-opt-out"),
        pytest.param(record(confirmation_sent_at=STAFF_SENT,
                            staff_confirmation_sent_at=STAFF_SENT),
                     Action.SEND_CONFIRMATION, AGENT, ("once", "ask for a new one"),
                     id="staff-second-confirmation"),
        pytest.param(record(opted_out_by=CONTACT, opted_out_at=EARLIER),
                     Action.SEND_CONFIRMATION, AGENT, ("unsubscribe page",),
                     id="staff-confirmation-to-an-unsubscribed-address"),
        pytest.param(record(confirmation_sent_at=CONTACT_SENT), Action.SEND_CONFIRMATION,
                     CONTACT, ("junk folder",), id="contact-asks-again-within-ten-minutes"),
        pytest.param(record(opted_out_by=IMPORT, opted_out_at=EARLIER),
                     Action.SEND_CONFIRMATION, AGENT,
                     ("opted out by import", "lift", "reminders consent opt-in"),
                     id="staff-confirmation-to-an-address-an-import-opted-out"),
        pytest.param(record(opted_out_by=AGENT, opted_out_at=EARLIER),
                     Action.SEND_CONFIRMATION, AGENT,
                     ("opted out by agent", "lift", "reminders consent opt-in"),
                     id="staff-confirmation-to-an-address-staff-opted-out"),
        pytest.param(record(opted_out_by=SYSTEM, opted_out_at=EARLIER),
                     Action.SEND_CONFIRMATION, AGENT, ("bounce or complaint",),
                     id="staff-confirmation-to-a-bounced-address"),
    ],
)  # fmt: skip
def test_refusals_people_see_name_the_address_and_say_what_to_do(
    before: AddressConsent, action: Action, requester: Source, says: tuple[str, ...]
) -> None:
    decision = decide(before, action, requester, NOW)

    assert decision.allowed is False
    assert decision.record == before
    refusal = decision.refusal or ""
    assert ADDRESS in refusal
    for fragment in says:
        assert fragment in refusal


@pytest.mark.parametrize(
    ("action", "requester"),
    [
        pytest.param(Action.OPT_IN, CONTACT, id="contact-opt-in"),
        pytest.param(Action.OPT_IN, SYSTEM, id="system-opt-in"),
        pytest.param(Action.CONFIRM, AGENT, id="staff-confirm"),
        pytest.param(Action.CONFIRM, SYSTEM, id="system-confirm"),
        pytest.param(Action.SEND_CONFIRMATION, SYSTEM, id="system-send-confirmation"),
        pytest.param(Action.SEND_CONFIRMATION, IMPORT, id="import-send-confirmation"),
    ],
)
def test_refusals_of_requests_no_entry_point_makes_name_who_asked(
    action: Action, requester: Source
) -> None:
    decision = decide(record(), action, requester, NOW)

    assert decision.allowed is False
    assert str(requester) in (decision.refusal or "")


# -- normalise_address and address_key (tests/unit/test_addresses.py has the rest) ---------

NFD = unicodedata.normalize("NFD", "José.Müller@Exämple.FR")
NFC = unicodedata.normalize("NFC", "José.Müller@Exämple.FR")


@pytest.mark.parametrize(
    ("address", "normal", "key"),
    [
        pytest.param("Marie.Dupont@Example.fr", "Marie.Dupont@example.fr",
                     "marie.dupont@example.fr", id="local-case-kept-by-normalise-folded-by-key"),
        pytest.param("marie.dupont@example.FR", "marie.dupont@example.fr",
                     "marie.dupont@example.fr", id="domain-case"),
        pytest.param("MARIE.DUPONT@EXAMPLE.FR", "MARIE.DUPONT@example.fr",
                     "marie.dupont@example.fr", id="all-upper-case"),
        pytest.param("Jean@EXÄMPLE.fr", "Jean@xn--exmple-cua.fr", "jean@xn--exmple-cua.fr",
                     id="idn-domain-to-xn"),
        pytest.param("jean@Xn--Exmple-Cua.fr", "jean@xn--exmple-cua.fr",
                     "jean@xn--exmple-cua.fr", id="xn-domain-in-upper-case"),
        pytest.param(NFD, "José.Müller@xn--exmple-cua.fr", "josé.müller@xn--exmple-cua.fr",
                     id="nfd-local-part-and-domain"),
        pytest.param("JOSÉ@example.com", "JOSÉ@example.com", "josé@example.com",
                     id="non-ascii-local-part-folded-by-key"),
        pytest.param("Jean+Ete@Example.com", "Jean+Ete@example.com", "jean+ete@example.com",
                     id="plus-tag-kept-and-folded"),
    ],
)  # fmt: skip
def test_normalise_address_and_address_key(address: str, normal: str, key: str) -> None:
    normal = unicodedata.normalize("NFC", normal)
    key = unicodedata.normalize("NFC", key)

    assert normalise_address(address) == normal
    assert address_key(address) == key
    assert address_key(normal) == key
    assert address_key(key) == key


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        pytest.param("Marie.Dupont@Example.fr", "marie.dupont@example.FR", True,
                     id="letter-case-one-entry"),
        pytest.param(NFD, NFC, True, id="nfd-and-nfc-one-entry"),
        pytest.param(NFD, NFC.upper(), True, id="nfd-and-upper-case-nfc-one-entry"),
        pytest.param("jean@exämple.fr", "jean@xn--exmple-cua.fr", True,
                     id="unicode-and-xn-domain-one-entry"),
        pytest.param("jean+a@example.com", "jean@example.com", False, id="plus-tag-distinct"),
        pytest.param("jean+a@example.com", "jean+b@example.com", False,
                     id="two-plus-tags-distinct"),
        pytest.param("j.ean@example.com", "jean@example.com", False, id="dots-distinct"),
        pytest.param("jean.dupont@gmail.com", "jeandupont@gmail.com", False,
                     id="gmail-dots-distinct"),
        pytest.param("jean@example.com", "jean@example.org", False, id="other-domain"),
    ],
)  # fmt: skip
def test_address_key_tells_entries_apart(a: str, b: str, same: bool) -> None:
    assert (address_key(a) == address_key(b)) is same


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("", id="empty"),
        pytest.param("Marie.Dupont", id="no-at-sign"),
        pytest.param("marie@@example.fr", id="two-at-signs"),
        pytest.param("marie dupont@example.fr", id="space"),
        pytest.param("Marie <marie@example.fr>", id="mailbox"),
        pytest.param('"marie"@example.fr', id="quoted-local-part"),
        pytest.param("marie@[192.0.2.1]", id="ip-literal"),
    ],
)
def test_address_key_of_an_invalid_address_is_refused(address: str) -> None:
    with pytest.raises(InvalidAddress, match="is not a valid email address"):
        address_key(address)


def test_the_key_lower_cases_but_does_not_fold_german_sharp_s() -> None:
    # Two different mailboxes for a mail server: they must not share consent.
    assert address_key("Straße@Example.de") == "straße@example.de"
    assert address_key("Straße@example.de") != address_key("strasse@example.de")


# -- decide_kind: a contact's choice for one kind of email ----------------------------------

OFFERED = frozenset({"arrival", "post_departure", "balance_due"})
REQUIRED = frozenset({"balance_due"})

#: (kind, receive, requester, current choice) -> (allowed, changes)
KIND_CHOICES = {
    "contact-refuses-a-kind": (("post_departure", False, CONTACT, None), (True, True)),
    "contact-refuses-it-again": (("post_departure", False, CONTACT, False), (True, False)),
    "contact-accepts-it-again": (("post_departure", True, CONTACT, False), (True, True)),
    "contact-accepts-a-kind-never-refused": (("arrival", True, CONTACT, None), (True, False)),
    "staff-record-the-contacts-refusal": (("arrival", False, AGENT, None), (True, True)),
    "a-bounce-never-chooses": (("arrival", False, SYSTEM, None), (False, False)),
    "an-import-never-chooses": (("arrival", True, IMPORT, False), (False, False)),
    "a-required-kind-cannot-be-refused": (("balance_due", False, CONTACT, None), (False, False)),
    "a-required-kind-refused-before-may-be-accepted": (
        ("balance_due", True, CONTACT, False),
        (True, True),
    ),
    "a-kind-not-sent-cannot-be-refused": (("option_expiry", False, CONTACT, None), (False, False)),
    "a-kind-no-longer-sent-may-be-accepted-again": (
        ("option_expiry", True, CONTACT, False),
        (True, True),
    ),
}


@pytest.mark.parametrize("case", list(KIND_CHOICES))
def test_decide_kind(case: str) -> None:
    (kind, receive, requester, current), (allowed, changes) = KIND_CHOICES[case]

    decision = decide_kind(
        ADDRESS, kind, receive, requester, current=current, offered=OFFERED, required=REQUIRED
    )

    assert (decision.allowed, decision.changes) == (allowed, changes)
    assert (decision.refusal is None) is allowed


@pytest.mark.parametrize("action", sorted(KIND_ACTIONS))
def test_decide_leaves_the_kind_actions_to_decide_kind(action: Action) -> None:
    with pytest.raises(ValueError, match="decide_kind"):
        decide(record(), action, CONTACT, NOW)


def test_a_refused_kind_is_told_after_an_opt_out_and_before_the_rest() -> None:
    opted_out = record(opted_out_by=CONTACT, opted_out_at=EARLIER)
    unconfirmed = record()

    assert state_of(opted_out, NOW, RECONFIRM, kind_refused=True) is ConsentReason.OPTED_OUT
    assert state_of(unconfirmed, NOW, RECONFIRM, kind_refused=True) is ConsentReason.KIND_REFUSED
    assert state_of(None, NOW, RECONFIRM, kind_refused=True) is ConsentReason.NO_ADDRESS
