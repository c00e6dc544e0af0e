"""Engine behaviour per backend: SQLite gets WAL, foreign keys and BEGIN IMMEDIATE on demand;
PostgreSQL connections get a client-side deadline on every answer (a stalled connection never
holds a worker) and a ping when they sat idle."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import psycopg
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
        ping(dbapi_connection)
    except Exception as exc:
        raise DisconnectionError() from exc  # the pool retries with a fresh connection


def ping(dbapi_connection) -> None:
    """SELECT 1 on a PostgreSQL connection, raising if it does not answer. A short reply
    timeout: a stalled connection costs the ping 1 s, not a statement's timeout, before its
    owner opens a fresh one (bounded by connect_timeout). Also the auth read's own connection's
    ping (fvapp/services/key_auth.py)."""
    reply_timeout = getattr(dbapi_connection, "reply_timeout", None)
    if reply_timeout is not None:
        dbapi_connection.reply_timeout = min(reply_timeout, PING_REPLY_TIMEOUT)
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        if not getattr(dbapi_connection, "autocommit", True):
            dbapi_connection.rollback()
    finally:
        if reply_timeout is not None:
            dbapi_connection.reply_timeout = reply_timeout


# -- a stalled PostgreSQL connection (SPEC §10) ---------------------------------------------------
# statement_timeout is enforced by the server, so it cannot help when the server never sees the
# statement: a connection that was healthy and then stalls (a proxy or NAT that stops forwarding,
# a partitioned network: no RST, no FIN) would leave a worker waiting in recv() for ever. So every
# wait for the server's answer carries a client-side deadline as well (REPLY_TIMEOUT_ARG, set
# from config), a little longer than statement_timeout so that a merely slow statement is still
# cancelled by the server first. Past it the connection is closed and DatabaseStalled raised: an
# OperationalError on a closed connection, so SQLAlchemy counts it as a disconnect, invalidates
# the pool (the next request gets a fresh connection) and the app answers 503.

REPLY_TIMEOUT_ARG = "fvapp_reply_timeout"  # connect_args key; taken out before libpq sees it
PING_REPLY_TIMEOUT = 1.0  # seconds for the idle-connection ping: a healthy server answers at once


class DatabaseStalled(psycopg.OperationalError):
    """The server did not answer within the connection's reply timeout; the connection is closed."""


class DeadlineConnection(psycopg.Connection):
    """psycopg's connection, with a deadline on every wait for the server (psycopg ≥ 3.3: every
    execute, fetch, commit and rollback waits through Connection.wait)."""

    reply_timeout: float | None = None

    def wait(self, gen, interval: float | None = None, timeout: float | None = None):
        if timeout is None:
            timeout = self.reply_timeout
        started = time.monotonic()
        try:
            if interval is None:  # psycopg's own default interval
                return super().wait(gen, timeout=timeout)
            return super().wait(gen, interval, timeout)
        except psycopg.OperationalError:
            # psycopg raises an OperationalError when the wait's timeout expires: one raised
            # once the deadline has passed is that. The protocol state is unknown (a statement
            # may be half sent or half answered): nothing more may go over this connection.
            # finish() closes it, as psycopg itself does when a cancellation goes unanswered.
            if timeout is None or time.monotonic() - started < timeout or self.closed:
                raise
            self.pgconn.finish()
            raise DatabaseStalled(
                f"the database sent no answer within {timeout} s"
            ) from None


@event.listens_for(Engine, "do_connect")
def _connect_with_deadline(dialect, conn_rec, cargs, cparams):
    reply_timeout = cparams.pop(REPLY_TIMEOUT_ARG, None)
    if reply_timeout is None or dialect.driver != "psycopg" or dialect.is_async:
        return None  # SQLAlchemy connects as usual
    connection = DeadlineConnection.connect(*cargs, **cparams)
    connection.reply_timeout = reply_timeout
    return connection
