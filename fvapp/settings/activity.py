from flask import request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import AuditEvent
from ..services import workspaces
from ..web import page_or_fragment
from . import bp, gate

PAGE_SIZE = 25
MAX_PAGE = 100_000  # far past any real history; keeps OFFSET within every database's range


@bp.route("/activity")
def activity():
    ctx = gate(lambda c: workspaces.can_see_activity(c.role))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.workspace_id == ctx.workspace.id)
        .options(selectinload(AuditEvent.actor))
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    )
    events = list(db.session.scalars(stmt))
    return page_or_fragment(
        "settings/activity.html", "settings/_activity.html",
        ctx=ctx, events=events[:PAGE_SIZE], page=page, has_more=len(events) > PAGE_SIZE,
    )
