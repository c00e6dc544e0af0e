"""One unit of work: the changes of a block commit together, or none do.

The only place in fvapp that commits. Every write is `with atomic():`; a helper called inside a
caller's block joins that block and never commits (or ends a transaction holding changes) for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Row, Select, event
from sqlalchemy.orm import Session

from ..extensions import db

_WROTE = "fvapp.wrote"  # session.info flag: this transaction has sent a write to the database


@contextmanager
def atomic() -> Iterator[None]:
    """Commit at the end of the block; roll back (and re-raise) if anything in it fails."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def read(statement: Select, params: dict | None = None) -> Sequence[Row]:
    """The rows of one SELECT. Outside a transaction on PostgreSQL, in autocommit on a pooled
    connection returned at once: one round trip, where a transaction would add two (BEGIN, and
    ROLLBACK when the connection goes back), for a single statement that has its own snapshot
    anyway. Inside the session's transaction otherwise (a read in a unit of work sees its
    writes), and always on other backends."""
    session = db.session()
    if session.in_transaction():
        return session.execute(statement, params).all()
    engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        return session.execute(statement, params).all()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        return connection.execute(statement, params).all()


def has_pending_changes() -> bool:
    """Whether the session holds changes not yet committed: objects added, changed or deleted,
    flushed or not, or a write statement executed in the open transaction."""
    session = db.session()
    return bool(session.new or session.dirty or session.deleted) or session.info.get(_WROTE, False)


def end_read() -> None:
    """End the session's read-only transaction (nothing to lose: it refuses if there are
    changes), so the next statement begins a fresh one."""
    if has_pending_changes():
        raise RuntimeError("Uncommitted changes: finish them in their own atomic() block first")
    db.session.rollback()


@event.listens_for(Session, "after_flush")
def _flushed(session, flush_context):
    session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state):
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_transaction_end")
def _ended(session, transaction):
    if transaction.parent is None:
        session.info.pop(_WROTE, None)
