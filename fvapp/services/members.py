"""Members of a workspace: add, change role, remove (SPEC §2). Every change locks the workspace
row first, so the "at least one owner" rule holds under concurrent requests too."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import ROLES, ApiKey, Membership, User
from . import accounts, audit, keys, rules, workspaces
from .errors import DomainError, Forbidden
from .scoping import get_in_workspace
from .transaction import atomic

ROLE_ORDER = {role: i for i, role in enumerate(ROLES)}


def list_members(workspace_id: uuid.UUID) -> list[Membership]:
    """Owners, then admins, then members; by name within a role."""
    stmt = (
        select(Membership)
        .join(Membership.user)
        .where(Membership.workspace_id == workspace_id)
        .options(selectinload(Membership.user))
        .order_by(User.name, User.email)
    )
    return sorted(db.session.scalars(stmt), key=lambda m: ROLE_ORDER[m.role])


def get_member(workspace_id: uuid.UUID, membership_id: uuid.UUID | str) -> Membership:
    return get_in_workspace(Membership, workspace_id, membership_id, "Member")


def owner_count(workspace_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(
        Membership.workspace_id == workspace_id, Membership.role == "owner"
    )
    return db.session.scalar(stmt) or 0


# -- the rules ----------------------------------------------------------------------------


def assignable_roles(actor_role: str | None) -> list[str]:
    """The roles an actor may hand out: only an owner makes owners."""
    if not rules.can_manage_members(actor_role):
        return []
    return [r for r in ROLES if r != "owner" or actor_role == "owner"]


def touches_owner_without_being_one(actor: Membership, target: Membership) -> bool:
    return target.role == "owner" and actor.role != "owner"


@dataclass(frozen=True)
class MemberActions:
    """What the members table offers `actor` on `target`'s row. The dialogs behind these say
    why a change is refused (the last owner, say); the services enforce it."""

    change_role: bool
    remove: bool


def actions_for(actor: Membership, target: Membership) -> MemberActions:
    manages = rules.can_manage_members(actor.role)
    reachable = manages and not touches_owner_without_being_one(actor, target)
    return MemberActions(change_role=reachable, remove=reachable or target.id == actor.id)


def refusal_to_change_role(actor: Membership, target: Membership, new_role: str | None,
                           owners: int) -> str | None:
    """Why `actor` may not give `target` this role (None when allowed)."""
    if not rules.can_manage_members(actor.role):
        return "Only owners and admins can change roles."
    if new_role not in ROLES:
        return "Choose a role: owner, admin or member."
    if touches_owner_without_being_one(actor, target):
        return "Only an owner can change an owner's role."
    if new_role not in assignable_roles(actor.role):
        return "Only an owner can make someone an owner."
    if target.role == "owner" and new_role != "owner" and owners <= 1:
        return (f"{target.user.name} is the only owner. Make someone else an owner first: "
                "every workspace keeps at least one.")
    return None


def refusal_to_remove(actor: Membership, target: Membership, owners: int) -> str | None:
    """Why `actor` may not remove `target` (None when allowed). Anyone may leave, as long as
    an owner remains."""
    leaving = target.id == actor.id
    if not leaving and not rules.can_manage_members(actor.role):
        return "Only owners and admins can remove members."
    if not leaving and touches_owner_without_being_one(actor, target):
        return "Only an owner can remove an owner."
    if target.role == "owner" and owners <= 1:
        who = "You are" if target.id == actor.id else f"{target.user.name} is"
        return (f"{who} the only owner. Make someone else an owner first: "
                "every workspace keeps at least one.")
    return None


# -- changes ------------------------------------------------------------------------------


def _actor(workspace_id: uuid.UUID, actor_id: uuid.UUID) -> Membership:
    actor = workspaces.membership(actor_id, workspace_id)
    if actor is None or not rules.can_manage_members(actor.role):
        raise Forbidden("Only owners and admins can manage members.")
    return actor


def add_member(workspace_id: uuid.UUID, actor_id: uuid.UUID, email: str, role: str,
               ip: str | None = None) -> Membership:
    with atomic():
        workspaces.lock_workspace(workspace_id)
        actor = _actor(workspace_id, actor_id)
        if role not in ROLES:
            raise DomainError("Choose a role: owner, admin or member.", field="role")
        if role not in assignable_roles(actor.role):
            raise DomainError("Only an owner can make someone an owner.", field="role")
        email = accounts.normalize_email(email)
        if not email:
            raise DomainError("Enter the email of the person to add.", field="email")
        user = accounts.find_user(email)
        if user is None:
            raise DomainError(
                f"No ForceVue account uses {email}. They need an account before they can be added.",
                field="email",
            )
        if workspaces.membership(user.id, workspace_id) is not None:
            raise DomainError(f"{user.name} is already a member of this workspace.", field="email")
        member = Membership(user_id=user.id, workspace_id=workspace_id, role=role)
        db.session.add(member)
        db.session.flush()
        audit.record(workspace_id=workspace_id, actor_id=actor_id, action="member.added",
                     target_type="member", target_id=user.id, target_label=user.email,
                     detail=f"as {role}", ip=ip)
        return member


def change_role(workspace_id: uuid.UUID, actor_id: uuid.UUID, membership_id, role: str,
                ip: str | None = None) -> Membership:
    with atomic():
        workspaces.lock_workspace(workspace_id)
        actor = _actor(workspace_id, actor_id)
        target = get_member(workspace_id, membership_id)
        refusal = refusal_to_change_role(actor, target, role, owner_count(workspace_id))
        if refusal:
            raise DomainError(refusal, field="role")
        if target.role != role:
            audit.record(workspace_id=workspace_id, actor_id=actor_id, action="member.role_changed",
                         target_type="member", target_id=target.user_id,
                         target_label=target.user.email, detail=f"{target.role} → {role}", ip=ip)
            target.role = role
        return target


@dataclass(frozen=True)
class Removal:
    user: User
    revoked: list[ApiKey]


def remove_member(workspace_id: uuid.UUID, actor_id: uuid.UUID, membership_id,
                  ip: str | None = None) -> Removal:
    """Removes the membership and revokes the member's keys in this workspace, together."""
    with atomic():
        workspaces.lock_workspace(workspace_id)
        target = get_member(workspace_id, membership_id)
        actor = target if target.user_id == actor_id else _actor(workspace_id, actor_id)
        refusal = refusal_to_remove(actor, target, owner_count(workspace_id))
        if refusal:
            raise DomainError(refusal)
        user = target.user
        revoked = keys.revoke_keys_of_creator(
            workspace_id, user.id, actor_id, reason=keys.REASON_CREATOR_REMOVED, ip=ip
        )
        audit.record(workspace_id=workspace_id, actor_id=actor_id, action="member.removed",
                     target_type="member", target_id=user.id, target_label=user.email,
                     detail=(f"{len(revoked)} API key{'s' if len(revoked) != 1 else ''} revoked"
                             if revoked else ""), ip=ip)
        db.session.delete(target)
        return Removal(user=user, revoked=revoked)
