"""The signed-in user's current workspace (chosen in the switcher, else their first), and who
is asking."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import abort, g, request, session
from flask_login import current_user

from ..models import Membership, Workspace
from ..services import workspaces


def client_ip() -> str | None:
    return request.remote_addr


@dataclass(frozen=True)
class Context:
    membership: Membership
    workspace: Workspace
    memberships: list[Membership]

    @property
    def role(self) -> str:
        return self.membership.role

    @property
    def plan(self) -> str:
        return self.workspace.plan


def current_context() -> Context | None:
    """The signed-in user's workspace: the one chosen in the switcher, else their first."""
    if "fv_context" in g:
        return g.fv_context
    ctx = None
    if current_user.is_authenticated:
        memberships = workspaces.memberships_of(current_user.id)
        chosen = session.get("workspace_id")
        member = next((m for m in memberships if m.workspace_id.hex == chosen), None)
        member = member or (memberships[0] if memberships else None)
        if member is not None:
            ctx = Context(membership=member, workspace=member.workspace, memberships=memberships)
    g.fv_context = ctx
    return ctx


def require_context() -> Context:
    ctx = current_context()
    if ctx is None:
        abort(403, "You are not a member of any workspace yet. Ask an owner to add you.")
    return ctx


def choose_workspace(workspace_id: str) -> bool:
    try:
        wanted = uuid.UUID(workspace_id)
    except (ValueError, TypeError):
        return False
    if workspaces.membership(current_user.id, wanted) is None:
        return False
    session["workspace_id"] = wanted.hex
    g.pop("fv_context", None)
    return True
