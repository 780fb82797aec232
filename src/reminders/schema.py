"""The database tables (SQLAlchemy 2 declarative). Rows never leave `store.py`."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An instant, stored in UTC and read back timezone-aware.

    SQLite keeps no offset: an instant of another zone (a time staff typed in the
    agency's zone, a bounce's arrival date) would be read back shifted. Every
    instant is turned to UTC on the way in, and marked UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime cannot be stored as an instant: {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Integer primary keys: BIGINT on PostgreSQL, INTEGER (rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AddressRow(Base):
    """The consent registry: one row per email address, shared by its contacts."""

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    #: normalised (domain lower-cased, IDNA), as first seen
    address: Mapped[str] = mapped_column(String(320))
    #: the normalised address lower-cased: how two spellings are found to be one
    address_key: Mapped[str] = mapped_column(String(320), unique=True)
    #: agent, contact, system or import; None when not opted out
    opted_out_by: Mapped[str | None] = mapped_column(String(20))
    opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    staff_confirmation_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class KindChoiceRow(Base):
    """A contact's choice for one kind of email at one address (none: they receive it).

    The dispatcher's claim looks a refusal up by its key (address, kind) inside its
    one statement, so checking costs no query per email.
    """

    __tablename__ = "kind_choices"

    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id"), primary_key=True)
    #: the kind's name (balance_due, arrival, post_departure, an agency's own, ...)
    kind: Mapped[str] = mapped_column(String(50), primary_key=True)
    #: False: the contact refused this kind; True: accepted it again
    receive: Mapped[bool] = mapped_column(Boolean)
    #: who chose (contact, agent) and how (web form, phone, ...)
    source: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    #: when the choice was made (the history keeps every earlier one)
    chosen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ContactRow(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(100), unique=True)
    agency: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    #: the address as written in the contacts file
    email: Mapped[str | None] = mapped_column(String(320))
    #: its entry in the consent registry (None: no address)
    address_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id"), index=True)
    locale: Mapped[str | None] = mapped_column(String(20))
    #: what the last contacts file said (None: imported before the flags were kept)
    imported_confirmed: Mapped[bool | None] = mapped_column(Boolean)
    imported_opt_out: Mapped[bool | None] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ConfirmationRow(Base):
    """A confirmation link sent: only a hash of its secret part is kept."""

    __tablename__ = "confirmations"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id"), index=True)
    #: SHA-256 of the random nonce the link carries
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: agent or contact: who had it sent
    requested_by: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class BookingRow(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        # The planner selects one agency's bookings over a range of one anchor date.
        Index("ix_bookings_agency_option_expires_on", "agency", "option_expires_on"),
        Index("ix_bookings_agency_balance_due_on", "agency", "balance_due_on"),
        Index("ix_bookings_agency_arrival_on", "agency", "arrival_on"),
        Index("ix_bookings_agency_departure_on", "agency", "departure_on"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(100), unique=True)
    agency: Mapped[str] = mapped_column(String(50))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    property: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    option_expires_on: Mapped[date | None] = mapped_column(Date)
    balance_due_on: Mapped[date | None] = mapped_column(Date)
    #: in the currency's minor unit (cents), so SQLite keeps it exact
    balance_outstanding_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    arrival_on: Mapped[date | None] = mapped_column(Date)
    departure_on: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ItemRow(Base):
    __tablename__ = "items"
    __table_args__ = (
        # One live item per (booking, kind, anchor date): planning twice, or on two
        # replicas at once, creates nothing twice. Withdrawn items do not count, so a
        # booking whose date moves back, or that is re-confirmed, gets a new item.
        Index(
            "uq_items_booking_kind_anchor",
            "booking_id",
            "kind",
            "anchor_on",
            unique=True,
            sqlite_where=text("status <> 'withdrawn'"),
            postgresql_where=text("status <> 'withdrawn'"),
        ),
        Index("ix_items_agency_kind_status", "agency", "kind", "status"),
        # The dispatcher looks for approved items whose retry is due.
        Index("ix_items_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_items_message_id", "message_id"),
        # A claim walks one status of a tab in anchor order, stopping at its batch.
        Index(
            "ix_items_status_agency_kind_anchor_on_id",
            "status",
            "agency",
            "kind",
            "anchor_on",
            "id",
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    agency: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(50))
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"))
    anchor_on: Mapped[date] = mapped_column(Date)
    visible_from: Mapped[date] = mapped_column(Date)
    visible_until: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    #: why the item left the list (withdrawn: date_moved, cancelled, ...)
    reason: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(Text)
    #: staff changed the content: never re-rendered automatically
    edited: Mapped[bool] = mapped_column(Boolean, default=False)
    #: who saved the last edit (a person's name)
    edited_by: Mapped[str | None] = mapped_column(String(100))
    #: created while its kind was set to auto_send: the daemon approves it itself;
    #: items queued before auto_send was switched on stay for staff to review
    auto_send: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    #: when the content was last rendered from templates and booking data
    rendered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: who approved it: a person's name, or "auto_send"
    approved_by: Mapped[str | None] = mapped_column(String(100))
    #: delivery attempts so far (each SMTP transaction counts one)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: an approved item is not dispatched before this instant (retry backoff)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: the process that marked it `sending` ("host:pid"), and when
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: a `sending` item whose lease passed is abandoned: it becomes `unknown`
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Message-ID of the last message built for it
    message_id: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: the mail server's last reply to a failed attempt
    last_error: Mapped[str | None] = mapped_column(Text)


class ItemBodyRow(Base):
    """An item's text and HTML, apart from its row: they never change while it is sent."""

    __tablename__ = "item_bodies"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id"), primary_key=True, autoincrement=False
    )
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)


