"""Who is calling the REST API: the Authorization header → a key → the principal it acts as.

The hot path of every API request, so it costs one indexed SELECT (by the key's SHA-256, joined
to the workspace, the creator and the creator's membership) and, at most once a minute per key,
one UPDATE of last_used_at with the caller's address and user agent (SPEC §9). Nothing is
cached between requests: revocation, downgrade and removal take effect on the very next
request, in every process.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import and_, bindparam, or_, select, update

from ..db_setup import immediate_begin
from ..extensions import db
from ..models import (
    AGENT_MAX,
    IP_MAX,
    ApiKey,
    Membership,
    User,
    Workspace,
    key_active,
    key_expired,
    utcnow,
)
from . import keys, rules
from .errors import DomainError
from .transaction import atomic, end_read, read

BEARER = "bearer"
MISSING = "Send your API key in the header Authorization: Bearer <key>."
INVALID = "This API key is not valid. It may have been revoked."
EXPIRED = "This API key expired on {:%Y-%m-%d}."


class KeyRejected(DomainError):
    """401: no usable key (missing, malformed, unknown, revoked, expired, or its creator left).
    `key_id`: the key's id when its row was found (revoked, expired, creator removed), else None."""

    def __init__(self, message: str = INVALID, key_id: uuid.UUID | None = None):
        super().__init__(message)
        self.key_id = key_id


class PlanRequired(DomainError):
    """403: the key is fine but its workspace's plan has no API access. `key_id`: that key."""

    def __init__(self, key_id: uuid.UUID | None = None):
        super().__init__(
            "API access needs a paid plan. An owner can upgrade in Settings → Subscription; "
            "existing keys then work again."
        )
        self.key_id = key_id


class Principal(NamedTuple):
    """The key and the creator it acts as, in the key's workspace, as read by the auth query.
    Immutable; a NamedTuple rather than a frozen dataclass because one is made on every API
    request, and a tuple is built in one step where a frozen dataclass sets each field."""

    key_id: uuid.UUID
    key_name: str
    key_prefix: str
    key_created_at: datetime
    key_last_used_at: datetime | None
    key_expires_at: datetime | None
    user_id: uuid.UUID
    user_email: str
    user_name: str
    workspace_id: uuid.UUID
    workspace_name: str
    plan: str
    role: str


# One statement, built once: the unique index on key_hash finds the key, primary keys find the
# workspace and the creator, and the (user_id, workspace_id) unique index finds the membership.
# The membership is an outer join so "creator removed" is told apart from "unknown key".
_LOOKUP = (
    select(
        ApiKey.id,
        ApiKey.name,
        ApiKey.prefix,
        ApiKey.created_at,
        ApiKey.last_used_at,
        ApiKey.revoked_at,
        ApiKey.expires_at,
        Workspace.id.label("workspace_id"),
        Workspace.name.label("workspace_name"),
        Workspace.plan,
        User.id.label("user_id"),
        User.email,
        User.name.label("user_name"),
        Membership.role,
    )
    .join(Workspace, Workspace.id == ApiKey.workspace_id)
    .join(User, User.id == ApiKey.created_by_id)
    .outerjoin(
        Membership,
        and_(
            Membership.user_id == ApiKey.created_by_id,
            Membership.workspace_id == ApiKey.workspace_id,
        ),
    )
)


# Built once with a bound parameter: no statement construction per request, one cache entry.
_BY_HASH = _LOOKUP.where(ApiKey.key_hash == bindparam("key_hash"))


