"""One unit of work: the changes of a block commit together, or none do.

The only place in fvapp that commits. Every write is `with atomic():`; a helper called inside a
caller's block joins that block and never commits (or ends a transaction holding changes) for it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Row, Select, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ..db_setup import stalled
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
    """The rows of one SELECT, the one read path of the API's reads and of the key check
    (fvapp/services/key_auth.py). Inside the session's transaction there (a read in a unit of
    work sees its writes), and always on backends other than PostgreSQL. Otherwise in
    autocommit on a pooled connection handed back at once: one round trip, where a transaction
    would add two (BEGIN, and ROLLBACK when the connection goes back), for a single statement
    that has its own snapshot anyway, and no ORM session set up for it."""
    if db.session.registry.has() and db.session().in_transaction():
        return db.session.execute(statement, params).all()
    engine = db.engine
    if engine.dialect.name != "postgresql":
        return db.session.execute(statement, params).all()
    reader = _autocommit(engine)
    for attempt in (1, 2):
        try:
            with reader.connect() as connection:
                return connection.execute(statement, params).all()
        except DBAPIError as exc:
            # A pooled connection found dead (the server restarted since it was last used; no
            # ping, see db_setup): SQLAlchemy has invalidated the pool, so a read retried once
            # gets a fresh connection; the request succeeds as with pool_pre_ping.
            # Not one that stalled (db_setup.stalled): a retry would wait as long again.
            if attempt == 1 and exc.connection_invalidated and not stalled(exc):
                continue
            raise
    raise AssertionError("unreachable")


_autocommit_engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _autocommit(engine: Engine) -> Engine:
    """The engine in autocommit (Engine.execution_options: the same pool and event listeners),
    made once per engine."""
    reader = _autocommit_engines.get(engine)
    if reader is None:
        reader = _autocommit_engines[engine] = engine.execution_options(
            isolation_level="AUTOCOMMIT")
    return reader


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
