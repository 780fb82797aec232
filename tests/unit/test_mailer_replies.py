"""Reading the mail server's replies: RFC 3463 enhanced codes, and what a failure means."""

from __future__ import annotations

import pytest

from reminders.errors import ReminderError
from reminders.mailer import (
    DeliveryError,
    PermanentFailure,
    TransientFailure,
    UncertainDelivery,
    enhanced_code,
)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        # Whole reply lines, as a server writes them: the basic code, then the enhanced one.
        pytest.param("550 5.1.1 <jean@example.com>: Recipient address rejected", "5.1.1",
                     id="full-reply-550-5-1-1"),
        pytest.param("451 4.3.0 Mail server temporarily rejected message", "4.3.0",
                     id="full-reply-451-4-3-0"),
        pytest.param("451 4.3.0", "4.3.0", id="full-reply-code-only"),
        pytest.param(b"552 5.2.2 Mailbox full", "5.2.2", id="full-reply-as-bytes"),
        # The text after the basic code, as smtplib hands it over.
        pytest.param("5.1.1 User unknown", "5.1.1", id="text-5-1-1"),
        pytest.param("4.7.1 Greylisted, try again later", "4.7.1", id="text-4-7-1"),
        pytest.param("2.0.0 Ok: queued as 4F2A1", "2.0.0", id="text-2-0-0"),
        pytest.param("5.7.1", "5.7.1", id="text-code-alone"),
        pytest.param("  5.1.1 User unknown", "5.1.1", id="text-with-leading-spaces"),
        pytest.param("5.1.10 Recipient address has null MX", "5.1.10", id="three-digit-detail"),
        pytest.param("5.123.123 odd but allowed", "5.123.123", id="three-digit-subject"),
        pytest.param(b"5.1.1 User unknown", "5.1.1", id="text-as-bytes"),
        pytest.param(b"  4.2.2 Over quota", "4.2.2", id="bytes-with-leading-spaces"),
        pytest.param("5.1.1\tUser unknown", "5.1.1", id="tab-after-the-code"),
        # No enhanced code.
        pytest.param("250 OK", None, id="250-ok"),
        pytest.param("OK", None, id="plain-text"),
        pytest.param("", None, id="empty-string"),
        pytest.param(b"", None, id="empty-bytes"),
        pytest.param("Recipient 5.1.1 unknown", None, id="code-not-at-the-start"),
        pytest.param("3.1.1 not a class", None, id="class-3-is-not-a-status"),
        pytest.param("5.1 short", None, id="two-parts-only"),
        pytest.param("5.1.1234 detail too long", None, id="four-digit-detail"),
        pytest.param("5.1234.1 subject too long", None, id="four-digit-subject"),
        pytest.param(b"\xff\xfe 5.1.1", None, id="undecodable-bytes-first"),
    ],
)  # fmt: skip
def test_enhanced_code(reply: str | bytes, expected: str | None) -> None:
    assert enhanced_code(reply) == expected


def test_undecodable_bytes_after_the_code_do_not_matter() -> None:
    assert enhanced_code(b"5.1.1 Utilisateur inconnu \xe9") == "5.1.1"


# -- the failure classes carry what the dispatcher decides on ------------------------------


def test_a_transient_failure_does_not_stop_the_batch_by_default() -> None:
    error = TransientFailure("the mail server refused the recipient: 451 4.3.0 later")

    assert error.stops_batch is False
    assert (error.code, error.reply, error.enhanced) == (None, "", None)


def test_a_transient_failure_that_stops_the_batch() -> None:
    error = TransientFailure(
        "the mail server refused the login", code=535, reply="5.7.8 bad", stops_batch=True
    )

    assert error.stops_batch is True
    assert (error.code, error.reply, error.enhanced) == (535, "5.7.8 bad", "5.7.8")


@pytest.mark.parametrize(
    ("error_class", "code", "reply", "enhanced"),
    [
        pytest.param(PermanentFailure, 550, "5.1.1 User unknown", "5.1.1", id="permanent-5-1-1"),
        pytest.param(PermanentFailure, 554, "Transaction failed", None, id="permanent-no-code"),
        pytest.param(TransientFailure, 451, "4.3.0 later", "4.3.0", id="transient-4-3-0"),
        pytest.param(TransientFailure, 421, "Service not available", None,
                     id="transient-no-code"),
        pytest.param(UncertainDelivery, None, "", None, id="uncertain-no-reply"),
    ],
)  # fmt: skip
def test_a_failure_keeps_the_server_reply_and_its_enhanced_code(
    error_class: type[DeliveryError], code: int | None, reply: str, enhanced: str | None
) -> None:
    error = error_class("the mail server refused the message", code=code, reply=reply)

    assert (error.code, error.reply, error.enhanced) == (code, reply, enhanced)
    assert str(error) == "the mail server refused the message"


@pytest.mark.parametrize(
    "error_class",
    [
        pytest.param(TransientFailure, id="transient"),
        pytest.param(PermanentFailure, id="permanent"),
        pytest.param(UncertainDelivery, id="uncertain"),
    ],
)
def test_every_failure_is_a_delivery_error_and_a_reminder_error(
    error_class: type[DeliveryError],
) -> None:
    error = error_class("not delivered")

    assert isinstance(error, DeliveryError)
    assert isinstance(error, ReminderError)
    assert error.exit_code == 1


def test_the_failure_kinds_are_distinct() -> None:
    assert not issubclass(PermanentFailure, TransientFailure)
    assert not issubclass(UncertainDelivery, TransientFailure)
    assert not issubclass(UncertainDelivery, PermanentFailure)
