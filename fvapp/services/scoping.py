"""Always scope by workspace: the one fetch that every service uses for an id it was given."""

from __future__ import annotations

import uuid
from typing import TypeVar

from ..extensions import db
from .errors import NotFound

T = TypeVar("T")


def get_in_workspace(model: type[T], workspace_id: uuid.UUID, object_id, what: str) -> T:
    """The object, or NotFound: for a malformed id, an unknown id, and another workspace's id
    alike, so an answer never reveals that something exists elsewhere."""
    obj = db.session.get(model, parse_id(object_id, what))
    if obj is None or obj.workspace_id != workspace_id:
        raise NotFound(f"{what} not found")
    return obj


def parse_id(object_id, what: str) -> uuid.UUID:
    """The id as a UUID; a malformed one is NotFound, like an id that does not exist (a read
    that selects by id and workspace says NotFound(f"{what} not found") for those too)."""
    try:
        return uuid.UUID(str(object_id))
    except ValueError:
        raise NotFound(f"{what} not found") from None
