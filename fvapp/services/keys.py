"""API keys: format, storage and lifecycle (SPEC §4). The clear key leaves this module once,
in the return value of create_key, and is never stored, logged or kept."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import MAX_ACTIVE_KEYS, NAME_MAX, REASON_MAX, ApiKey, utcnow
from . import audit, rules, workspaces
from .errors import DomainError, Forbidden
from .scoping import get_in_workspace
from .text import clean_text
from .transaction import atomic

KEY_PREFIX = "fvk_live_"
BODY_LENGTH = 32
CHECKSUM_LENGTH = 6
DISPLAY_CHARS = 4
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}[0-9A-Za-z]{{{BODY_LENGTH + CHECKSUM_LENGTH}}}$")
REASON_CREATOR_REMOVED = "creator removed from workspace"
# The create dialog's "Expires" choices (SPEC §4): never, a number of days, or a date.
NEVER = "never"
CUSTOM = "custom"
EXPIRY_DAYS = (7, 30, 60, 90)
MAX_EXPIRY_DAYS = 365  # a chosen date is at most a year ahead
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")  # what a date input sends
REASON_LEAKED = "leaked: found public at "
# Who revoked a key, in the same words on its row, in its detail and in Activity.
REVOKED_BY_LEAK_REPORT = "GitHub secret scanning"
REVOKED_BY_REMOVAL = "Member removed"
REVOKED_BY_OPERATOR = "ForceVue operator"


def revoked_by_label(person: str | None, reason: str | None) -> str:
    """A person's name, or what revoked the key when it was not a person's own choice."""
    if reason == REASON_CREATOR_REMOVED:
        return REVOKED_BY_REMOVAL
    if reason and reason.startswith(REASON_LEAKED):
        return REVOKED_BY_LEAK_REPORT
    return person or REVOKED_BY_OPERATOR


class KeyLimitReached(DomainError):
    """The workspace already holds MAX_ACTIVE_KEYS active keys: a fact about the workspace,
    not about the name typed, so it names no field."""

    def __init__(self):
        super().__init__(
            f"This workspace already has {MAX_ACTIVE_KEYS} active keys, the limit. "
            "Revoke a key to create another."
        )


# -- format -------------------------------------------------------------------------------


def base62(number: int, width: int) -> str:
    chars = []
    while number:
        number, digit = divmod(number, 62)
        chars.append(BASE62[digit])
    return "".join(reversed(chars)).rjust(width, BASE62[0])


def checksum(body: str) -> str:
    return base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate_key() -> str:
    body = "".join(secrets.choice(BASE62) for _ in range(BODY_LENGTH))
    return f"{KEY_PREFIX}{body}{checksum(body)}"


def is_well_formed(candidate: str) -> bool:
    """Shape and CRC32 checksum: rejects typos and random strings with no database work."""
    if not KEY_PATTERN.match(candidate):
        return False
    body = candidate[len(KEY_PREFIX):]
    return secrets.compare_digest(checksum(body[:BODY_LENGTH]), body[BODY_LENGTH:])


def hash_key(clear: str) -> str:
    return hashlib.sha256(clear.encode("ascii")).hexdigest()


def display_prefix(clear: str) -> str:
    return clear[: len(KEY_PREFIX) + DISPLAY_CHARS] + "…"


class NameInUse(DomainError):
    def __init__(self, name: str):
        super().__init__(f"Another active key is already named “{name}”. "
                         "Give this one a name that tells them apart.", field="name")


def name_taken(workspace_id: uuid.UUID, name: str) -> str | None:
    """The name of an active key of the workspace that reads as `name` (trimmed, any case),
    if there is one: two active keys never share a name, so no two rows read the same."""
    wanted = name.strip().casefold()
    stmt = select(ApiKey.name).where(ApiKey.workspace_id == workspace_id, ApiKey.active_at(utcnow()))
    return next((n for n in db.session.scalars(stmt) if n.strip().casefold() == wanted), None)


def clean_name(name: str | None) -> str:
    return clean_text(name, field="name", max_length=NAME_MAX, what="Key names",
                      required="Give the key a name, for example “CI pipeline”.")


def end_of_day(day: date) -> datetime:
    """The last instant of a UTC day: a key that expires "on" a date works all of that day."""
    return datetime.combine(day, time.max, UTC)


def latest_expiry_day(now: datetime) -> date:
    return now.date() + timedelta(days=MAX_EXPIRY_DAYS)


def choose_expiry(choice: str | None, on: str | None, now: datetime | None = None) -> datetime | None:
    """The create dialog's "Expires" answer as an instant (None: never). `choice` is NEVER,
    a number of days (EXPIRY_DAYS) or CUSTOM, and then `on` is the date (YYYY-MM-DD, UTC): the
    key ends at the end of that day, which is today at the earliest and a year ahead at most."""
    now = now or utcnow()
    choice = (choice or NEVER).strip()
    if choice == NEVER:
        return None
    if choice in {str(days) for days in EXPIRY_DAYS}:
        return now + timedelta(days=int(choice))
    if choice != CUSTOM:
        raise DomainError("Choose when the key expires from the list.", field="expires")
    text = (on or "").strip()
    if not text:
        raise DomainError("Choose the date the key expires on.", field="expires_on")
    try:
        day = date.fromisoformat(text) if ISO_DATE.match(text) else None
    except ValueError:  # 2027-02-30 and the like
        day = None
    if day is None:
        raise DomainError("Give the date as YYYY-MM-DD, for example 2027-01-31.", field="expires_on")
    latest = latest_expiry_day(now)
    if day < now.date():
        raise DomainError("That date is in the past. Choose today or a later date.",
                          field="expires_on")
    if day > latest:
        raise DomainError(f"A key can expire at most a year ahead, on {latest.isoformat()} "
                          "at the latest.", field="expires_on")
    return end_of_day(day)


def check_expiry(expires_at: datetime | None, now: datetime) -> None:
    """An expiry a new key may have: none, or later than now and at most a year ahead."""
    if expires_at is None:
        return
    if expires_at.tzinfo is None or not now < expires_at <= end_of_day(latest_expiry_day(now)):
        raise DomainError("A key expires after now and at most a year ahead.", field="expires")


def expiry_text(expires_at: datetime | None) -> str:
    """How an expiry is said where the key is described: `expires 2027-01-31` or ``."""
    return f"expires {expires_at:%Y-%m-%d}" if expires_at else ""


# -- queries ------------------------------------------------------------------------------


def list_keys(workspace_id: uuid.UUID) -> list[ApiKey]:
    """Every key of the workspace: active first, newest first."""
    stmt = (
        select(ApiKey)
        .where(ApiKey.workspace_id == workspace_id)
        .options(selectinload(ApiKey.created_by), selectinload(ApiKey.revoked_by))
        .order_by(~ApiKey.active_at(utcnow()), ApiKey.created_at.desc(), ApiKey.id)
    )
    return list(db.session.scalars(stmt))


def count_active(workspace_id: uuid.UUID) -> int:
    """Keys that fill the cap: not revoked and not expired."""
    stmt = select(func.count()).where(
        ApiKey.workspace_id == workspace_id, ApiKey.active_at(utcnow())
    )
    return db.session.scalar(stmt) or 0


def cap_reached(active: int) -> bool:
    """The 10-key cap: the create button, the dialog and create_key all ask this."""
    return active >= MAX_ACTIVE_KEYS


def active_keys_of_creator(workspace_id: uuid.UUID, user_id: uuid.UUID) -> list[ApiKey]:
    """A user's active keys in one workspace: what removing them from it revokes (and what the
    removal confirmation lists), newest first."""
    stmt = (
        select(ApiKey)
        .where(
            ApiKey.workspace_id == workspace_id,
            ApiKey.created_by_id == user_id,
            ApiKey.active_at(utcnow()),
        )
        .order_by(ApiKey.created_at.desc(), ApiKey.id)
    )
    return list(db.session.scalars(stmt))


def revoke_first(listed: list[ApiKey]) -> ApiKey | None:
    """At the cap, the active key to suggest revoking: the one unused longest (never used
    counts from its creation)."""
    active = [key for key in listed if key.is_active]
    return min(active, key=lambda k: (k.last_used_at or k.created_at, k.created_at), default=None)


def get_key(workspace_id: uuid.UUID, key_id: uuid.UUID | str) -> ApiKey:
    return get_in_workspace(ApiKey, workspace_id, key_id, "Key")


# -- changes ------------------------------------------------------------------------------


def _require_manager(workspace_id: uuid.UUID, actor_id: uuid.UUID, plan: str) -> None:
    member = workspaces.membership(actor_id, workspace_id)
    if not rules.can_manage_keys(member.role if member else None, plan):
        raise Forbidden("Only owners and admins of a paid workspace can manage API keys.")


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    clear: str  # shown once, in the reveal; never stored


def create_key(
    workspace_id: uuid.UUID, actor_id: uuid.UUID, name: str, ip: str | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """Name rules, the gate, the 10-key cap and the audit event, in one transaction.
    `expires_at`: when the key stops working (choose_expiry), None for never; set here once.

    The workspace row is locked first, so concurrent creates count one after another and the
    cap holds however many race.
    """
    name = clean_name(name)
    check_expiry(expires_at, utcnow())
    with atomic():
        ws = workspaces.lock_workspace(workspace_id)
        _require_manager(workspace_id, actor_id, ws.plan)
        if cap_reached(count_active(workspace_id)):
            raise KeyLimitReached()
        taken = name_taken(workspace_id, name)
        if taken is not None:
            raise NameInUse(taken)
        clear = generate_key()
        key = ApiKey(
            workspace_id=workspace_id,
            created_by_id=actor_id,
            name=name,
            prefix=display_prefix(clear),
            key_hash=hash_key(clear),
            created_at=utcnow(),
            expires_at=expires_at,
        )
        db.session.add(key)
        db.session.flush()
        audit.record(
            workspace_id=workspace_id,
            actor_id=actor_id,
            action="api_key.created",
            target_type="api_key",
            target_id=key.id,
            target_label=f"{key.name} ({key.prefix})",
            detail=expiry_text(expires_at),
            ip=ip,
        )
    return CreatedKey(key=key, clear=clear)


def revoke_key(
    workspace_id: uuid.UUID, key_id: uuid.UUID | str, actor_id: uuid.UUID, ip: str | None = None
) -> ApiKey:
    """Idempotent: revoking a key no longer active (revoked, or expired) changes nothing and
    records nothing."""
    with atomic():
        ws = workspaces.lock_workspace(workspace_id)
        _require_manager(workspace_id, actor_id, ws.plan)
        key = get_key(workspace_id, key_id)
        if key.active_at(utcnow()):
            _mark_revoked(key, actor_id, reason=None, ip=ip)
    return key


def revoke_keys_of_creator(
    workspace_id: uuid.UUID, user_id: uuid.UUID, actor_id: uuid.UUID, reason: str, ip=None
) -> list[ApiKey]:
    """Part of a caller's transaction (member removal): no commit here."""
    keys = active_keys_of_creator(workspace_id, user_id)
    for key in keys:
        _mark_revoked(key, actor_id, reason=reason, ip=ip)
    return keys


