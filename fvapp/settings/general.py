from flask import flash, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField

from ..services import rules, workspaces
from ..services.errors import DomainError
from ..web.context import client_ip
from ..web.htmx import page_or_fragment
from . import bp, gate


class RenameForm(FlaskForm):
    name = StringField("Workspace name", render_kw={"maxlength": workspaces.WORKSPACE_NAME_MAX})


def _render(ctx, form, status=200):
    return page_or_fragment(
        "settings/general.html", "settings/_general.html", status,
        ctx=ctx, form=form, can_rename=rules.can_rename_workspace(ctx.role),
    )


@bp.route("/general", methods=["GET"])
def general():
    ctx = gate(lambda c: True)
    return _render(ctx, RenameForm(formdata=None, name=ctx.workspace.name))


@bp.route("/general", methods=["POST"])
def rename_workspace():
    ctx = gate(lambda c: rules.can_rename_workspace(c.role))
    form = RenameForm()
    try:
        workspaces.rename(ctx.workspace, current_user, ctx.role, form.name.data, ip=client_ip())
    except DomainError as err:
        form.name.errors = [err.message]
        return _render(ctx, form, 422)
    flash("Workspace renamed.", "success")
    return redirect(url_for("settings.general"), code=303)
