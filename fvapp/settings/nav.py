"""The Settings navigation: its sections, who sees each, and every endpoint that is part of one
(so the nav marks the section current on its dialogs and form answers too)."""

from __future__ import annotations

from dataclasses import dataclass

from ..services import rules


@dataclass(frozen=True)
class Section:
    endpoint: str  # where the nav entry links
    label: str
    endpoints: frozenset[str]  # every page of the section, the entry's own included

    def is_current(self, endpoint: str | None) -> bool:
        return endpoint in self.endpoints


def _section(label: str, *endpoints: str) -> Section:
    names = frozenset(f"settings.{e}" for e in endpoints)
    return Section(f"settings.{endpoints[0]}", label, names)


GENERAL = _section("General", "general", "rename_workspace")
MEMBERS = _section("Members", "members", "add_member", "role_dialog", "change_role",
                   "remove_dialog", "remove_member")
SUBSCRIPTION = _section("Subscription", "subscription", "plan_dialog", "change_plan")
API_KEYS = _section("API Keys", "api_keys", "api_keys_new", "api_keys_create",
                    "api_keys_revoke_confirm", "api_keys_revoke", "api_keys_scanner",
                    "api_keys_alert_dismiss", "api_keys_detail")
ACTIVITY = _section("Activity", "activity")
ALL_SECTIONS = (GENERAL, MEMBERS, SUBSCRIPTION, API_KEYS, ACTIVITY)


def settings_sections(role: str | None, plan: str) -> list[Section]:
    """The Settings navigation, computed from role and plan only."""
    sections = [GENERAL, MEMBERS, SUBSCRIPTION]
    if rules.can_manage_keys(role, plan):
        sections.append(API_KEYS)
    if rules.can_see_activity(role):
        sections.append(ACTIVITY)
    return sections
