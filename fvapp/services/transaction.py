"""One unit of work: the changes of a block commit together, or none do.

The only place in fvapp that commits. Every write is `with atomic():`; a helper called inside a
caller's block joins that block and never commits (or ends a transaction holding changes) for it.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Executable, Row, Select, event
from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ..db_setup import PING_AFTER_IDLE_SECONDS, ping, stalled
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
    autocommit on this thread's reading connection (Readers): one round trip, where a
    transaction would add two (BEGIN, and ROLLBACK when the connection goes back), for a single
    statement that has its own snapshot anyway, and neither an ORM session nor a pool checkout
    for it."""
    if db.session.registry.has() and db.session().in_transaction():
        return db.session.execute(statement, params).all()
    engine = db.engine
    if engine.dialect.name != "postgresql":
        return db.session.execute(statement, params).all()
    readers = _readers(engine)
    for attempt in (1, 2):
        connection = readers.connection()
        try:
            return connection.execute(statement, params).all()
        except DBAPIError as exc:
            readers.drop(connection)
            # A connection found dead (the server restarted since it was last used):
            # SQLAlchemy has invalidated it and the pool, so a read retried once gets a fresh
            # one; the request succeeds as with pool_pre_ping. Not one that stalled
            # (db_setup.stalled): a retry would wait as long again.
            if attempt == 1 and exc.connection_invalidated and not stalled(exc):
                continue
            raise
        except BaseException:
            readers.drop(connection)
            raise
    raise AssertionError("unreachable")


class _Slot:
    """A thread's reading connection, when it was taken from the pool and last used. When the
    thread ends, its thread-local slot goes with it: the connection goes back to the pool."""

    __slots__ = ("connection", "readers", "taken", "used")

    def __init__(self, readers: Readers, connection: Connection, now: float):
        self.readers, self.connection, self.taken, self.used = readers, connection, now, now

    def __del__(self):
        self.readers.release(self.connection)


class Readers:
    """Each thread's SQLAlchemy Connection in autocommit, for one engine: taken from the pool
    on a thread's first read and kept, so a read costs no pool checkout and checkin. It is the
    engine's own Connection (the same event listeners: its statements are seen and counted as
    any other), given back to the pool (where pool_recycle applies) after HOLD_SECONDS, pinged
    (db_setup.ping) after PING_AFTER_IDLE_SECONDS idle (as the pool's checkout does), and given
    back after a failed statement, when its thread ends, and when the engine is disposed (its
    engine_disposed event); in a forked child it is forgotten, never closed (the socket is the
    parent's)."""

    HOLD_SECONDS = 60.0

    def __init__(self, engine: Engine):
        self.autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.held = threading.local()
        self.open: set[Connection] = set()  # every thread's, for dispose
        self.lock = threading.RLock()  # __del__ of a slot may run inside a locked block
        event.listen(engine, "engine_disposed", self._disposed)

    def connection(self) -> Connection:
        slot, now = getattr(self.held, "slot", None), time.monotonic()
        if slot is not None:
            connection = slot.connection
            if (connection.invalidated or connection.closed
                    or now - slot.taken >= self.HOLD_SECONDS):
                self.drop(connection)
            elif now - slot.used >= PING_AFTER_IDLE_SECONDS:
                try:
                    ping(connection.connection.dbapi_connection)
                except Exception:
                    connection.invalidate()
                    self.drop(connection)
                else:
                    slot.used = now
                    return connection
            else:
                slot.used = now
                return connection
        connection = self.autocommit.connect()
        with self.lock:
            self.open.add(connection)
        self.held.slot = _Slot(self, connection, now)
        return connection

    def drop(self, connection: Connection) -> None:
        """Give `connection` back (to the pool, or away if it was invalidated); this thread
        takes a fresh one on its next read."""
        slot = getattr(self.held, "slot", None)
        if slot is not None and slot.connection is connection:
            self.held.slot = None  # its __del__ releases it
        self.release(connection)

    def release(self, connection: Connection) -> None:
        with self.lock:
            if connection not in self.open:
                return  # already given back (or the parent's, in a forked child)
            self.open.discard(connection)
        connection.close()

    def _disposed(self, engine: Engine) -> None:
        with self.lock:
            dropped, self.open = self.open, set()
        for connection in dropped:
            connection.invalidate()  # the engine's connections are being discarded
            connection.close()

    def forget(self) -> None:
        """In a forked child: the parent's connections are not ours to use or to close."""
        _inherited.append(self.held)
        self.open, self.held, self.lock = set(), threading.local(), threading.RLock()


_readers_of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_inherited: list = []  # a forked child's copies of its parent's: kept, never closed


def _readers(engine: Engine) -> Readers:
    found = _readers_of.get(engine)
    if found is None:
        found = _readers_of[engine] = Readers(engine)
    return found


def _forget_after_fork() -> None:
    for readers in list(_readers_of.values()):
        readers.forget()


os.register_at_fork(after_in_child=_forget_after_fork)


def write(statement: Executable, params: dict) -> CursorResult:
    """One INSERT, UPDATE or DELETE statement (ORM-enabled or Core) in the session's
    transaction, executed on its Connection (Session.connection(), as SQLAlchemy documents
    for a statement that should not take the ORM's per-statement path: no bulk or
    synchronize-session processing; the session holds no objects it would change), and
    marked as a change of this transaction (has_pending_changes). Inside `with atomic():`."""
    session = db.session()
    result = session.connection().execute(statement, params)
    session.info[_WROTE] = True
    return result


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
