"""A thread's own PostgreSQL connection for the API's auth read (fvapp/services/key_auth.py):
taken from SQLAlchemy's pool once and detached, kept in autocommit with one cursor, replaced when
it may no longer be trusted. No pool checkout, reset or checkin per request: they cost more than
the read's round trip."""

from __future__ import annotations

import math
import os
import threading
import time
import weakref

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from .db_setup import PING_AFTER_IDLE_SECONDS, ping


class Held:
    """A thread's connection for the direct read (held_for), its one cursor (kept: a cursor made
    per read costs about a third of the read, its adapters and loaders set up again), and what
    decides when it is replaced. Closed when replaced, or when its thread, its engine or the
    process ends (the finalizer), never in a process it was not opened in (a forked child
    shares its socket)."""

    __slots__ = ("__weakref__", "close", "connection", "cursor", "expires", "pid", "started",
                 "used")

    def __init__(self, connection, started: float, recycle: float):
        now = time.monotonic()
        self.connection, self.started, self.used = connection, started, now
        self.cursor = connection.cursor()
        # pool_recycle counts from the connection's opening, as the pool's own does
        self.expires = now + recycle - (time.time() - started) if recycle >= 0 else math.inf
        self.pid = os.getpid()
        self.close = weakref.finalize(self, _close, connection, self.pid)


def _close(connection, pid: int) -> None:
    if os.getpid() == pid:
        connection.close()
    else:
        _inherited.append(connection)  # never closed here, nor garbage-collected (psycopg warns)


_inherited: list = []
# Per engine, per thread: the held connection. engine.dispose() forgets the engine's (and so
# closes them: the pool's own connections are closed then too).
_readers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def held_for(engine) -> Held:
    """This thread's connection for the direct read, on this engine: taken from the engine's
    pool once and detached from it, so the pool's connect events made it (db_setup: the reply
    deadline, statement_timeout, tcp_user_timeout, keepalives) but it is never checked out or
    in again; one more connection per thread than the pool's. Replaced once pool_recycle old,
    once the pool was invalidated after it was opened (a disconnect seen on any connection),
    after a fork, and when a ping (short reply timeout) fails after it sat idle
    PING_AFTER_IDLE_SECONDS, as the pool's checkout does (db_setup)."""
    dbapi = engine.dialect.loaded_dbapi
    local = _readers.get(engine)
    if local is None:
        with _readers_lock:
            local = _readers.get(engine)
            if local is None:
                local = _readers[engine] = threading.local()
                event.listen(engine, "engine_disposed", _forget)
    held = getattr(local, "held", None)
    if held is not None:
        now = time.monotonic()
        if (now >= held.expires or engine.pool._invalidate_time > held.started
                or held.pid != os.getpid()):
            discard(engine, held)
        elif now - held.used >= PING_AFTER_IDLE_SECONDS:
            try:
                ping(held.connection)
            except dbapi.Error:
                discard(engine, held)
            else:
                return held
        else:
            return held
    try:
        pooled = engine.raw_connection()
    except dbapi.Error as exc:
        raise DBAPIError.instance(None, None, exc, dbapi.Error) from exc
    started, connection = pooled._connection_record.starttime, pooled.driver_connection
    pooled.detach()  # the pool opens another in its place when it needs one
    try:
        connection.autocommit = True
    except BaseException:
        connection.close()
        raise
    local.held = held = Held(connection, started, engine.pool._recycle)
    return held


def discard(engine, held: Held) -> None:
    """Close a held connection (found dead, too old, or forked) and forget it."""
    local = _readers.get(engine)
    if local is not None and getattr(local, "held", None) is held:
        local.held = None
    held.close()


def _forget(engine) -> None:
    """engine_disposed: the threads' held connections go with the engine's pool."""
    with _readers_lock:
        _readers.pop(engine, None)
