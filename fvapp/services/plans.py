"""Plans: the catalogue (prices and copy), what a change does to API keys, and the change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..models import MAX_ACTIVE_KEYS, PLANS, Workspace
from . import audit
from .errors import DomainError
from .rules import can_change_plan, plan_has_api_access
from .transaction import atomic
from .workspaces import lock_workspace, membership


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

SELF_SERVE_PLANS = ("free", "pro", "team", "consultant")


def plan_info(plan: str) -> PlanInfo:
    return next(p for p in PLAN_CATALOG if p.key == plan)


def offered_plans(current: str) -> list[PlanInfo]:
    """Plans people can choose; Internal is shown only where an operator has set it."""
    return [p for p in PLAN_CATALOG if p.key != "internal" or current == "internal"]


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


def set_plan(workspace_id: uuid.UUID, plan: str, actor_id: uuid.UUID | None, ip=None) -> Workspace:
    """Record a plan change (no payment is taken). Operators and owners come through here."""
    if plan not in PLANS:
        raise DomainError(f"Unknown plan {plan!r}; choose one of {', '.join(PLANS)}", field="plan")
    with atomic():
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


def change_plan(workspace_id: uuid.UUID, actor_id: uuid.UUID, plan: str, ip=None) -> Workspace:
    """An owner changes the plan in Settings → Subscription (Internal is for operators)."""
    if plan not in SELF_SERVE_PLANS:
        raise DomainError("Choose Free, Pro, Team or Consultant.", field="plan")
    member = membership(actor_id, workspace_id)
    if member is None or not can_change_plan(member.role):
        raise DomainError("Only the workspace owner can change the plan.", field="plan")
    return set_plan(workspace_id, plan, actor_id, ip=ip)
