"""Who is calling the REST API: the Authorization header → a key → the principal it acts as.

The hot path of every API request, so it costs one indexed SELECT (by the key's SHA-256, joined
to the workspace, the creator and the creator's membership) and, at most once a minute per key,
one UPDATE of last_used_at with the caller's address and user agent (SPEC §9). Nothing is
cached between requests: revocation, downgrade and removal take effect on the very next
request, in every process.
"""

from __future__ import annotations

import time
import uuid
from collections import namedtuple
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.exc import DBAPIError

from .. import db_reader
from ..db_setup import immediate_begin, stalled
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
from .transaction import atomic, end_read

BEARER = "bearer"
MISSING = "Send your API key in the header Authorization: Bearer <key>."
INVALID = "This API key is not valid. It may have been revoked."
EXPIRED = "This API key expired on {:%Y-%m-%d}."


class KeyRejected(DomainError):
    """401: no usable key (missing, malformed, unknown, revoked, expired, or its creator left)."""

    def __init__(self, message: str = INVALID):
        super().__init__(message)


class PlanRequired(DomainError):
    """403: the key is fine but its workspace's plan has no API access."""

    def __init__(self):
        super().__init__(
            "API access needs a paid plan. An owner can upgrade in Settings → Subscription; "
            "existing keys then work again."
        )


class Principal(NamedTuple):
    """The key and the creator it acts as, in the key's workspace, as read by the auth query.
    Immutable; a NamedTuple rather than a frozen dataclass, made on every API request: a tenth
    of the cost (one tuple, not twelve object.__setattr__ calls)."""

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
    """The credentials of `Authorization: Bearer <token>` (scheme case-insensitive), else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != BEARER:
        return None
    return token.strip() or None


def candidate_hash(authorization: str | None) -> str:
    """The SHA-256 of the key in `Authorization: Bearer <key>`: the one parse of the header.
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
    if row is not None and row.revoked_at is None and key_expired(row.expires_at, now):
        return KeyRejected(EXPIRED.format(row.expires_at))
    return KeyRejected()


def needs_touch(last_used_at: datetime | None, now: datetime, every: timedelta) -> bool:
    return last_used_at is None or now - last_used_at >= every


def authenticate(authorization: str | None, touch_every: timedelta, ip: str | None = None,
                 user_agent: str | None = None) -> Principal:
    """The principal for this Authorization header, or KeyRejected (401) / PlanRequired (403).
    `ip` and `user_agent`: where the request came from, recorded with last_used_at when that
    is written."""
    return principal_for(candidate_hash(authorization), touch_every, ip=ip, user_agent=user_agent)


def principal_for(key_hash: str, touch_every: timedelta,
                  admit: Callable[[], None] | None = None, ip: str | None = None,
                  user_agent: str | None = None) -> Principal:
    """The principal for a key's SHA-256 (candidate_hash), or KeyRejected / PlanRequired.
    `admit`, if given, runs once the key's row is read and before it is judged or touched: the
    caller's last word (the API's rate limit, whose round trip overlaps the read); it refuses
    by raising. `ip`, `user_agent`: as for authenticate."""
    row = _lookup(key_hash)
    if admit is not None:
        admit()
    now = utcnow()
    if not usable(row, now):
        raise refusal(row, now)
    if not rules.plan_has_api_access(row.plan):
        raise PlanRequired()
    last_used_at = row.last_used_at
    if needs_touch(last_used_at, now, touch_every):
        _touch(row.id, now, touch_every, ip, user_agent)
        last_used_at = now
    return Principal(
        key_id=row.id,
        key_name=row.name,
        key_prefix=row.prefix,
        key_created_at=row.created_at,
        key_last_used_at=last_used_at,
        key_expires_at=row.expires_at,
        user_id=row.user_id,
        user_email=row.email,
        user_name=row.user_name,
        workspace_id=row.workspace_id,
        workspace_name=row.workspace_name,
        plan=row.plan,
        role=row.role,
    )


# The auth query's row as the direct path returns it: the same names as the statement's columns.
Found = namedtuple("Found", [column.key for column in _LOOKUP.selected_columns])
_DATETIMES = [Found._fields.index(name)
              for name in ("created_at", "last_used_at", "revoked_at", "expires_at")]


