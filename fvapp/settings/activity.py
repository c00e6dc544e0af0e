from flask import request

from ..services import audit, rules
from ..web.htmx import page_or_fragment
from . import bp, gate

PAGE_SIZE = 25
MAX_PAGE = 100_000  # far past any real history; keeps OFFSET within every database's range


@bp.route("/activity")
def activity():
    ctx = gate(lambda c: rules.can_see_activity(c.role))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    events, has_more = audit.events_page(ctx.workspace.id, page, PAGE_SIZE)
    return page_or_fragment(
        "settings/activity.html", "settings/_activity.html",
        ctx=ctx, events=events, page=page, has_more=has_more,
    )
