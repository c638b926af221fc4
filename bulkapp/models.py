"""All tables of the product owner's data model, as typed SQLAlchemy 2 models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bulkapp.columns import EncryptedJSON, Money, UTCDateTime, utcnow
from bulkapp.extensions import db

db.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")

CHANNELS = ("sms", "whatsapp", "email")
MESSAGE_STATUSES = ("pending", "sending", "sent", "delivered", "failed", "unknown", "received")
CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "paused", "sent", "failed", "cancelled")
CONVERSATION_STATUSES = ("open", "closed", "archived")
WALLET_TYPES = ("topup", "deduction", "refund", "adjustment", "hold", "release")
WALLET_STATUSES = ("pending", "completed", "failed")
TIERS = ("free", "basic", "premium", "enterprise")


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


class Client(Timestamped, db.Model):
    """A tenant: a business that sends messages and pays from a prepaid KSH wallet."""

    __tablename__ = "clients"
    __table_args__ = (sa.CheckConstraint("balance >= 0", name="balance_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    contact: Mapped[str | None] = mapped_column(sa.String(120))
    sender_id: Mapped[str | None] = mapped_column(sa.String(20))
    company_name: Mapped[str | None] = mapped_column(sa.String(200))
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"), nullable=False)
    price_per_unit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.80"), nullable=False)
    onfon_balance: Mapped[Decimal | None] = mapped_column(Money)
    onfon_last_sync: Mapped[datetime | None] = mapped_column(UTCDateTime)
    auto_sync_balance: Mapped[bool] = mapped_column(default=False)
    # SHA-256 of the API key; the key itself is shown once and never stored.
    api_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    api_key_prefix: Mapped[str | None] = mapped_column(sa.String(24))
    api_key_last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    api_key_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    # A revoked key authenticates nothing; its hash and prefix stay so the settings page can say so.
    api_key_revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[bool] = mapped_column(default=True, index=True)
    tier: Mapped[str] = mapped_column(sa.String(20), default="free")
    is_test_mode: Mapped[bool] = mapped_column(default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    webhook_url: Mapped[str | None] = mapped_column(sa.String(500))
    webhook_secret: Mapped[str | None] = mapped_column(sa.Text)  # encrypted (bulkapp/crypto.py)
    # After a rotation the previous secret (encrypted) signs next to the new one for a day.
    webhook_secret_previous: Mapped[str | None] = mapped_column(sa.Text)
    webhook_secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_events: Mapped[list[str]] = mapped_column(JSON, default=list)
    webhook_active: Mapped[bool] = mapped_column(default=False)
    # The paybill account reference customers type when paying by M-Pesa C2B.
    account_number: Mapped[str | None] = mapped_column(sa.String(20), unique=True)
    # Set when the owner closed the account: it sends nothing and nobody signs in; its data and balance stay for
    # a platform admin to settle.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The owner's switch: every teammate must sign in with two-factor (services/accounts/two_factor.py).
    require_two_factor: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    users: Mapped[list[User]] = relationship(back_populates="client")

    # The seed's read helpers. Its deductBalance/addBalance are services.billing.wallet.debit/credit: only
    # the wallet ledger changes a balance, and models import no service.
    def getBalanceInUnits(self) -> int:  # noqa: N802 - the seed's name
        return self.ksh_to_units(self.balance)

    def hasSufficientBalance(self, amount) -> bool:  # noqa: N802
        from bulkapp.columns import to_decimal

        return self.balance >= to_decimal(amount)

    def unitsToKsh(self, units: int) -> Decimal:  # noqa: N802
        return self.units_to_ksh(units)

    def kshToUnits(self, ksh) -> int:  # noqa: N802
        return self.ksh_to_units(ksh)

    def units_to_ksh(self, units: int) -> Decimal:
        return Decimal(units) * self.price_per_unit

    def ksh_to_units(self, ksh) -> int:
        from bulkapp.columns import to_decimal

        if not self.price_per_unit:
            return 0
        return int(to_decimal(ksh) // self.price_per_unit)


class User(UserMixin, Timestamped, db.Model):
    """Someone who signs in: a tenant's user, or a platform admin (no client)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(20), default="user")
    # The role inside the tenant (owner, manager or agent; services/accounts/roles.py); None for platform admins.
    tenant_role: Mapped[str | None] = mapped_column(sa.String(16))
    avatar: Mapped[str | None] = mapped_column(sa.String(255))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    bio: Mapped[str | None] = mapped_column(sa.Text)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Africa/Nairobi")
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_active_user: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the user opened the sign-up confirmation link (or was made by an admin, the CLI or an
    # invitation); an account without it cannot sign in.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Two-factor sign-in (services/accounts/two_factor.py): the TOTP secret (encrypted; set while enrolling, in use
    # once ``totp_enabled_at`` is set), the last accepted time-step (a code is never accepted twice) and the
    # SHA-256 hashes of the unused recovery codes.
    totp_secret: Mapped[str | None] = mapped_column(EncryptedJSON)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    recovery_codes: Mapped[list[str] | None] = mapped_column(JSON)

    client: Mapped[Client | None] = relationship(back_populates="users")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_active(self) -> bool:  # flask-login refuses inactive users
        return self.is_active_user


class Invitation(db.Model):
    """A teammate invited into a tenant: pending until accepted, revoked or past ``expires_at``."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    name: Mapped[str | None] = mapped_column(sa.String(120))
    tenant_role: Mapped[str] = mapped_column(sa.String(16), default="agent")
    invited_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    nonce: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    client: Mapped[Client] = relationship()
    invited_by: Mapped[User | None] = relationship()


class Contact(Timestamped, db.Model):
    __tablename__ = "contacts"
    __table_args__ = (sa.UniqueConstraint("client_id", "contact"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(sa.String(120))
    contact: Mapped[str] = mapped_column(sa.String(254))
    department: Mapped[str | None] = mapped_column(sa.String(80), index=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total_messages: Mapped[int] = mapped_column(default=0)
    # Set while the number is on the tenant's suppression list (it replied STOP).
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Template(Timestamped, db.Model):
    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    content: Mapped[str] = mapped_column(sa.Text)
    channel: Mapped[str] = mapped_column(sa.String(16), default="sms")
    variables: Mapped[list[str]] = mapped_column(JSON, default=list)
    whatsapp_template_id: Mapped[str | None] = mapped_column(sa.String(120))
    # The language the approved WhatsApp template is registered in (Meta matches name and exact code: en, en_US, sw).
    whatsapp_language: Mapped[str] = mapped_column(sa.String(16), default="en", server_default="en")


class Channel(Timestamped, db.Model):
    """A tenant's provider account for one channel; credentials are encrypted at rest."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(16))
    provider: Mapped[str] = mapped_column(sa.String(32))
    credentials: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Secret path token for vendors that do not sign their callbacks.
    webhook_token: Mapped[str | None] = mapped_column(sa.String(64), unique=True)


class Campaign(Timestamped, db.Model):
    __tablename__ = "campaigns"
    __table_args__ = (sa.Index(None, "client_id", "status"), sa.UniqueConstraint("client_id", "form_key"))

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    message: Mapped[str] = mapped_column(sa.Text, default="")
    sender_id: Mapped[str | None] = mapped_column(sa.String(20))
    channel: Mapped[str] = mapped_column(sa.String(16), default="sms")
    template_id: Mapped[int | None] = mapped_column(sa.ForeignKey("templates.id", ondelete="SET NULL"))
    recipients: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total_recipients: Mapped[int] = mapped_column(default=0)
    sent_count: Mapped[int] = mapped_column(default=0)
    delivered_count: Mapped[int] = mapped_column(default=0)
    failed_count: Mapped[int] = mapped_column(default=0)
    total_cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # Campaigns (issue 5, issue 8 item 2): promotional campaigns get the opt-out footer and quiet hours.
    kind: Mapped[str] = mapped_column(sa.String(16), default="promotional")
    # Each launch (the first send, then every "retry failed") is a run with its own quote and wallet hold.
    run: Mapped[int] = mapped_column(default=0)
    settled_run: Mapped[int] = mapped_column(default=0)
    retry_of_run: Mapped[int | None] = mapped_column()
    hold_reference: Mapped[str | None] = mapped_column(sa.String(100))
    estimated_cost: Mapped[Decimal | None] = mapped_column(Money)
    # What the last launch skipped: invalid numbers (with a sample of reasons), duplicates, opted-out numbers.
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pause_reason: Mapped[str | None] = mapped_column(sa.String(16))  # "user" or "quiet_hours"
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The composer's one-time form key: a double-submitted "new campaign" form creates one campaign.
    form_key: Mapped[str | None] = mapped_column(sa.String(64))


class Conversation(Timestamped, db.Model):
    __tablename__ = "conversations"
    __table_args__ = (
        sa.UniqueConstraint("client_id", "contact_id", "channel"),
        sa.Index(None, "client_id", "status"),
        # The inbox list (newest activity first per status), its polling (max per tenant), the nav badge.
        sa.Index(None, "client_id", "status", "last_message_at", "id"),
        sa.Index(None, "client_id", "last_message_at"),
        sa.Index(None, "client_id", "unread_count"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    contact_identifier: Mapped[str] = mapped_column(sa.String(254))
    channel: Mapped[str] = mapped_column(sa.String(16), default="sms")
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    unread_count: Mapped[int] = mapped_column(default=0)
    last_message_preview: Mapped[str | None] = mapped_column(sa.Text)
    last_message_direction: Mapped[str | None] = mapped_column(sa.String(10))
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    contact: Mapped[Contact] = relationship()


class Message(Timestamped, db.Model):
    """One message in either direction on any channel."""

    __tablename__ = "messages"
    __table_args__ = (
        sa.Index(None, "client_id", "created_at"),
        sa.UniqueConstraint("provider", "provider_message_id"),
        sa.UniqueConstraint("client_id", "idempotency_key"),
        # One message per recipient per campaign run; launches de-duplicate with ON CONFLICT DO NOTHING.
        sa.Index(None, "campaign_id", "campaign_run", "recipient", unique=True),
        # The hourly roll-up finds the messages created or changed since its last refresh.
        sa.Index(None, "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    template_id: Mapped[int | None] = mapped_column(sa.ForeignKey("templates.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16), default="sms")
    direction: Mapped[str] = mapped_column(sa.String(10), default="outbound", index=True)
    provider: Mapped[str | None] = mapped_column(sa.String(32))
    sender: Mapped[str | None] = mapped_column(sa.String(254))
    recipient: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str | None] = mapped_column(sa.String(255))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    segments: Mapped[int] = mapped_column(default=1)
    cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    is_read: Mapped[bool] = mapped_column(default=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The send pipeline. A caller's Idempotency-Key (unique per tenant) returns the same message when repeated.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255))
    # The channel the message went out through (set when a dispatch claims it).
    channel_id: Mapped[int | None] = mapped_column(sa.ForeignKey("channels.id", ondelete="SET NULL"))
    # When a dispatch last moved it pending -> sending, and how many times that happened.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    # A deferred message (provider busy) waits in pending until this time.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Which run of its campaign created the message (campaign messages only).
    campaign_run: Mapped[int | None] = mapped_column()


class WalletTransaction(Timestamped, db.Model):
    """One signed change of a tenant's balance; the balance is the sum of the completed rows."""

    __tablename__ = "wallet_transactions"
    # (client_id, id): the wallet history and its CSV export walk a tenant's rows newest first by id (keyset).
    __table_args__ = (
        sa.Index(None, "client_id", "created_at"),
        sa.Index(None, "updated_at"),
        sa.Index(None, "client_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    balance_before: Mapped[Decimal | None] = mapped_column(Money)
    balance_after: Mapped[Decimal | None] = mapped_column(Money)
    reference: Mapped[str] = mapped_column(sa.String(120), unique=True)
    mpesa_reference: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    # Daraja's id of an STK push; a callback is matched to its pending top-up by it.
    checkout_request_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="completed", index=True)
    # A top-up "paid" through the simulated M-Pesa (MPESA_ENV=simulated): no money moved.
    simulated: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class UnmatchedPayment(db.Model):
    """A paybill payment that was not credited automatically (unknown account, amount out of bounds,
    suspended tenant...): kept for a platform admin, who may assign it to a tenant once."""

    __tablename__ = "unmatched_payments"
    __table_args__ = (sa.Index(None, "assigned_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trans_id: Mapped[str] = mapped_column(sa.String(40), unique=True)  # M-Pesa's TransID
    amount: Mapped[Decimal | None] = mapped_column(Money)  # None: not a usable amount (see raw_amount)
    raw_amount: Mapped[str] = mapped_column(sa.String(64))
    bill_ref: Mapped[str] = mapped_column(sa.String(64))  # the account number as the payer typed it
    payer: Mapped[str] = mapped_column(sa.String(200), default="")
    msisdn: Mapped[str] = mapped_column(sa.String(64), default="")
    reason: Mapped[str] = mapped_column(sa.String(32))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    assigned_client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clients.id", ondelete="SET NULL"))
    assigned_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assign_reason: Mapped[str | None] = mapped_column(sa.Text)
    wallet_transaction_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("wallet_transactions.id", ondelete="SET NULL")
    )


class MessageStatsHourly(db.Model):
    """Outbound messages per tenant, UTC hour, channel and status: the dashboard's counts without a full scan.

    Derived data, rebuilt from ``messages`` by ``services.message_stats`` (never written anywhere else).
    """

    __tablename__ = "message_stats_hourly"

    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    messages: Mapped[int]
    units: Mapped[int]
    cost: Mapped[Decimal] = mapped_column(Money)


class SpendStatsHourly(db.Model):
    """Net spend (completed deductions and holds less releases and refunds) per tenant and UTC hour; derived."""

    __tablename__ = "spend_stats_hourly"

    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money)


class StatsWatermark(db.Model):
    """How far a roll-up is complete: its hours before ``sealed_until`` match the source rows."""

    __tablename__ = "stats_watermarks"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    sealed_until: Mapped[datetime] = mapped_column(UTCDateTime)


class ShortLink(Timestamped, db.Model):
    __tablename__ = "short_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(sa.String(12), unique=True)  # 4 characters, longer as live links grow
    original_url: Mapped[str] = mapped_column(sa.Text)
    clicks: Mapped[int] = mapped_column(default=0)
    last_clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Notification(Timestamped, db.Model):
    __tablename__ = "notifications"
    __table_args__ = (sa.Index(None, "client_id", "is_read", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(sa.String(32))
    title: Mapped[str] = mapped_column(sa.String(200))
    message: Mapped[str] = mapped_column(sa.Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_read: Mapped[bool] = mapped_column(default=False)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set once the email copies (for users who asked for this type by email) were handled.
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Event(db.Model):
    """Outbox of tenant-facing events (``message.delivered``, ``wallet.topup``...), written in the same
    transaction as the change they describe; outbound webhooks deliver them."""

    __tablename__ = "events"
    __table_args__ = (sa.Index(None, "client_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(sa.String(40))
    webhook_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # Set once the webhook dispatcher has looked at the event (queued a delivery or skipped it).
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


IMPORT_STATUSES = ("mapping", "queued", "running", "done", "failed")


class ContactImport(Timestamped, db.Model):
    """An uploaded contacts CSV: where it is stored, how its columns map, and how far its import got."""

    __tablename__ = "contact_imports"
    __table_args__ = (sa.Index(None, "client_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(sa.String(16), default="mapping", index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))  # as uploaded, for display
    stored_name: Mapped[str | None] = mapped_column(sa.String(64))  # file under <instance>/imports/; None once removed
    size_bytes: Mapped[int] = mapped_column(default=0)
    encoding: Mapped[str] = mapped_column(sa.String(16), default="utf-8")
    delimiter: Mapped[str] = mapped_column(sa.String(1), default=",")
    has_header: Mapped[bool] = mapped_column(default=True)
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    # {"phone": column index, "name": index|None, "department": index|None, "fields": {"<key>": index}}
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)
    created_count: Mapped[int] = mapped_column(default=0)  # new contacts
    updated_count: Mapped[int] = mapped_column(default=0)  # rows merged into a contact already in the book
    merged_count: Mapped[int] = mapped_column(default=0)  # rows repeating a number seen earlier in the file
    failed_count: Mapped[int] = mapped_column(default=0)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ContactImportReportRow(db.Model):
    """One line of an import's report: a row that failed, or one merged into an existing contact."""

    __tablename__ = "contact_import_report_rows"
    __table_args__ = (sa.Index(None, "import_id", "line"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    import_id: Mapped[int] = mapped_column(sa.ForeignKey("contact_imports.id", ondelete="CASCADE"))
    line: Mapped[int]
    outcome: Mapped[str] = mapped_column(sa.String(16))  # failed / updated / merged
    value: Mapped[str] = mapped_column(sa.String(255), default="")  # the phone cell as written
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    reason: Mapped[str] = mapped_column(sa.String(255))


WEBHOOK_DELIVERY_STATUSES = ("pending", "sending", "succeeded", "failed", "refused", "cancelled")


class WebhookDelivery(db.Model):
    """One attempt to POST an event to a tenant's webhook URL: claimed, sent once, then logged."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "attempt"),
        sa.Index(None, "client_id", "id"),
        sa.Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(default=1)
    trigger: Mapped[str] = mapped_column(sa.String(10), default="auto")  # auto | resend | test
    status: Mapped[str] = mapped_column(sa.String(12), default="pending")
    url: Mapped[str | None] = mapped_column(sa.String(500))
    status_code: Mapped[int | None] = mapped_column()
    response_ms: Mapped[int | None] = mapped_column()
    response_excerpt: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    # pending: when it is due; failed: when the retry is scheduled (None when there is none).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last handed to the job queue
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    event: Mapped[Event] = relationship()


class Suppression(db.Model):
    """A number (or address) that opted out of a tenant's promotional messages."""

    __tablename__ = "suppressions"
    __table_args__ = (sa.UniqueConstraint("client_id", "contact"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    contact: Mapped[str] = mapped_column(sa.String(254))
    source: Mapped[str] = mapped_column(sa.String(20))  # keyword, reply_form, provider, manual
    keyword: Mapped[str | None] = mapped_column(sa.String(40))
    channel: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class ApiIdempotencyKey(db.Model):
    """The stored answer to a REST API POST sent with an ``Idempotency-Key``: the same key and body get the same
    status and body again; the same key with another body is a conflict."""

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("client_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(255))
    method: Mapped[str] = mapped_column(sa.String(8))
    path: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))  # SHA-256 of method, path and canonical JSON body
    status_code: Mapped[int] = mapped_column()
    response_body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)


class AuditEvent(db.Model):
    """Who did what, append-only: no code path updates or deletes a row (database triggers refuse it, see
    ``AUDIT_TRIGGERS``). No foreign keys: the log outlives the users and tenants it names."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index(None, "client_id", "id"), sa.Index(None, "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int | None] = mapped_column()  # None: a platform event
    actor_user_id: Mapped[int | None] = mapped_column()  # None: the system or an API key
    actor_label: Mapped[str] = mapped_column(sa.String(255), default="")
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(sa.String(40))
    target_id: Mapped[str | None] = mapped_column(sa.String(64))
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# The append-only rule of audit_events, in the database: (name, dialect, DDL). The migration creates the same.
AUDIT_TRIGGERS = (
    (
        "audit_events_append_only",
        "postgresql",
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql",
    ),
    (
        "audit_events_no_change",
        "postgresql",
        "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    ),
    (
        "audit_events_no_update",
        "sqlite",
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    ),
    (
        "audit_events_no_delete",
        "sqlite",
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    ),
)
for _name, _dialect, _ddl in AUDIT_TRIGGERS:
    sa.event.listen(AuditEvent.__table__, "after_create", sa.DDL(_ddl).execute_if(dialect=_dialect))


class DevOutboxMail(db.Model):
    """An email the app would have sent, kept for /dev/outbox (development without ``MAIL_HOST`` only). A table,
    not memory, so the worker's mail and the web process's page agree."""

    __tablename__ = "dev_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(255))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)


class UserSession(db.Model):
    """One sign-in (services/accounts/sessions.py). The browser's cookie holds a random token; only its SHA-256
    is kept. Ended, idle past SESSION_IDLE_MINUTES or older than SESSION_MAX_DAYS: the cookie opens nothing."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(255))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# PostgreSQL only: trigram indexes let the inbox search (ILIKE '%text%' on message text and contact names) use an
# index instead of reading every message of the tenant. They need the pg_trgm extension, created with the tables
# here; a migration must run CREATE EXTENSION IF NOT EXISTS pg_trgm before creating them. SQLite scans instead.
sa.event.listen(
    db.metadata,
    "before_create",
    sa.DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)
TRIGRAM = {"postgresql_using": "gin"}
sa.Index("ix_messages_body_trgm", Message.body, postgresql_ops={"body": "gin_trgm_ops"}, **TRIGRAM).ddl_if(
    dialect="postgresql"
)
sa.Index("ix_contacts_name_trgm", Contact.name, postgresql_ops={"name": "gin_trgm_ops"}, **TRIGRAM).ddl_if(
    dialect="postgresql"
)
