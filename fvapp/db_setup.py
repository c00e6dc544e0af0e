"""Engine behaviour per backend: SQLite gets WAL, foreign keys and BEGIN IMMEDIATE on demand."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import Pool

# Set while a service opens a transaction that must hold SQLite's write lock from its first
# statement. SQLAlchemy drops FOR UPDATE on SQLite, and a deferred transaction that reads and
# then writes can fail instead of waiting; BEGIN IMMEDIATE waits its turn.
begin_immediate: ContextVar[bool] = ContextVar("begin_immediate", default=False)


@contextmanager
def immediate_begin() -> Iterator[None]:
    """A transaction opened inside this block begins with BEGIN IMMEDIATE on SQLite."""
    token = begin_immediate.set(True)
    try:
        yield
    finally:
        begin_immediate.reset(token)


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, connection_record):
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE" if begin_immediate.get() else "BEGIN")


# Instead of pool_pre_ping (one more round trip on every checkout): ping only a connection that
# sat idle in the pool long enough to be suspect (a server restart or a proxy's idle cut); a
# connection that died while busy is caught by SQLAlchemy's disconnect handling, which
# invalidates the whole pool. pool_recycle (config) bounds a connection's age on top.
PING_AFTER_IDLE_SECONDS = 10.0


@event.listens_for(Pool, "checkin")
def _checked_in(dbapi_connection, connection_record):
    connection_record.info["checked_in_at"] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection, connection_record, connection_proxy):
    if isinstance(dbapi_connection, sqlite3.Connection):
        return
    checked_in_at = connection_record.info.get("checked_in_at")
    if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        if not getattr(dbapi_connection, "autocommit", True):
            dbapi_connection.rollback()
    except Exception as exc:
        raise DisconnectionError() from exc  # the pool retries with a fresh connection
