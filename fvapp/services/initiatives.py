"""Initiatives, the one path both the dashboard and the REST API take."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from ..extensions import db
from ..models import TITLE_MAX, Initiative, utcnow
from .scoping import get_in_workspace
from .text import clean_text
from .transaction import atomic

DESCRIPTION_MAX = 10_000  # characters, a CRLF counting as one (TITLE_MAX: the column's width)


def clean_title(title: str | None) -> str:
    return clean_text(title, field="title", max_length=TITLE_MAX, what="Titles",
                      required="Enter a title.")


def clean_description(description: str | None) -> str | None:
    return clean_text(description, field="description", max_length=DESCRIPTION_MAX,
                      what="Descriptions", multiline=True)


def list_initiatives(
    workspace_id: uuid.UUID, *, archived: bool = False, limit: int | None = None, offset: int = 0
) -> list[Initiative]:
    stmt = (
        select(Initiative)
        .where(Initiative.workspace_id == workspace_id)
        .where(Initiative.archived_at.is_not(None) if archived else Initiative.archived_at.is_(None))
        .order_by(Initiative.created_at.desc(), Initiative.id.desc())
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt))


@dataclass(frozen=True)
class Page:
    items: list[Initiative]
    has_more: bool


def page_initiatives(
    workspace_id: uuid.UUID, *, archived: bool, limit: int, offset: int = 0
) -> Page:
    """One page of list_initiatives, and whether another follows (one row more is read)."""
    rows = list_initiatives(workspace_id, archived=archived, limit=limit + 1, offset=offset)
    return Page(items=rows[:limit], has_more=len(rows) > limit)


def get_initiative(workspace_id: uuid.UUID, initiative_id: uuid.UUID | str) -> Initiative:
    """Another workspace's id is NotFound, exactly like an id that does not exist."""
    return get_in_workspace(Initiative, workspace_id, initiative_id, "Initiative")


def create_initiative(
    workspace_id: uuid.UUID, created_by_id: uuid.UUID | None, title: str, description: str | None
) -> Initiative:
    now = utcnow()
    initiative = Initiative(
        workspace_id=workspace_id,
        created_by_id=created_by_id,
        title=clean_title(title),
        description=clean_description(description),
        created_at=now,
        updated_at=now,
    )
    with atomic():
        db.session.add(initiative)
    return initiative


_UNSET = object()


def update_initiative(
    initiative: Initiative, *, title=_UNSET, description=_UNSET, archived=_UNSET
) -> Initiative:
    with atomic():
        changed = False  # updated_at moves only when something really changed
        if title is not _UNSET and (title := clean_title(title)) != initiative.title:
            initiative.title = title
            changed = True
        if description is not _UNSET and (
            (description := clean_description(description)) != initiative.description
        ):
            initiative.description = description
            changed = True
        if archived is not _UNSET and bool(archived) != initiative.archived:
            initiative.archived_at = utcnow() if archived else None
            changed = True
        if changed:
            initiative.updated_at = utcnow()
    return initiative


SEARCH_MAX = 100


def search_initiatives(workspace_id: uuid.UUID, query: str, *, limit: int = 20) -> list[Initiative]:
    """Initiatives (active and archived) whose title or description contains the query, case
    insensitive, newest first. `%`, `_` and `\\` in the query are matched literally."""
    needle = query.strip().lower()
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    stmt = (
        select(Initiative)
        .where(Initiative.workspace_id == workspace_id)
        .where(
            func.lower(Initiative.title).like(pattern, escape="\\")
            | func.lower(func.coalesce(Initiative.description, "")).like(pattern, escape="\\")
        )
        .order_by(Initiative.created_at.desc(), Initiative.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))
