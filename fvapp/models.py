"""The data model of SPEC §1, in SQLAlchemy 2.0 typed style."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    and_,
    or_,
)
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, MappedColumn, mapped_column, relationship

from .extensions import db

PLANS = ("free", "pro", "team", "consultant", "internal")
PAID_PLANS = frozenset({"pro", "team", "consultant"})
API_PLANS = PAID_PLANS | {"internal"}
ROLES = ("owner", "admin", "member")
MANAGER_ROLES = frozenset({"owner", "admin"})
MAX_ACTIVE_KEYS = 10  # per workspace (SPEC §3)
# Lengths a column holds and a service's rule enforces (the services, and through them the forms,
# take them from here).
EMAIL_MAX = 254  # the longest address SMTP can carry (RFC 5321)
TITLE_MAX = 200  # an initiative's title
NAME_MAX = 100  # a person's, a workspace's or a key's name
AGENT_MAX = 200  # characters of a key's last user agent kept (SPEC §9)
REASON_MAX = 200  # a key's revocation reason
IP_MAX = 45  # the longest textual IPv6 address
AUDIT_TEXT_MAX = 300  # an audit event's target label and detail


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# The columns most tables share, declared once.
def primary_id() -> MappedColumn:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def workspace_ref() -> MappedColumn:
    """The workspace the row belongs to: it goes when the workspace does."""
    return mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)


def actor_ref() -> MappedColumn:
    """The user who acted: the row stays, naming nobody, when that user is deleted."""
    return mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[uuid.UUID] = primary_id()
    email: Mapped[str] = mapped_column(String(EMAIL_MAX), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    password_hash: Mapped[str] = mapped_column(String(60))
    # Bumped at logout: sessions carry it, so a cookie copied before logout stops working.
    session_generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user")

    # Flask-Login protocol
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id.hex}:{self.session_generation}"


class Workspace(db.Model):
    __tablename__ = "workspaces"
    __table_args__ = (CheckConstraint(_in("plan", PLANS), name="plan_known"),)

    id: Mapped[uuid.UUID] = primary_id()
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    plan: Mapped[str] = mapped_column(String(20), default="free")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="workspace")


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "workspace_id"),
        CheckConstraint(_in("role", ROLES), name="role_known"),
    )

    id: Mapped[uuid.UUID] = primary_id()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[uuid.UUID] = workspace_ref()
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")
    workspace: Mapped[Workspace] = relationship(back_populates="memberships")


class ApiKey(db.Model):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = primary_id()
    workspace_id: Mapped[uuid.UUID] = workspace_ref()
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    prefix: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256, hex
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where that last use came from (SPEC §9), written by the same once-a-minute UPDATE.
    last_used_ip: Mapped[str | None] = mapped_column(String(IP_MAX))
    last_used_user_agent: Mapped[str | None] = mapped_column(String(AGENT_MAX))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(REASON_MAX))
    # When the key stops authenticating (SPEC §4), chosen at creation and never changed;
    # None: it never expires.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    revoked_by: Mapped[User | None] = relationship(foreign_keys=[revoked_by_id])

    @hybrid_method
    def active_at(self, now: datetime) -> bool:
        """Whether the key is active at `now` (key_active), on a loaded key."""
        return key_active(self.revoked_at, self.expires_at, now)

    @active_at.inplace.expression
    @classmethod
    def _active_at_expression(cls, now: datetime) -> ColumnElement[bool]:
        """The same rule as SQL, for the queries that count, list and revoke active keys."""
        return and_(cls.revoked_at.is_(None), or_(cls.expires_at.is_(None), cls.expires_at > now))

    @property
    def is_active(self) -> bool:
        return self.active_at(utcnow())

    @property
    def is_expired(self) -> bool:
        """Ended by its expiry, not revoked (a revoked key reads Revoked, whenever it expires)."""
        return self.revoked_at is None and key_expired(self.expires_at, utcnow())

    @property
    def ended_at(self) -> datetime | None:
        """When an ended key stopped working: revoked, or else expired (a key cannot be
        revoked once it has expired, so the earlier of the two is always this one)."""
        if self.revoked_at is not None:
            return self.revoked_at
        return self.expires_at if self.is_expired else None


def key_active(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> bool:
    """The one rule for "is this key active at `now`": not revoked, and `now` is before its
    expiry, if it has one. Active keys authenticate (with a creator still in the workspace:
    key_auth.usable), fill the cap of 10, can be revoked, and leak reports revoke them;
    ApiKey.active_at is this rule on a key and, in a query, as SQL."""
    return revoked_at is None and not key_expired(expires_at, now)


def key_expired(expires_at: datetime | None, now: datetime) -> bool:
    """From its expiry on, a key has ended (revoked or not)."""
    return expires_at is not None and now >= expires_at


class Initiative(db.Model):
    __tablename__ = "initiatives"

    id: Mapped[uuid.UUID] = primary_id()
    workspace_id: Mapped[uuid.UUID] = workspace_ref()
    created_by_id: Mapped[uuid.UUID | None] = actor_ref()
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    description: Mapped[str | None] = mapped_column(Text)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[uuid.UUID] = primary_id()
    workspace_id: Mapped[uuid.UUID] = workspace_ref()
    actor_id: Mapped[uuid.UUID | None] = actor_ref()
    action: Mapped[str] = mapped_column(String(50))
    target_type: Mapped[str] = mapped_column(String(30))
    target_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # What the target was called when it happened: a key's name and prefix, a member's email.
    target_label: Mapped[str] = mapped_column(String(AUDIT_TEXT_MAX), default="")
    detail: Mapped[str] = mapped_column(String(AUDIT_TEXT_MAX), default="")
    ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    actor: Mapped[User | None] = relationship()


class KeyLeakAlert(db.Model):
    """A key reported public (SPEC §9): shown to the workspace's owners/admins until dismissed."""

    __tablename__ = "key_leak_alerts"

    id: Mapped[uuid.UUID] = primary_id()
    workspace_id: Mapped[uuid.UUID] = workspace_ref()
    api_key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dismissed_by_id: Mapped[uuid.UUID | None] = actor_ref()

    api_key: Mapped[ApiKey] = relationship()


class KeyUsageDaily(db.Model):
    """Requests answered per key per UTC day (SPEC §9), added to by fvapp/usage/counting.py's flushes:
    ok (2xx/3xx), denied (403), limited (429), errors (other 4xx/5xx). Kept 90 days."""

    __tablename__ = "key_usage_daily"

    key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    ok: Mapped[int] = mapped_column(Integer, default=0)
    denied: Mapped[int] = mapped_column(Integer, default=0)
    limited: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
