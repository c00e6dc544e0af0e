"""Settings: one module per section, all on this blueprint."""

from collections.abc import Callable

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_login import login_required

from ..web.context import Context, current_context, require_context
from ..web.guard import check_workspace_guard
from ..web.htmx import is_htmx
from .nav import settings_sections

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.before_request
@login_required
def _signed_in():
    check_workspace_guard()


@bp.context_processor
def _navigation():
    """The Settings navigation, for the section pages of this blueprint."""
    ctx = current_context()
    return {"settings_sections": settings_sections(ctx.role, ctx.plan) if ctx else []}


def gate(allowed: Callable[[Context], bool]) -> Context:
    """The section's context, or a 404 for anyone the section is hidden from."""
    ctx = require_context()
    if not allowed(ctx):
        abort(404)
    return ctx


# The page title of each dialog when it is shown as a page of its own (without JavaScript).
DIALOG_TITLES = {
    "settings/_key_create_dialog.html": "Create API key",
    "settings/_key_reveal_dialog.html": "Your new API key",
    "settings/_key_revoke_dialog.html": "Revoke API key",
    "settings/_key_scanner.html": "Scan for keys before you commit",
    "settings/_key_detail_dialog.html": "API key",
    "settings/_member_role_dialog.html": "Change role",
    "settings/_member_remove_dialog.html": "Remove member",
    "settings/_plan_dialog.html": "Change plan",
}


def dialog_or_page(template: str, status: int = 200, /, **context):
    """A dialog for htmx (into #dialog-host); without JavaScript the same content as a page."""
    if is_htmx():
        return render_template(template, as_page=False, **context), status
    return render_template("settings/dialog_page.html", dialog_template=template, as_page=True,
                           dialog_title=DIALOG_TITLES.get(template, "Settings"), **context), status


@bp.route("/")
def index():
    return redirect(url_for("settings.general"))


from . import activity, api_keys, general, members, subscription  # noqa: E402,F401