def bearer_token(authorization: str | None) -> str | None:
    """The credentials of `Authorization: Bearer <token>` (scheme case-insensitive), else None:
    the one parse of the header, for the key check (candidate_hash), the usage count of a
    refused request (fvapp/api/auth.py) and the request log's key prefix (fvapp/request_log.py)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != BEARER:
        return None
    return token.strip() or None


def candidate_hash(authorization: str | None) -> str:
    """The SHA-256 of the key in `Authorization: Bearer <key>` (bearer_token).
    KeyRejected(MISSING) without a Bearer token, KeyRejected() for a malformed key (shape and
    checksum: no database work for typos and random strings)."""
    candidate = bearer_token(authorization)
    if candidate is None:
        raise KeyRejected(MISSING)
    if not keys.is_well_formed(candidate):
        raise KeyRejected()
    return keys.hash_key(candidate)


def usable(row, now: datetime) -> bool:
    """The one rule for "does this key authenticate at `now`": it exists, is active (not
    revoked, not expired: models.key_active), and its creator is still a member of the key's
    workspace (checked now, not when it was created)."""
    return (row is not None and row.role is not None
            and key_active(row.revoked_at, row.expires_at, now))


def refusal(row, now: datetime) -> KeyRejected:
    """Why a key that is not usable is refused: its expiry, named with its date, when that is
    what ended it; otherwise the one message that tells nothing about the key."""
    key_id = None if row is None else row.id
    if row is not None and row.revoked_at is None and key_expired(row.expires_at, now):
        return KeyRejected(EXPIRED.format(row.expires_at), key_id=key_id)
    return KeyRejected(key_id=key_id)


def needs_touch(last_used_at: datetime | None, now: datetime, every: timedelta) -> bool:
    return last_used_at is None or now - last_used_at >= every


def authenticate(authorization: str | None, touch_every: timedelta, ip: str | None = None,
                 user_agent: str | None = None) -> Principal:
    """The principal for this Authorization header, or KeyRejected (401) / PlanRequired (403).
    `ip` and `user_agent`: where the request came from, recorded with last_used_at when that
    is written."""
    principal = principal_for(candidate_hash(authorization))
    return accept(principal, touch_every, ip=ip, user_agent=user_agent)


def principal_for(key_hash: str) -> Principal:
    """The principal a key's SHA-256 (candidate_hash) acts as: one SELECT, nothing written.
    KeyRejected when the key is unknown, revoked, expired, or its creator left the workspace; it carries
    the key's id when its row was found (the refused request is counted for that key)."""
    row = _lookup(key_hash)
    now = utcnow()
    if not usable(row, now):
        raise refusal(row, now)
    return Principal(
        key_id=row.id,
        key_name=row.name,
        key_prefix=row.prefix,
        key_created_at=row.created_at,
        key_last_used_at=row.last_used_at,
        key_expires_at=row.expires_at,
        user_id=row.user_id,
        user_email=row.email,
        user_name=row.user_name,
        workspace_id=row.workspace_id,
        workspace_name=row.workspace_name,
        plan=row.plan,
        role=row.role,
    )


def accept(principal: Principal, touch_every: timedelta, ip: str | None = None,
           user_agent: str | None = None) -> Principal:
    """The principal, once its workspace's plan has API access (else PlanRequired), with the
    use recorded (last_used_at, at most once per `touch_every`: see _touch). `ip`,
    `user_agent`: as for authenticate."""
    if not rules.plan_has_api_access(principal.plan):
        raise PlanRequired(principal.key_id)
    now = utcnow()
    if not needs_touch(principal.key_last_used_at, now, touch_every):
        return principal
    _touch(principal.key_id, now, touch_every, ip, user_agent)
    return principal._replace(key_last_used_at=now)


def _lookup(key_hash: str):
    """The auth query, one round trip, by the same function in production and in tests: the
    services' one read path (transaction.read: autocommit on PostgreSQL outside a transaction,
    the request's transaction and snapshot inside one)."""
    rows = read(_BY_HASH, {"key_hash": key_hash})
    return rows[0] if rows else None


def origin(ip: str | None, user_agent: str | None) -> dict:
    """The last_used_ip/_user_agent values for a use: printable text only, cut to the column
    sizes (an agent longer than AGENT_MAX ends in "…")."""
    text = "".join(c if c.isprintable() or c.isspace() else "" for c in user_agent or "")
    agent = " ".join(text.split())  # tabs and runs of spaces: one space
    if len(agent) > AGENT_MAX:
        agent = agent[: AGENT_MAX - 1] + "…"
    return {"last_used_ip": (ip or "")[:IP_MAX] or None, "last_used_user_agent": agent or None}


def _touch(key_id: uuid.UUID, now: datetime, every: timedelta, ip: str | None = None,
           user_agent: str | None = None) -> None:
    """Record the use, with its origin, in the one UPDATE. The guard in WHERE keeps concurrent
    requests from writing twice; the write gets a transaction of its own (on SQLite, BEGIN
    IMMEDIATE: a read transaction that turns into a writer can fail instead of waiting its
    turn). It ends the lookup's read transaction (SQLite) first, and refuses to run over anyone's
    uncommitted changes: it never commits them."""
    end_read()
    with immediate_begin(), atomic():
        db.session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - every),
            )
            .values(last_used_at=now, **origin(ip, user_agent))
            .execution_options(synchronize_session=False)
        )
