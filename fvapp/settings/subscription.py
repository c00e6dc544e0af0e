from ..services import workspaces
from ..web import page_or_fragment
from . import bp, gate


@bp.route("/subscription")
def subscription():
    ctx = gate(lambda c: True)
    return page_or_fragment(
        "settings/subscription.html", "settings/_subscription.html",
        ctx=ctx,
        plans=workspaces.offered_plans(ctx.plan),
        current=workspaces.plan_info(ctx.plan),
        can_change=workspaces.can_change_plan(ctx.role),
    )