class DeliveryRow(Base):
    """One attempt to hand an item to the mail transport: an append-only log."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # The send rate limit looks at an agency's latest attempt.
        Index("ix_deliveries_agency_started_at", "agency", "started_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    agency: Mapped[str] = mapped_column(String(50))
    attempt: Mapped[int] = mapped_column(Integer)
    recipient: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(300))
    #: who asked: a person's name, or "dispatcher"
    actor: Mapped[str] = mapped_column(String(100))
    claimed_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: sent, transient, permanent, unknown (None while in flight)
    outcome: Mapped[str | None] = mapped_column(String(20))
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)


class SendSlotRow(Base):
    """The rate limit of an agency that has one: when its next email may leave.

    Taking a slot is one conditional update, so it holds across every process
    sharing the database.
    """

    __tablename__ = "send_slots"

    agency: Mapped[str] = mapped_column(String(50), primary_key=True)
    next_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ConsentEventRow(Base):
    """Append-only history of consent changes, per normalised address."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_address_id", "address", "id"),
        Index("ix_consent_events_registry_id_id", "registry_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    #: the normalised address, as the registry knows it
    address: Mapped[str] = mapped_column(String(320))
    #: its entry in the registry
    registry_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id"))
    #: opt_out, opt_in, confirm, send_confirmation, refuse_kind, accept_kind
    action: Mapped[str] = mapped_column(String(40))
    #: agent, contact, system, import
    source: Mapped[str] = mapped_column(String(20))
    #: phone, email link, web form, bounce, smtp, csv import, ...
    method: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    detail: Mapped[str | None] = mapped_column(Text)
    #: the kind of email a refuse_kind / accept_kind event is about (None otherwise)
    kind: Mapped[str | None] = mapped_column(String(50))
    #: when it happened (staff may give a past date), and when it was written down
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiKeyRow(Base):
    """A key of the HTTP API: only the SHA-256 of the key is kept, never the key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    #: never reused, even once revoked: `api:NAME` is the actor in the history
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: hex SHA-256 of the key (a random 256-bit secret: no salt or slow hash needed)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: who ran `reminders api-key create`
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class PlanningPassRow(Base):
    """The last planning pass of each agency: what `missed` is measured from."""

    __tablename__ = "planning_passes"

    agency: Mapped[str] = mapped_column(String(50), primary_key=True)
    #: the agency-local day the latest pass planned for
    last_planned_on: Mapped[date] = mapped_column(Date)
    last_run_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: the agency-local day whose summary was last emailed to the agency
    summary_sent_on: Mapped[date | None] = mapped_column(Date)
    #: the agency's data version the latest pass read, and a digest of its kinds then
    planned_version: Mapped[int | None] = mapped_column(BigInteger)
    planned_kinds: Mapped[str | None] = mapped_column(String(64))


class DataVersionRow(Base):
    """How many imports changed an agency's bookings or contacts: a same-day pass skips
    an agency whose version (and kinds) did not change since its latest pass."""

    __tablename__ = "data_versions"

    agency: Mapped[str] = mapped_column(String(50), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
