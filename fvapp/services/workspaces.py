"""Workspaces: who belongs to which, finding one, locking one, renaming one."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from ..db_setup import immediate_begin
from ..extensions import db
from ..models import NAME_MAX, Membership, User, Workspace
from . import audit
from .errors import DomainError, NotFound
from .rules import can_rename_workspace
from .text import clean_text
from .transaction import atomic, end_read, has_pending_changes

WORKSPACE_NAME_MAX = NAME_MAX


# -- queries ------------------------------------------------------------------------------


def memberships_of(user_id: uuid.UUID) -> list[Membership]:
    stmt = (
        select(Membership)
        .join(Membership.workspace)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.name, Workspace.id)
    )
    return list(db.session.scalars(stmt))


def membership(user_id: uuid.UUID, workspace_id: uuid.UUID) -> Membership | None:
    stmt = select(Membership).where(
        Membership.user_id == user_id, Membership.workspace_id == workspace_id
    )
    return db.session.scalar(stmt)


def find_workspace(name_or_id: str) -> Workspace:
    """By id, or else by exact name; an ambiguous name is an error, not a guess."""
    try:
        ws = db.session.get(Workspace, uuid.UUID(name_or_id))
        if ws is not None:
            return ws
    except ValueError:
        pass
    found = list(db.session.scalars(select(Workspace).where(Workspace.name == name_or_id)))
    if not found:
        raise NotFound(f"No workspace named or with id {name_or_id!r}")
    if len(found) > 1:
        raise DomainError(f"Several workspaces are named {name_or_id!r}; give its id")
    return found[0]


def lock_workspace(workspace_id: uuid.UUID) -> Workspace:
    """Begin the transaction that serializes changes to one workspace (its keys, members, plan).
    Call it first in an `atomic()` block: it refuses (RuntimeError) to run over uncommitted
    changes, which it would otherwise have to commit or lose.

    PostgreSQL: SELECT … FOR UPDATE on the workspace row. SQLite: end the read transaction and
    open the next one with BEGIN IMMEDIATE, the only lock SQLite offers. Either way the caller
    holds the lock until it commits or rolls back.
    """
    if has_pending_changes():
        raise RuntimeError("lock_workspace() must begin the unit of work: there are uncommitted "
                           "changes")
    if db.session.get_bind().dialect.name == "sqlite":
        end_read()
        with immediate_begin():
            ws = db.session.get(Workspace, workspace_id, populate_existing=True)
    else:
        ws = db.session.scalar(
            select(Workspace)
            .where(Workspace.id == workspace_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    if ws is None:
        raise NotFound("No such workspace")
    return ws


# -- changes ------------------------------------------------------------------------------


def clean_workspace_name(name: str) -> str:
    return clean_text(name, field="name", max_length=WORKSPACE_NAME_MAX, what="Workspace names",
                      required="Enter a workspace name.")


def rename(workspace: Workspace, actor: User, role: str | None, name: str, ip=None) -> Workspace:
    if not can_rename_workspace(role):
        raise DomainError("Only owners and admins can rename the workspace.")
    name = clean_workspace_name(name)
    with atomic():
        if name != workspace.name:
            audit.record(
                workspace_id=workspace.id,
                actor_id=actor.id,
                action="workspace.renamed",
                target_type="workspace",
                target_id=workspace.id,
                target_label=name,
                detail=f"from {workspace.name}",
                ip=ip,
            )
            workspace.name = name
    return workspace