def _mark_revoked(key: ApiKey, actor_id: uuid.UUID, reason: str | None, ip: str | None) -> None:
    key.revoked_at = utcnow()
    key.revoked_by_id = actor_id
    key.revoked_reason = reason
    _audit_key(key, actor_id, "api_key.revoked", reason or "", ip)


def _audit_key(key: ApiKey, actor_id: uuid.UUID | None, action: str, detail: str, ip: str | None = None) -> None:
    audit.record(
        workspace_id=key.workspace_id,
        actor_id=actor_id,
        action=action,
        target_type="api_key",
        target_id=key.id,
        target_label=f"{key.name} ({key.prefix})",
        detail=detail,
        ip=ip,
    )


def find_by_hashes(hashes: list[str]) -> dict[str, ApiKey]:
    """Keys by SHA-256 hex, in chunks (a leak report may name a thousand)."""
    found: dict[str, ApiKey] = {}
    for start in range(0, len(hashes), 500):
        chunk = hashes[start:start + 500]
        for key in db.session.scalars(select(ApiKey).where(ApiKey.key_hash.in_(chunk))):
            found[key.key_hash] = key
    return found


def revoke_leaked(key: ApiKey, url: str) -> bool:
    """Part of a caller's transaction (a leak report): revoke with no actor and the reason
    `leaked: found public at <url>`. A conditional UPDATE, so of two reports racing (or a
    report racing a manual revoke) exactly one revokes and records; a key already expired is
    left as it is. True if this call revoked."""
    reason = f"{REASON_LEAKED}{url}"[:REASON_MAX]
    now = utcnow()
    result = db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key.id, ApiKey.active_at(now))
        .values(revoked_at=now, revoked_by_id=None, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    db.session.refresh(key)
    _audit_key(key, None, "api_key.leak_revoked", reason)
    return True
