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
    try:
        object_id = uuid.UUID(str(object_id))
    except ValueError:
        raise NotFound(f"{what} not found") from None
    obj = db.session.get(model, object_id)
    if obj is None or obj.workspace_id != workspace_id:
        raise NotFound(f"{what} not found")
    return obj
