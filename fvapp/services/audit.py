"""Audit events: who did what to which key or member, when and from where. Never a secret."""

from __future__ import annotations

import uuid

from ..extensions import db
from ..models import AuditEvent


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
        target_label=target_label[:300],
        detail=detail[:300],
        ip=ip,
    )
    db.session.add(event)
    return event
