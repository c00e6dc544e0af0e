from ..services import workspaces
from ..web import page_or_fragment
from . import bp, gate


@bp.route("/members")
def members():
    ctx = gate(lambda c: True)
    rows = sorted(
        ctx.workspace.memberships,
        key=lambda m: (("owner", "admin", "member").index(m.role), m.user.name.lower()),
    )
    return page_or_fragment(
        "settings/members.html", "settings/_members.html",
        ctx=ctx, rows=rows, can_manage=workspaces.can_manage_members(ctx.role),
    )
