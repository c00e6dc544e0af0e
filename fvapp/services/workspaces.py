"""Workspaces, memberships, plans: the gates every other part asks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from ..db_setup import immediate_begin
from ..extensions import db
from ..models import API_PLANS, MANAGER_ROLES, MAX_ACTIVE_KEYS, PLANS, Membership, User, Workspace
from . import audit
from .errors import DomainError, NotFound
from .text import clean_text
from .transaction import atomic

WORKSPACE_NAME_MAX = 100


# -- the rules, each in one place ---------------------------------------------------------


def plan_has_api_access(plan: str) -> bool:
    """Paid plans and internal workspaces may use API keys."""
    return plan in API_PLANS


def can_manage_keys(role: str | None, plan: str) -> bool:
    """Owners and admins of a workspace with API access: the one answer for nav, views, tests."""
    return role in MANAGER_ROLES and plan_has_api_access(plan)


def can_manage_members(role: str | None) -> bool:
    return role in MANAGER_ROLES


def can_rename_workspace(role: str | None) -> bool:
    return role in MANAGER_ROLES


def can_change_plan(role: str | None) -> bool:
    return role == "owner"


def can_see_activity(role: str | None) -> bool:
    return role in MANAGER_ROLES


@dataclass(frozen=True)
class Section:
    endpoint: str
    label: str


def settings_sections(role: str | None, plan: str) -> list[Section]:
    """The Settings navigation, computed from role and plan only."""
    sections = [
        Section("settings.general", "General"),
        Section("settings.members", "Members"),
        Section("settings.subscription", "Subscription"),
    ]
    if can_manage_keys(role, plan):
        sections.append(Section("settings.api_keys", "API Keys"))
    if can_see_activity(role):
        sections.append(Section("settings.activity", "Activity"))
    return sections


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

    PostgreSQL: SELECT … FOR UPDATE on the workspace row. SQLite: end the read transaction and
    open the next one with BEGIN IMMEDIATE, the only lock SQLite offers. Either way the caller
    holds the lock until it commits or rolls back.
    """
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.commit()
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
    db.session.commit()
    return workspace


@atomic()
def set_plan(workspace_id: uuid.UUID, plan: str, actor_id: uuid.UUID | None, ip=None) -> Workspace:
    """Record a plan change (no payment is taken). Operators and owners come through here."""
    if plan not in PLANS:
        raise DomainError(f"Unknown plan {plan!r}; choose one of {', '.join(PLANS)}", field="plan")
    ws = lock_workspace(workspace_id)
    if ws.plan != plan:
        audit.record(
            workspace_id=ws.id,
            actor_id=actor_id,
            action="plan.changed",
            target_type="workspace",
            target_id=ws.id,
            target_label=ws.name,
            detail=f"{ws.plan} → {plan}",
            ip=ip,
        )
        ws.plan = plan
    return ws


@dataclass(frozen=True)
class PlanInfo:
    key: str
    label: str
    price: str
    summary: str
    features: tuple[str, ...]


PLAN_CATALOG = (
    PlanInfo("free", "Free", "$0", "For trying ForceVue with a small team.",
             ("Unlimited initiatives", "Up to 5 members", "No API access")),
    PlanInfo("pro", "Pro", "$12 / member / month", "For teams that automate.",
             ("Everything in Free", "REST API and API keys", f"Up to {MAX_ACTIVE_KEYS} active keys")),
    PlanInfo("team", "Team", "$24 / member / month", "For larger organisations.",
             ("Everything in Pro", "Activity log retention", "Priority support")),
    PlanInfo("consultant", "Consultant", "$49 / month", "For consultants serving clients.",
             ("Everything in Pro", "Client workspaces", "REST API and API keys")),
    PlanInfo("internal", "Internal", "—", "Set by ForceVue operators.",
             ("Everything in Team", "REST API and API keys")),
)


def plan_info(plan: str) -> PlanInfo:
    return next(p for p in PLAN_CATALOG if p.key == plan)


def offered_plans(current: str) -> list[PlanInfo]:
    """Plans people can choose; Internal is shown only where an operator has set it."""
    return [p for p in PLAN_CATALOG if p.key != "internal" or current == "internal"]


SELF_SERVE_PLANS = ("free", "pro", "team", "consultant")


def change_plan(workspace_id: uuid.UUID, actor_id: uuid.UUID, plan: str, ip=None) -> Workspace:
    """An owner changes the plan in Settings → Subscription (Internal is for operators)."""
    if plan not in SELF_SERVE_PLANS:
        raise DomainError("Choose Free, Pro, Team or Consultant.", field="plan")
    member = membership(actor_id, workspace_id)
    if member is None or not can_change_plan(member.role):
        raise DomainError("Only the workspace owner can change the plan.", field="plan")
    return set_plan(workspace_id, plan, actor_id, ip=ip)


@dataclass(frozen=True)
class PlanChange:
    """What a plan change does to API keys, said before it happens."""

    current: PlanInfo
    target: PlanInfo
    active_keys: int

    @property
    def loses_api(self) -> bool:
        return plan_has_api_access(self.current.key) and not plan_has_api_access(self.target.key)

    @property
    def regains_api(self) -> bool:
        return not plan_has_api_access(self.current.key) and plan_has_api_access(self.target.key)


def last_plan_change(workspace_id: uuid.UUID):
    from ..models import AuditEvent

    stmt = (
        select(AuditEvent)
        .where(AuditEvent.workspace_id == workspace_id, AuditEvent.action == "plan.changed")
        .order_by(AuditEvent.created_at.desc())
        .limit(1)
    )
    return db.session.scalar(stmt)
