"""One unit of work: the changes of a block commit together, or none do.

The only place in fvapp that commits. Every write is `with atomic():`; a helper called inside a
caller's block joins that block and never commits (or ends a transaction holding changes) for it.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import namedtuple
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC

from sqlalchemy import Executable, Select, event
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection

from ..db_setup import PING_AFTER_IDLE_SECONDS, DatabaseStalled, ping
from ..extensions import db
from ..models import UTCDateTime

_WROTE = "fvapp.wrote"  # session.info flag: this transaction has sent a write to the database


_IN_BLOCK = "fvapp.atomic"  # session.info flag: an atomic() block is open


@contextmanager
def atomic() -> Iterator[None]:
    """Commit at the end of the block; roll back (and re-raise) if anything in it fails."""
    info = db.session().info
    outer = info.get(_IN_BLOCK, False)
    info[_IN_BLOCK] = True
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        info[_IN_BLOCK] = outer


def read(statement: Select, params: dict | None = None) -> Sequence:
    """The rows of one SELECT, the one read path of the API's reads and of the key check
    (fvapp/services/key_auth.py), as named tuples (attributes named as the statement's columns).
    Inside the session's transaction there (a read in a unit of work sees its writes), and
    always on backends other than PostgreSQL. Otherwise in autocommit on this thread's reading
    connection (Readers): one round trip, where a transaction would add two (BEGIN, and ROLLBACK
    when the connection goes back), for a single statement that has its own snapshot anyway;
    no ORM session, no pool checkout, and no SQLAlchemy execution per read: the statement is
    compiled once (Query) and run on the driver's cursor."""
    if db.session.registry.has() and db.session().in_transaction():
        return db.session.execute(statement, params).all()
    engine = db.engine
    if engine.dialect.name != "postgresql":
        return db.session.execute(statement, params).all()
    return _readers(engine).read(statement, params or {})


class Query:
    """A Select compiled once for a dialect (public APIs: ClauseElement.compile, Compiled.params,
    TypeEngine.result_processor), to be run on a DBAPI cursor with its parameters by name. Its
    rows are named tuples, their values as SQLAlchemy's result processors make them: e.g. a
    models.UTCDateTime column is a datetime in UTC. On a connection whose TimeZone is UTC (the
    engine's, config.py) psycopg already gives those (tzinfo datetime.UTC), so they are left as
    they come."""

    __slots__ = ("sql", "fixed", "row", "convert", "convert_utc")

    def __init__(self, statement: Select, dialect):
        compiled = statement.compile(dialect=dialect)
        if compiled.positional or "POSTCOMPILE" in compiled.string:
            raise ValueError("a read's statement takes named parameters, none expanded")
        self.sql = compiled.string
        # Values the statement carries itself (e.g. a literal in coalesce()); the caller's
        # parameters come on top.
        self.fixed = {name: value for name, value in compiled.params.items() if value is not None}
        columns = statement.selected_columns
        self.row = namedtuple("Row", columns.keys())
        self.convert, self.convert_utc = [], []
        for index, column in enumerate(columns):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                self.convert.append((index, process))
                if not isinstance(column.type, UTCDateTime):
                    self.convert_utc.append((index, process))

    def parameters(self, params: dict) -> dict:
        return {**self.fixed, **params} if self.fixed else params

    def rows(self, values: list[tuple], utc: bool) -> list:
        convert = self.convert_utc if utc else self.convert
        make = self.row._make
        if not convert:
            return [make(row) for row in values]
        rows = []
        for row in values:
            row = list(row)
            for index, process in convert:
                row[index] = process(row[index])
            rows.append(make(row))
        return rows


class _Slot:
    """A thread's reading connection: the pool's entry, detached (PoolProxiedConnection), its
    psycopg connection and the one cursor every read uses (psycopg keeps its loaders between
    statements), when it was taken and last used. When the thread ends, its thread-local slot
    goes with it, and closes the connection."""

    __slots__ = ("readers", "proxied", "connection", "cursor", "utc", "taken", "used")

    def __init__(self, readers: Readers, proxied: PoolProxiedConnection, now: float):
        self.readers, self.proxied, self.taken, self.used = readers, proxied, now, now
        self.connection = connection = proxied.dbapi_connection
        self.cursor = connection.cursor()
        self.utc = connection.info.timezone is UTC

    def __del__(self):
        self.readers.release(self.proxied)


class Readers:
    """Each thread's PostgreSQL connection in autocommit, for one engine, through which
    transaction.read runs its compiled Queries: taken from the engine's pool
    (Engine.raw_connection: the pool makes it, with the engine's connect events: timeouts,
    reply deadline, tracing in tests) on a thread's first read and detached from it
    (PoolProxiedConnection.detach), so a read costs no pool checkout and checkin. Closed after
    HOLD_SECONDS (the thread takes another from the pool: a connection's age stays bounded),
    pinged (db_setup.ping) after PING_AFTER_IDLE_SECONDS idle (as the pool's checkout does),
    and closed after a failed statement, when its thread ends, and when the engine is disposed
    (its engine_disposed event); in a forked child it is forgotten, never closed (the socket is
    the parent's). A lost connection (the server restarted) invalidates the pool as SQLAlchemy's
    own disconnect handling does: the next checkout of a connection older than it raises
    InvalidatePoolError (a DisconnectionError) in the pool's checkout event."""

    HOLD_SECONDS = 60.0

    def __init__(self, engine: Engine):
        self.engine, self.dialect = engine, engine.dialect
        self.dbapi_error = engine.dialect.loaded_dbapi.Error
        # By the statement object: the services' reads are module-level constants, built once
        # with bound parameters (one entry each); a statement built per call does not belong here.
        self.queries: dict[Select, Query] = {}
        self.held = threading.local()
        self.open: set[PoolProxiedConnection] = set()  # every thread's, for dispose
        self.lock = threading.RLock()  # __del__ of a slot may run inside a locked block
        self.lost_at: float | None = None  # when a reading connection was found dead
        event.listen(engine, "engine_disposed", self._disposed)
        event.listen(engine, "checkout", self._checkout)

    def read(self, statement: Select, params: dict) -> list:
        query = self.queries.get(statement)
        if query is None:
            query = self.queries[statement] = Query(statement, self.dialect)
        for attempt in (1, 2):
            slot = self.slot()
            try:
                values = slot.cursor.execute(query.sql, query.parameters(params)).fetchall()
            except self.dbapi_error as exc:
                lost = self.dialect.is_disconnect(exc, slot.connection, slot.cursor)
                self.drop(slot)
                if lost:
                    self.lost_at = time.monotonic()
                # A connection found dead (the server restarted since it was last used): the
                # pool is invalidated (_checkout), so a read retried once gets a fresh one; the
                # request succeeds as with pool_pre_ping. Not one that stalled
                # (db_setup.DatabaseStalled): a retry would wait as long again.
                if attempt == 1 and lost and not isinstance(exc, DatabaseStalled):
                    continue
                raise self._wrapped(exc, query.sql, params, lost) from exc
            except BaseException:
                self.drop(slot)
                raise
            return query.rows(values, slot.utc)
        raise AssertionError("unreachable")

    def _wrapped(self, exc, statement, params, lost: bool) -> DBAPIError:
        """The driver's error as SQLAlchemy raises it (OperationalError, ...: what the error
        handlers know), its parameters (a key's hash) left out of the message."""
        return DBAPIError.instance(statement, params, exc, self.dbapi_error,
                                   hide_parameters=True, connection_invalidated=lost,
                                   dialect=self.dialect)

    def slot(self) -> _Slot:
        slot, now = getattr(self.held, "slot", None), time.monotonic()
        if slot is not None:
            connection = slot.connection
            if connection.closed or now - slot.taken >= self.HOLD_SECONDS:
                self.drop(slot)
            elif now - slot.used >= PING_AFTER_IDLE_SECONDS:
                try:
                    ping(connection)
                except Exception:
                    self.drop(slot)
                else:
                    slot.used = now
                    return slot
            else:
                slot.used = now
                return slot
        try:
            proxied = self.engine.raw_connection()
        except self.dbapi_error as exc:  # the pool connects without SQLAlchemy's wrapping
            raise self._wrapped(exc, None, None, self.dialect.is_disconnect(exc, None, None)) from exc
        try:
            proxied.detach()
            proxied.dbapi_connection.autocommit = True
            slot = _Slot(self, proxied, now)
        except BaseException:
            proxied.close()
            raise
        with self.lock:
            self.open.add(proxied)
        self.held.slot = slot
        return slot

    def drop(self, slot: _Slot) -> None:
        """Close the slot's connection; this thread takes a fresh one on its next read."""
        if getattr(self.held, "slot", None) is slot:
            self.held.slot = None
        self.release(slot.proxied)

    def release(self, proxied: PoolProxiedConnection) -> None:
        with self.lock:
            if proxied not in self.open:
                return  # already closed (or the parent's, in a forked child)
            self.open.discard(proxied)
        proxied.close()  # detached: closes the DBAPI connection

    def _checkout(self, dbapi_connection, connection_record, connection_proxy) -> None:
        lost_at = self.lost_at
        if lost_at is None:
            return
        checked_in_at = connection_record.info.get("checked_in_at")  # db_setup's checkin event
        if checked_in_at is not None and checked_in_at < lost_at:
            self.lost_at = None
            raise InvalidatePoolError("a reading connection was lost")

    def _disposed(self, engine: Engine) -> None:
        with self.lock:
            dropped, self.open = self.open, set()
        for proxied in dropped:
            proxied.close()  # the engine's connections are being discarded

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


def atomic_statement(statement: Executable, params: dict) -> Sequence:
    """A unit of work of exactly one statement (an INSERT or UPDATE … RETURNING of a mapped
    class): the rows it returns. Inside a caller's `with atomic():` block it joins that unit of
    work (the block's objects flushed first, so the statement sees them; the block commits).
    Otherwise, when the session is idle (no transaction, nothing pending: an API request), on
    PostgreSQL it runs in autocommit on a connection of the engine's pool: one statement is
    atomic by itself, all or nothing, so BEGIN and COMMIT around it would cost two round trips
    and guarantee nothing more (the reference `make bench` measures does the same). Anywhere
    else (a page whose session has read already: its connection, not a second one; changes
    pending; SQLite) it is `with atomic():` around it, as any write. A write of two statements
    or more is never this: it is `with atomic():`."""
    session = db.session()
    if session.info.get(_IN_BLOCK):
        session.flush()
        return write(statement, params).all()
    engine = db.engine
    if (engine.dialect.name != "postgresql" or session.in_transaction()
            or has_pending_changes()):
        with atomic():
            session.flush()
            return write(statement, params).all()
    with _autocommit(engine).connect() as connection:
        return connection.execute(statement, params).all()


_autocommit_of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _autocommit(engine: Engine) -> Engine:
    """The engine with isolation_level AUTOCOMMIT (Engine.execution_options: the same pool)."""
    found = _autocommit_of.get(engine)
    if found is None:
        found = _autocommit_of[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


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
