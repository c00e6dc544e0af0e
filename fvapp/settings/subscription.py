"""Settings → Subscription: the owner changes the plan; everyone else reads it."""

from flask import abort, flash, make_response, redirect, request, url_for
from flask_login import current_user

from ..services import audit, keys, plans, rules
from ..services.errors import DomainError
from ..web.context import client_ip
from ..web.htmx import hx, hx_redirect, is_htmx, page_or_fragment
from . import bp, dialog_or_page, gate


def _owner(ctx) -> bool:
    return rules.can_change_plan(ctx.role)


def _section(ctx, status=200, error=None):
    return page_or_fragment(
        "settings/subscription.html", "settings/_subscription.html", status,
        plans=plans.offered_plans(ctx.plan),
        current=plans.plan_info(ctx.plan),
        can_change=_owner(ctx),
        self_serve=plans.SELF_SERVE_PLANS,
        has_api=rules.plan_has_api_access(ctx.plan),
        last_change=audit.last_plan_change(ctx.workspace.id),
        error=error,
    )


@bp.route("/subscription")
def subscription():
    return _section(gate(lambda c: True))


def _plan_change(ctx, plan: str) -> plans.PlanChange:
    if plan not in plans.SELF_SERVE_PLANS:
        abort(404)
    return plans.PlanChange(
        current=plans.plan_info(ctx.plan),
        target=plans.plan_info(plan),
        active_keys=keys.count_active(ctx.workspace.id),
    )


@bp.route("/subscription/change")
def plan_dialog():
    ctx = gate(_owner)
    change = _plan_change(ctx, request.args.get("plan", ""))
    return dialog_or_page("settings/_plan_dialog.html", change=change)


@bp.route("/subscription", methods=["POST"])
def change_plan():
    ctx = gate(_owner)
    plan = request.form.get("plan", "")
    try:
        ws = plans.change_plan(ctx.workspace.id, current_user.id, plan, ip=client_ip())
    except DomainError as err:
        body, status = _section(ctx, 422, error=err.message)
        if is_htmx():  # the form lives in the dialog: close it, show the error on the section
            return hx(make_response(body, status), trigger="closeDialog",
                      retarget="#subscription", reswap="outerHTML")
        return body, status
    flash(f"{ws.name} is now on the {plans.plan_info(ws.plan).label} plan.", "success")
    # The plan changes the Settings navigation (API Keys): load the whole page again.
    if is_htmx():
        return hx_redirect(url_for("settings.subscription"))
    return redirect(url_for("settings.subscription"), code=303)
