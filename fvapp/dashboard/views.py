from flask import abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from ..services import initiatives
from ..services.errors import DomainError
from ..web.context import choose_workspace, require_context
from ..web.guard import check_workspace_guard
from ..web.htmx import page_or_fragment
from . import bp
from .forms import InitiativeForm, SwitchWorkspaceForm


@bp.before_request
@login_required
def _signed_in():
    if request.endpoint != "dashboard.switch_workspace":  # switching is the one cross-workspace act
        check_workspace_guard()


def _dashboard(form: InitiativeForm | None = None, status: int = 200):
    ctx = require_context()
    show_archived = request.args.get("archived") == "1"
    items = initiatives.list_initiatives(ctx.workspace.id, archived=show_archived)
    return page_or_fragment(
        "dashboard/dashboard.html",
        "dashboard/_initiatives.html",
        status,
        ctx=ctx,
        items=items,
        show_archived=show_archived,
        form=form or InitiativeForm(formdata=None),
    )


@bp.route("/")
def dashboard():
    return _dashboard()


@bp.route("/initiatives", methods=["POST"])
def create_initiative():
    ctx = require_context()
    form = InitiativeForm()
    try:
        initiatives.create_initiative(
            ctx.workspace.id, current_user.id, form.title.data, form.description.data
        )
    except DomainError as err:
        getattr(form, err.field or "title").errors = [err.message]
        return _dashboard(form, 422)
    flash("Initiative created.", "success")
    return redirect(url_for("dashboard.dashboard"), code=303)


@bp.route("/initiatives/<initiative_id>/<any(archive, unarchive):action>", methods=["POST"])
def archive_initiative(initiative_id: str, action: str):
    ctx = require_context()
    item = initiatives.update_initiative(ctx.workspace.id, initiative_id,  # or NotFound: a 404
                                         archived=(action == "archive"))
    flash(f"“{item.title}” {'archived' if action == 'archive' else 'restored'}.", "success")
    return redirect(url_for("dashboard.dashboard", archived="1" if action == "unarchive" else None),
                    code=303)


@bp.route("/workspace", methods=["POST"])
def switch_workspace():
    form = SwitchWorkspaceForm()
    if not choose_workspace(form.workspace_id.data):
        abort(404)
    return redirect(url_for("dashboard.dashboard"), code=303)
