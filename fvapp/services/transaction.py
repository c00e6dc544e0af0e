"""One unit of work: the changes of a block commit together, or none do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..extensions import db


@contextmanager
def atomic() -> Iterator[None]:
    """Commit at the end of the block; roll back (and re-raise) if anything in it fails.
    Usable as `with atomic():` or as a decorator, `@atomic()`."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
