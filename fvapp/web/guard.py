"""The workspace guard: a form (or htmx request) made for another workspace than the session's
current one — switched in another tab since the page loaded — changes nothing."""

from __future__ import annotations

from flask import abort, request
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from .context import current_context

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
