"""Who may do what: the role and plan gates every other part asks (nav, views, API, tests)."""

from __future__ import annotations

from ..models import API_PLANS, MANAGER_ROLES


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
