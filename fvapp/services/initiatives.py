"""Initiatives, the one path both the dashboard and the REST API take."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Select, bindparam, func, select

from ..extensions import db
from ..models import TITLE_MAX, Initiative, utcnow
from .errors import NotFound
from .scoping import get_in_workspace, parse_id
from .text import clean_text
from .transaction import atomic, read

DESCRIPTION_MAX = 10_000  # characters, a CRLF counting as one (TITLE_MAX: the column's width)
WHAT = "Initiative"  # in NotFound's message


def clean_title(title: str | None) -> str:
    return clean_text(title, field="title", max_length=TITLE_MAX, what="Titles",
                      required="Enter a title.")


def clean_description(description: str | None) -> str | None:
    return clean_text(description, field="description", max_length=DESCRIPTION_MAX,
                      what="Descriptions", multiline=True)


# What a reader of an initiative is shown (the API's Initiative, the dashboard's list): the reads
# select exactly these columns, and a write answers with the same fields (InitiativeRow).
COLUMNS = (
    Initiative.id,
    Initiative.title,
    Initiative.description,
    Initiative.archived_at.is_not(None).label("archived"),
    Initiative.archived_at,
    Initiative.created_at,
    Initiative.updated_at,
)
NEWEST_FIRST = (Initiative.created_at.desc(), Initiative.id.desc())


class InitiativeRow(NamedTuple):
    """An initiative as the reads return it (their rows have these fields, in this order)."""

    id: uuid.UUID
    title: str
    description: str | None
    archived: bool
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


def _row(initiative: Initiative) -> InitiativeRow:
    return InitiativeRow(initiative.id, initiative.title, initiative.description,
                         initiative.archived, initiative.archived_at, initiative.created_at,
                         initiative.updated_at)


def _listing(archived: bool) -> Select:
    return (
        select(*COLUMNS)
        .where(Initiative.workspace_id == bindparam("workspace_id"))
        .where(Initiative.archived_at.is_not(None) if archived else Initiative.archived_at.is_(None))
        .order_by(*NEWEST_FIRST)
        .offset(bindparam("offset"))
    )


# The reads' statements, built once with bound parameters: a statement built per call costs
# more than SQLAlchemy's execution of it (the compiled form is cached either way).
_LIST = {archived: _listing(archived) for archived in (False, True)}
_PAGE = {archived: _listing(archived).limit(bindparam("limit")) for archived in (False, True)}
_ONE = select(*COLUMNS).where(Initiative.id == bindparam("id"),
                              Initiative.workspace_id == bindparam("workspace_id"))


def list_initiatives(
    workspace_id: uuid.UUID, *, archived: bool = False, limit: int | None = None, offset: int = 0
) -> Sequence[InitiativeRow]:
    """The workspace's active (or archived) initiatives, newest first: one SELECT."""
    params = {"workspace_id": workspace_id, "offset": offset}
    if limit is None:
        return read(_LIST[archived], params)
    return read(_PAGE[archived], {**params, "limit": limit})


@dataclass(frozen=True)
class Page:
    items: Sequence[InitiativeRow]
    has_more: bool


def page_initiatives(
    workspace_id: uuid.UUID, *, archived: bool, limit: int, offset: int = 0
) -> Page:
    """One page of list_initiatives, and whether another follows (one row more is read)."""
    rows = list_initiatives(workspace_id, archived=archived, limit=limit + 1, offset=offset)
    return Page(items=rows[:limit], has_more=len(rows) > limit)


def get_initiative(workspace_id: uuid.UUID, initiative_id: uuid.UUID | str) -> InitiativeRow:
    """One SELECT. Another workspace's id is NotFound, exactly like an id that does not exist
    or is not a UUID."""
    rows = read(_ONE, {"id": parse_id(initiative_id, WHAT), "workspace_id": workspace_id})
    if not rows:
        raise NotFound(f"{WHAT} not found")
    return rows[0]


def create_initiative(
    workspace_id: uuid.UUID, created_by_id: uuid.UUID | None, title: str, description: str | None
) -> InitiativeRow:
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
        db.session.flush()  # the INSERT (its id is made there); the commit expires the object
        written = _row(initiative)
    return written


_UNSET = object()


def update_initiative(
    workspace_id: uuid.UUID, initiative_id: uuid.UUID | str, *, title=_UNSET,
    description=_UNSET, archived=_UNSET
) -> InitiativeRow:
    """Change any of the three (NotFound as get_initiative); updated_at moves only when
    something really changed. Answers the initiative as written (no read after the commit)."""
    with atomic():
        initiative = get_in_workspace(Initiative, workspace_id, initiative_id, WHAT)
        changed = False
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
            db.session.flush()
        written = _row(initiative)
    return written


SEARCH_MAX = 100


def search_initiatives(
    workspace_id: uuid.UUID, query: str, *, limit: int = 20
) -> Sequence[InitiativeRow]:
    """Initiatives (active and archived) whose title or description contains the query, case
    insensitive, newest first. `%`, `_` and `\\` in the query are matched literally."""
    needle = query.strip().lower()
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return read(_SEARCH, {"workspace_id": workspace_id, "pattern": f"%{escaped}%",
                          "limit": limit})


_SEARCH = (
    select(*COLUMNS)
    .where(Initiative.workspace_id == bindparam("workspace_id"))
    .where(
        func.lower(Initiative.title).like(bindparam("pattern"), escape="\\")
        | func.lower(func.coalesce(Initiative.description, "")).like(bindparam("pattern"),
                                                                     escape="\\")
    )
    .order_by(*NEWEST_FIRST)
    .limit(bindparam("limit"))
)
