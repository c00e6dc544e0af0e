"""Helpers shared by the browser blueprints: HTMX page-or-fragment, server-driven UI events,
and the signed-in user's current workspace."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import abort, g, render_template, request, session
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from .models import Membership, Workspace
from .services import workspaces


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def page_or_fragment(page: str, fragment: str, status: int = 200, /, **context):
    """The same URL answers a whole page, or only its fragment when HTMX asks (Vary set)."""
    template = fragment if is_htmx() else page
    return render_template(template, **context), status


def hx(response, *, trigger: dict | str | None = None, retarget=None, reswap=None):
    """Let the server drive the UI: one place that writes HX-* response headers."""
    if trigger:
        response.headers["HX-Trigger"] = (
            json.dumps(trigger) if isinstance(trigger, dict) else trigger
        )
    if retarget:
        response.headers["HX-Retarget"] = retarget
    if reswap:
        response.headers["HX-Reswap"] = reswap
    return response


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


WORKSPACE_FIELD = "workspace_guard"
WORKSPACE_HEADER = "X-Workspace"


def form_guard() -> Markup:
    """Hidden fields every state-changing form carries: the CSRF token, and the workspace the
    page was rendered for (so a tab left open on another workspace cannot act on this one)."""
    ctx = current_context()
    hidden = Markup('<input type="hidden" name="{}" value="{}">')
    fields = hidden.format("csrf_token", generate_csrf())
    if ctx is not None:
        fields += hidden.format(WORKSPACE_FIELD, str(ctx.workspace.id))
    return fields


def check_workspace_guard() -> None:
    """409 when a form (or an htmx request, by header) was made for another workspace than the
    session's current one: the user switched workspace in another tab since loading the page."""
    if request.method != "POST":
        return
    sent = request.headers.get(WORKSPACE_HEADER) or request.form.get(WORKSPACE_FIELD)
    if not sent:
        return
    ctx = current_context()
    if ctx is None or sent != str(ctx.workspace.id):
        current = f" to {ctx.workspace.name}" if ctx else ""
        abort(409, f"You switched workspace{current} in another tab or window since this page "
                   "was loaded, so nothing was changed. Reload the page and try again.")


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


# -- template helpers ---------------------------------------------------------------------

EVENT_TEXT = {
    "api_key.created": "created API key {label}",
    "api_key.revoked": "revoked API key {label}",
    "api_key.leak_revoked": "revoked API key {label}, reported public",
    "leak_alert.dismissed": "dismissed the leak alert about API key {label}",
    "member.added": "added {label}",
    "member.role_changed": "changed the role of {label}",
    "member.removed": "removed {label}",
    "plan.changed": "changed the plan",
    "workspace.renamed": "renamed the workspace to {label}",
}


def describe_event(event) -> str:
    text = EVENT_TEXT.get(event.action, event.action).format(label=event.target_label)
    return f"{text[0].upper()}{text[1:]}" + (f" ({event.detail})" if event.detail else "")


def ago(dt: datetime | None, now: datetime | None = None) -> str:
    if dt is None:
        return "Never"
    seconds = int(((now or datetime.now(UTC)) - dt).total_seconds())
    if seconds < 45:
        return "just now"
    for unit, size in (("year", 31_536_000), ("month", 2_592_000), ("day", 86_400),
                       ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            n = round(seconds / size) if unit == "minute" else seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def register(app) -> None:
    from .api.envelope import iso

    app.add_template_filter(iso, "iso")
    app.add_template_filter(ago, "ago")
    app.add_template_filter(describe_event, "describe_event")
    app.add_template_global(form_guard, "form_guard")
    app.add_template_filter(
        lambda dt: dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if dt else "", "utc"
    )

    @app.context_processor
    def _context():
        ctx = current_context() if request.endpoint and request.endpoint != "static" else None
        sections = workspaces.settings_sections(ctx.role, ctx.plan) if ctx else []
        return {"ctx": ctx, "settings_sections": sections}
