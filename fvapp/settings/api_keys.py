"""Settings → API Keys (built by the API Keys issue)."""

from ..services import workspaces
from ..web import page_or_fragment
from . import bp, gate


def _allowed(ctx) -> bool:
    return workspaces.can_manage_keys(ctx.role, ctx.plan)


@bp.route("/api-keys")
def api_keys():
    ctx = gate(_allowed)
    return page_or_fragment("settings/api_keys.html", "settings/_api_keys.html", ctx=ctx)
