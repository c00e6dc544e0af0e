"""Engine behaviour per backend: SQLite gets WAL, foreign keys and BEGIN IMMEDIATE on demand."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event
from sqlalchemy.engine import Engine

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