def _lookup(key_hash: str):
    """The auth query, one round trip. On PostgreSQL it goes straight to the driver, on a
    connection of its own (below); otherwise, inside a transaction already begun (the same
    snapshot), or while something listens to the engine's statements (the tests that count
    them, tracing), through the session: the same statement, and SQLAlchemy's events see it."""
    engine = db.engine
    if (engine.dialect.name != "postgresql"
            or engine.dispatch.before_cursor_execute or engine.dispatch.after_cursor_execute
            or (db.session.registry.has() and db.session().in_transaction())):
        return _lookup_in_session(key_hash)
    return _lookup_direct(engine, key_hash)


def _lookup_direct(engine, key_hash: str):
    """The statement, prepared, straight on psycopg, on this thread's own connection and cursor
    for it (fvapp/db_reader.py): in autocommit for its whole life (no BEGIN/ROLLBACK pair around
    one read, no autocommit switch per request) and outside the pool (no checkout, no reset on return):
    SQLAlchemy's execution machinery and pool around it cost more than the round trip itself.
    Errors come out as SQLAlchemy's (an unavailable database answers 503). A connection found
    dead is closed, the pool's connections of its generation are invalidated (the server most
    likely restarted), and the read is retried once on a fresh connection; not after a stall
    (db_setup.stalled): the retry would most likely wait as long again, so that is a 503 now."""
    dbapi = engine.dialect.loaded_dbapi
    sql = _direct_sql(engine.dialect)
    params = (key_hash,)
    for attempt in (1, 2):
        held = db_reader.held_for(engine)
        connection, cursor = held.connection, held.cursor
        try:
            cursor.execute(sql, params, prepare=True)
            row = cursor.fetchone()
        except dbapi.Error as exc:
            lost = (engine.dialect.is_disconnect(exc, connection, None)
                    or connection.closed or connection.broken)
            if lost:
                db_reader.discard(engine, held)
                engine.pool._invalidate(None, exc, _checkin=False)  # as SQLAlchemy does
                if attempt == 1 and not stalled(exc):
                    continue
            raise DBAPIError.instance(sql, params, exc, dbapi.Error,
                                      connection_invalidated=lost) from exc
        held.used = time.monotonic()
        break
    if row is None:
        return None
    values = list(row)
    for index in _DATETIMES:  # as UTCDateTime reads them
        if values[index] is not None:
            values[index] = values[index].astimezone(UTC)
    return Found._make(values)


@lru_cache(maxsize=4)
def _direct_sql(dialect) -> str:
    """_BY_HASH as SQLAlchemy compiles it, its one parameter positional (cheaper to bind)."""
    sql = str(_BY_HASH.compile(dialect=dialect))
    assert sql.count("%(key_hash)s") == 1 and "%s" not in sql
    return sql.replace("%(key_hash)s", "%s")


def _lookup_in_session(key_hash: str):
    """The auth query through the session. On PostgreSQL (the fallback of the direct path) on
    an autocommit connection: one round trip, and the connection goes back to the pool at once,
    so the rest of the request keeps ordinary transactions. Other backends: the session as is."""
    statement, params = _BY_HASH, {"key_hash": key_hash}
    if db.session.get_bind().dialect.name != "postgresql" or db.session().in_transaction():
        return db.session.execute(statement, params).first()
    for attempt in (1, 2):
        try:
            # A unit of its own: no COMMIT is sent (nothing was begun), and the connection goes
            # back to the pool at once; a failure rolls the session back.
            with atomic():
                connection = db.session.connection(
                    execution_options={"isolation_level": "AUTOCOMMIT"})
                row = connection.execute(statement, params).first()
        except DBAPIError as exc:
            # A pooled connection found dead (the server restarted since it was last used; no
            # ping, see db_setup): SQLAlchemy has invalidated the pool, so a read retried once
            # gets a fresh connection; the request succeeds as with pool_pre_ping.
            # Not one that stalled (db_setup.stalled): a retry would wait as long again.
            if attempt == 1 and exc.connection_invalidated and not stalled(exc):
                continue
            raise
        return row
    raise AssertionError("unreachable")


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
