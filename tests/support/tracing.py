"""What a block of code costs the database: the SQL statements it sends (any backend) and the
round trips it makes to PostgreSQL (libpq's own trace). Used by tests and benchmarks/."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import tempfile
from collections import Counter
from contextlib import contextmanager

from psycopg import pq
from sqlalchemy import event
from sqlalchemy.engine import Engine

from fvapp.extensions import db

TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)


def engine_of(app):
    """The engine that serves the API of this app (fvapp.create_app: the API app mounted in
    it): Flask-SQLAlchemy makes one per Flask app, and it outlives any app context."""
    from fvapp import api_app

    with api_app(app).app_context():
        return db.engine


@contextmanager
def sql_statements(engine):
    """Every SQL statement sent to the engine's database while the block runs, by any engine on
    it (the pages app's and the API app's), transaction control (SQLite's explicit BEGIN,
    COMMIT) left out: those are not queries."""
    seen: list[str] = []
    url = engine.url

    def record(conn, cursor, statement, parameters, context, executemany):
        if conn.engine.url == url and not TRANSACTION_CONTROL.match(statement):
            seen.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


class PgRoundTrips:
    """Round trips between an engine and PostgreSQL, as libpq records them (PQtrace): each one
    ends with the server's ReadyForQuery, whatever started it: a statement, BEGIN, COMMIT,
    ROLLBACK, or pool_pre_ping's ping, which sql_statements() never sees (it goes straight to
    the DBAPI connection; with psycopg it is the empty statement ";"). Attach it before the
    engine's first connection; counts() tells the round trips so far by what started them:
    "ping", or the first word of the SQL."""

    def __init__(self, engine):
        self.engine, self.paths = engine, []
        event.listen(engine, "connect", self._trace)

    def _trace(self, dbapi_connection, connection_record) -> None:
        fd, path = tempfile.mkstemp(prefix="fvapp-pqtrace-")
        dbapi_connection.pgconn.trace(fd)  # libpq owns the descriptor from here on
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        self.paths.append(path)

    def counts(self) -> Counter:
        ctypes.CDLL(None).fflush(None)  # libpq writes through a buffered FILE*
        found: Counter = Counter()
        for path in self.paths:
            with open(path, encoding="utf-8", errors="replace") as trace:
                started = None
                for line in trace:
                    direction, _, rest = line.partition("\t")
                    fields = rest.split("\t", 2)
                    if direction == "F" and started is None and len(fields) == 3:
                        started = _sql_label(fields[1], fields[2])
                    elif direction == "B" and fields[1:2] == ["ReadyForQuery"]:
                        found[started or "other"] += 1
                        started = None
        return found

    def close(self) -> None:
        event.remove(self.engine, "connect", self._trace)
        for path in self.paths:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _sql_label(message: str, arguments: str) -> str | None:
    """ "ping" for a ping, "PREPARED" for a statement the driver prepared earlier (psycopg does
    after 5 runs: Bind, no Parse), else the first word of the SQL a Query or Parse carries."""
    if message == "Bind":
        return "PREPARED"
    if message == "Query":
        sql = arguments.strip()[1:]
    elif message == "Parse":  # "<statement name>" "<sql>" …
        sql = arguments.strip().split('" "', 1)[-1]
    else:
        return None
    if sql.startswith((';"', 'SELECT 1"')):  # SQLAlchemy's ping: psycopg's, or the default
        return "ping"
    word = re.match(r"[A-Za-z]*", sql).group()
    return word.upper() or None
