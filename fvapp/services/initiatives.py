"""Initiatives, the one path both the dashboard and the REST API take."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import BindParameter, Boolean, Select, Update, bindparam, case, func, insert, null, or_, select, update

from ..models import TITLE_MAX, Initiative, utcnow
from .errors import NotFound
from .scoping import parse_id
from .text import clean_text
from .transaction import atomic_statement, read

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
    """One INSERT … RETURNING in a unit of work: the answer is the row as written."""
    now = utcnow()
    params = {"id": uuid.uuid4(), "workspace_id": workspace_id, "created_by_id": created_by_id,
              "title": clean_title(title), "description": clean_description(description),
              "created_at": now, "updated_at": now}
    return _written(_INSERT, params)


_UNSET = object()


def update_initiative(
    workspace_id: uuid.UUID, initiative_id: uuid.UUID | str, *, title=_UNSET,
    description=_UNSET, archived=_UNSET
) -> InitiativeRow:
    """Change any of the three (NotFound as get_initiative): one UPDATE … RETURNING, which
    moves updated_at only when something really changed (archiving an archived initiative keeps
    its archived_at). Answers the initiative as written (no read after the commit); with
    nothing to change, the one SELECT of get_initiative."""
    params = {"initiative_id": parse_id(initiative_id, WHAT), "in_workspace": workspace_id}
    if title is not _UNSET:
        params["new_title"] = clean_title(title)
    if description is not _UNSET:
        params["new_description"] = clean_description(description)
    if archived is not _UNSET:
        params["archive"] = bool(archived)
    elif len(params) == 2:
        return get_initiative(workspace_id, params["initiative_id"])
    params["now"] = utcnow()
    statement = _update("new_title" in params, "new_description" in params, "archive" in params)
    return _written(statement, params)


def _written(statement, params: dict) -> InitiativeRow:
    """The one row a write's RETURNING gives, or NotFound (an UPDATE that matched no row: an
    id that does not exist or is another workspace's)."""
    rows = atomic_statement(statement, params)
    if not rows:
        raise NotFound(f"{WHAT} not found")
    id_, title, description, archived_at, created_at, updated_at = rows[0]
    return InitiativeRow(id_, title, description, archived_at is not None, archived_at,
                         created_at, updated_at)


def _param(column, name: str | None = None) -> BindParameter:
    return bindparam(name or column.key, type_=column.type)


# The writes' statements, INSERT and UPDATE of the mapped class: each its own unit of work
# (transaction.atomic_statement: one round trip in autocommit on PostgreSQL), no flush and no
# object loaded; RETURNING gives the table's columns of InitiativeRow, `archived` is derived in
# Python
# (SQLite 3.40 answers `archived_at IS NOT NULL` wrongly in an INSERT's or UPDATE's RETURNING:
# always 1). Built once with bound parameters, as the reads are; an UPDATE's parameters are
# not named as columns (SQLAlchemy reserves those names for the SET clause). The session
# holds no Initiative objects to synchronise.
_RETURNED = (Initiative.id, Initiative.title, Initiative.description, Initiative.archived_at,
             Initiative.created_at, Initiative.updated_at)
_INSERT = (
    insert(Initiative)
    .values({column: _param(column) for column in (
        Initiative.id, Initiative.workspace_id, Initiative.created_by_id, Initiative.title,
        Initiative.description, Initiative.created_at, Initiative.updated_at)})
    .returning(*_RETURNED)
)


@functools.cache
def _update(title: bool, description: bool, archived: bool) -> Update:
    """The UPDATE … RETURNING of one combination of the fields given: updated_at becomes :now
    only if a value given differs from the stored one. :archive true keeps an archived_at
    already set, false clears it."""
    values, changes = {}, []
    for given, column in ((title, Initiative.title), (description, Initiative.description)):
        if given:
            values[column] = _param(column, f"new_{column.key}")
            changes.append(column.is_distinct_from(values[column]))
    now = bindparam("now", type_=Initiative.updated_at.type)
    if archived:
        archive = bindparam("archive", type_=Boolean())
        values[Initiative.archived_at] = case(
            (archive, func.coalesce(Initiative.archived_at, now)), else_=null())
        changes.append(Initiative.archived_at.is_(None) == archive)
    values[Initiative.updated_at] = case((or_(*changes), now), else_=Initiative.updated_at)
    return (
        update(Initiative)
        .where(Initiative.id == bindparam("initiative_id"),
               Initiative.workspace_id == bindparam("in_workspace"))
        .values(values)
        .returning(*_RETURNED)
    )


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
