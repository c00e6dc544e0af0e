"""Audit events: who did what to which key or member, when and from where. Never a secret."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import AUDIT_TEXT_MAX, AuditEvent


def record(
    *,
    workspace_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    action: str,
    target_type: str,
    target_id: uuid.UUID | None = None,
    target_label: str = "",
    detail: str = "",
    ip: str | None = None,
) -> AuditEvent:
    """Adds the event to the current transaction: it commits with the change or not at all."""
    event = AuditEvent(
        workspace_id=workspace_id,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label[:AUDIT_TEXT_MAX],
        detail=detail[:AUDIT_TEXT_MAX],
        ip=ip,
    )
    db.session.add(event)
    return event


# -- reads ----------------------------------------------------------------------------------


def events_page(workspace_id: uuid.UUID, page: int, size: int) -> tuple[list[AuditEvent], bool]:
    """One page of the workspace's events, newest first, with their actors; and whether there
    are more after it."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.workspace_id == workspace_id)
        .options(selectinload(AuditEvent.actor))
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .offset((page - 1) * size)
        .limit(size + 1)
    )
    events = list(db.session.scalars(stmt))
    return events[:size], len(events) > size


def last_plan_change(workspace_id: uuid.UUID) -> AuditEvent | None:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.workspace_id == workspace_id, AuditEvent.action == "plan.changed")
        .order_by(AuditEvent.created_at.desc())
        .limit(1)
    )
    return db.session.scalar(stmt)
