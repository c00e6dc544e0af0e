"""Settings: one module per section, all on this blueprint."""

from collections.abc import Callable

from flask import Blueprint, abort, redirect, url_for
from flask_login import login_required

from ..web import Context, require_context

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.before_request
@login_required
def _signed_in():
    pass


def gate(allowed: Callable[[Context], bool]) -> Context:
    """The section's context, or a 404 for anyone the section is hidden from."""
    ctx = require_context()
    if not allowed(ctx):
        abort(404)
    return ctx


@bp.route("/")
def index():
    return redirect(url_for("settings.general"))


from . import activity, api_keys, general, members, subscription  # noqa: E402,F401
