"""The database tables (SQLAlchemy 2 declarative). Rows never leave `store.py`."""

from __future__ import annotations

from datetime import date, datetime

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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Integer primary keys: BIGINT on PostgreSQL, INTEGER (rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ContactRow(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(100), unique=True)
    agency: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    locale: Mapped[str | None] = mapped_column(String(20))
    email_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    email_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
        Index("ix_items_status_visible_until", "status", "visible_until"),
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
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    #: staff changed the content: never re-rendered automatically
    edited: Mapped[bool] = mapped_column(Boolean, default=False)
    #: when the content was last rendered from templates and booking data
    rendered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PlanningPassRow(Base):
    """The last planning pass of each agency: what `missed` is measured from."""

    __tablename__ = "planning_passes"

    agency: Mapped[str] = mapped_column(String(50), primary_key=True)
    #: the agency-local day the latest pass planned for
    last_planned_on: Mapped[date] = mapped_column(Date)
    last_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
