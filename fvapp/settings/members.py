"""Settings → Members: everyone sees the list; owners and admins add, change roles, remove."""

from flask import abort, flash, make_response, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, RadioField, SelectField

from ..services import keys as keys_service
from ..services import members as members_service
from ..services import rules
from ..services.accounts import EMAIL_MAX
from ..services.errors import DomainError
from ..web.context import client_ip
from ..web.htmx import hx, hx_redirect, is_htmx, page_or_fragment
from . import bp, dialog_or_page, gate

ROLE_HELP = {
    "owner": "Everything, including the plan and other owners.",
    "admin": "Manages members and API keys; cannot change owners or the plan.",
    "member": "Uses the app; does not see API keys.",
}


def _role_choices(actor_role: str):
    return [(r, r.capitalize()) for r in members_service.assignable_roles(actor_role)]


class AddMemberForm(FlaskForm):
    email = EmailField("Add a member by email",
                       render_kw={"placeholder": "name@company.com", "maxlength": EMAIL_MAX})
    role = SelectField("Role", validate_choice=False)


class RoleForm(FlaskForm):
    role = RadioField("Role", validate_choice=False)


def _manager(ctx) -> bool:
    return rules.can_manage_members(ctx.role)


def _add_form(ctx, formdata=None) -> AddMemberForm:
    form = AddMemberForm() if formdata else AddMemberForm(formdata=None, role="member")
    form.role.choices = _role_choices(ctx.role)
    return form


def _section(ctx, add_form=None, status=200, notice=None):
    rows = members_service.list_members(ctx.workspace.id)
    actions = {m.id: members_service.actions_for(ctx.membership, m) for m in rows}
    return page_or_fragment(
        "settings/members.html", "settings/_members.html", status,
        rows=rows,
        actions=actions,
        has_actions=any(a.change_role or a.remove for a in actions.values()),
        can_manage=_manager(ctx),
        add_form=add_form or _add_form(ctx),
        notice=notice,
    )


def _done(ctx, message, target="#members"):
    """After a change: close any dialog and refresh the members section in place."""
    if is_htmx():
        body, status = _section(ctx, notice=message)
        return hx(make_response(body, status), trigger={"closeDialog": True},
                  retarget=target, reswap="outerHTML")
    flash(message, "success")
    return redirect(url_for("settings.members"), code=303)


@bp.route("/members")
def members():
    return _section(gate(lambda c: True))


@bp.route("/members", methods=["POST"])
def add_member():
    ctx = gate(_manager)
    form = _add_form(ctx, formdata=True)
    try:
        member = members_service.add_member(
            ctx.workspace.id, current_user.id, form.email.data, form.role.data, ip=client_ip()
        )
    except DomainError as err:
        getattr(form, err.field or "email").errors = [err.message]
        return _section(ctx, form, 422)
    return _done(ctx, f"{member.user.name} was added as {member.role}.")


# -- change role --------------------------------------------------------------------------


def _role_dialog(ctx, target, form, status=200):
    form.role.choices = _role_choices(ctx.role)
    blocked = members_service.touches_owner_without_being_one(ctx.membership, target)
    return dialog_or_page("settings/_member_role_dialog.html", status, target=target, form=form,
                   role_help=ROLE_HELP,
                   refusal="Only an owner can change an owner's role." if blocked else None)


@bp.route("/members/<membership_id>/role", methods=["GET"])
def role_dialog(membership_id):
    ctx = gate(_manager)
    target = members_service.get_member(ctx.workspace.id, membership_id)
    return _role_dialog(ctx, target, RoleForm(formdata=None, role=target.role))


@bp.route("/members/<membership_id>/role", methods=["POST"])
def change_role(membership_id):
    ctx = gate(_manager)
    target = members_service.get_member(ctx.workspace.id, membership_id)
    form = RoleForm()
    try:
        members_service.change_role(
            ctx.workspace.id, current_user.id, target.id, form.role.data, ip=client_ip()
        )
    except DomainError as err:
        form.role.errors = [err.message]
        return _role_dialog(ctx, target, form, 422)
    return _done(ctx, f"{target.user.name} is now {target.role}.")


# -- remove -------------------------------------------------------------------------------


def _remove_dialog(ctx, target, error=None, status=200):
    refusal = members_service.refusal_to_remove(
        ctx.membership, target, members_service.owner_count(ctx.workspace.id)
    )
    return dialog_or_page(
        "settings/_member_remove_dialog.html", status,
        target=target, error=error, refusal=refusal,
        keys=keys_service.active_keys_of_creator(ctx.workspace.id, target.user_id),
        is_self=target.user_id == current_user.id,
    )


def _removable_or_404(ctx, membership_id):
    """Managers reach anyone's removal (the dialog says if it is refused); others only their
    own (leaving the workspace)."""
    target = members_service.get_member(ctx.workspace.id, membership_id)
    if not members_service.actions_for(ctx.membership, target).remove and not _manager(ctx):
        abort(404)
    return target


@bp.route("/members/<membership_id>/remove", methods=["GET"])
def remove_dialog(membership_id):
    ctx = gate(lambda c: True)
    return _remove_dialog(ctx, _removable_or_404(ctx, membership_id))


@bp.route("/members/<membership_id>/remove", methods=["POST"])
def remove_member(membership_id):
    ctx = gate(lambda c: True)
    target = _removable_or_404(ctx, membership_id)
    try:
        removal = members_service.remove_member(
            ctx.workspace.id, current_user.id, target.id, ip=client_ip()
        )
    except DomainError as err:
        return _remove_dialog(ctx, target, error=err.message, status=422)
    n = len(removal.revoked)
    message = f"{removal.user.name} was removed" + (
        f"; {n} API key{'s' if n != 1 else ''} revoked." if n else "."
    )
    if removal.user.id == current_user.id:  # they left the workspace: go somewhere still theirs
        flash(message, "success")
        if is_htmx():
            return hx_redirect(url_for("dashboard.dashboard"), 200)
        return redirect(url_for("dashboard.dashboard"), code=303)
    return _done(ctx, message)
