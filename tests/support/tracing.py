"""What a block of code costs the database: the SQL statements it sends and the round trips it
makes to PostgreSQL, both read from libpq's own trace of each connection (PQtrace: what went on
the wire, whatever sent it: SQLAlchemy, or transaction.read's compiled statements on the
driver's cursor), and on SQLite the statements SQLAlchemy executes (no wire: its events). Used
by tests and benchmarks/."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import tempfile
import weakref
from collections import Counter
from contextlib import contextmanager

from psycopg import pq
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from fvapp.extensions import db

TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)
PING = re.compile(r"^\s*(;|SELECT 1)\s*$", re.I)  # SQLAlchemy's pool_pre_ping, db_setup.ping
# Where each traced message starts: libpq's timestamp, then F (frontend) or B (backend).
MESSAGE = re.compile(r"^(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\t[FB]\t)", re.M)


def engine_of(app):
    """The engine that serves the API of this app (fvapp.create_app: the API app mounted in
    it): Flask-SQLAlchemy makes one per Flask app, and it outlives any app context."""
    from fvapp import api_app

    with api_app(app).app_context():
        return db.engine


class Trace:
    """libpq's trace of one PostgreSQL connection, in a file of its own, read as it grows."""

    def __init__(self, dbapi_connection):
        info = dbapi_connection.info
        self.server = (info.host, info.port, info.dbname)
        self.fd, self.path = tempfile.mkstemp(prefix="fvapp-pqtrace-")
        dbapi_connection.pgconn.trace(self.fd)  # libpq writes through its own FILE* on it
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.REGRESS_MODE)  # timestamps kept
        self.offset, self.prepared, self.bound = 0, {}, None
        self.started: str | None = None  # what started the round trip under way
        self.statements: list[tuple[str, str]] = []  # (timestamp, SQL), every one so far
        self.trips: Counter = Counter()  # round trips so far, by what started them
        self.set_up = False  # until its first checkout, SQLAlchemy sets the connection up

    def checked_out(self) -> None:
        """The first checkout: what the connection sent so far (SQLAlchemy's dialect
        initialize on an engine's first connection) set it up, and was no query."""
        if not self.set_up:
            _flush()
            self.read().statements.clear()
            self.set_up = True

    def read(self) -> Trace:
        """Take in what libpq wrote since the last read (_flush() first)."""
        with open(self.path, "rb") as trace:
            trace.seek(self.offset)
            data = trace.read()
        data = data[:data.rfind(b"\n") + 1]  # a message is complete once its line is
        self.offset += len(data)
        statements, trips = self.statements, self.trips
        for message in MESSAGE.split(data.decode("utf-8", errors="replace")):
            fields = message.rstrip("\n").split("\t", 4)
            if len(fields) < 4:
                continue
            stamp, direction, kind = fields[0], fields[1], fields[3]
            arguments = fields[4][1:] if len(fields) == 5 else ""
            if direction == "B":
                if kind == "ReadyForQuery":
                    trips[self.started or "other"] += 1
                    self.started = None
                continue
            sql = None
            if kind == "Query":
                sql = _unquoted(arguments)
            elif kind == "Parse":  # "<statement name>" "<sql>" <parameter count> <oids>
                name, _, rest = arguments[1:].partition('" "')
                self.prepared[name] = rest.rsplit('" ', 1)[0]
            elif kind == "Bind":  # "<portal>" "<statement name>" ...
                self.bound = arguments.split('" "', 1)[-1].split('"', 1)[0]
            elif kind == "Execute":
                sql = self.prepared.get(self.bound, "")
            if self.started is None and kind in ("Query", "Parse", "Bind"):
                self.started = _label(kind, arguments, self.prepared)
            if sql is not None and not TRANSACTION_CONTROL.match(sql) and not PING.match(sql):
                statements.append((stamp, " ".join(sql.split())))
        return self

    def untrace(self, dbapi_connection) -> None:
        """The connection closes: libpq stops writing (PQuntrace flushes), the file stays."""
        with contextlib.suppress(Exception):
            dbapi_connection.pgconn.untrace()
            os.close(self.fd)


def _unquoted(argument: str) -> str:
    argument = argument.strip()
    return argument[1:-1] if argument.startswith('"') and argument.endswith('"') else argument


def _label(kind: str, arguments: str, prepared: dict) -> str:
    """ "ping" for a ping, "PREPARED" for a statement the driver prepared earlier (psycopg does
    after 5 runs: Bind, no Parse), else the first word of the SQL a Query or Parse carries."""
    if kind == "Bind":
        return "PREPARED"
    sql = _unquoted(arguments) if kind == "Query" else arguments[1:].partition('" "')[2]
    if PING.match(sql.rsplit('" ', 1)[0] if kind == "Parse" else sql):
        return "ping"
    return re.match(r"\s*([A-Za-z]*)", sql).group(1).upper() or "other"


_traces: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # psycopg connection → Trace
_all: list[Trace] = []
_tracing_all = False


def _trace_of(dbapi_connection) -> Trace | None:
    if not hasattr(dbapi_connection, "pgconn"):
        return None  # SQLite
    found = _traces.get(dbapi_connection)
    if found is None:
        found = _traces[dbapi_connection] = Trace(dbapi_connection)
        _all.append(found)
    return found


def _flush() -> None:
    ctypes.CDLL(None).fflush(None)  # libpq writes through a buffered FILE*


def trace_connections() -> None:
    """Trace every PostgreSQL connection any engine opens from now on (tests/conftest.py does
    at start-up; a benchmark that counts, before its engine's first connection)."""
    global _tracing_all
    if not _tracing_all:
        event.listen(Engine, "connect", _connected)
        event.listen(Pool, "checkout", _checked_out)
        event.listen(Pool, "close", _closed)
        event.listen(Pool, "close_detached", _closed)
        _tracing_all = True


def _connected(dbapi_connection, connection_record) -> None:
    _trace_of(dbapi_connection)


def _checked_out(dbapi_connection, connection_record, connection_proxy) -> None:
    trace = _traces.get(dbapi_connection) if hasattr(dbapi_connection, "pgconn") else None
    if trace is not None:
        trace.checked_out()


def _closed(dbapi_connection, *record) -> None:
    trace = _traces.get(dbapi_connection) if hasattr(dbapi_connection, "pgconn") else None
    if trace is not None:
        _flush()
        trace.untrace(dbapi_connection)


@atexit.register
def _remove_files() -> None:
    for trace in _all:
        with contextlib.suppress(OSError):
            os.unlink(trace.path)


@contextmanager
def sql_statements(engine):
    """Every SQL statement sent to the engine's database while the block runs, by any engine on
    it (the pages app's and the API app's), in the order sent; transaction control (BEGIN,
    COMMIT, ...) and pings left out: those are not queries. On PostgreSQL from the wire (libpq's
    trace: trace_connections() must have been called before the connections were opened), so
    every path counts alike; on SQLite from SQLAlchemy's before_cursor_execute event."""
    seen: list[str] = []
    url = engine.url
    if url.get_backend_name() != "postgresql":
        def record(conn, cursor, statement, parameters, context, executemany):
            if conn.engine.url == url and not TRANSACTION_CONTROL.match(statement):
                seen.append(" ".join(statement.split()))

        event.listen(Engine, "before_cursor_execute", record)
        try:
            yield seen
        finally:
            event.remove(Engine, "before_cursor_execute", record)
        return
    if not _tracing_all:
        raise RuntimeError("sql_statements on PostgreSQL reads libpq's trace: call "
                           "trace_connections() before the engine's first connection")
    server = (url.host or "localhost", url.port or 5432, url.database)
    _flush()
    before = {trace: len(trace.read().statements) for trace in _all}
    try:
        yield seen
    finally:
        _flush()
        found = []
        for trace in list(_all):
            if _same_server(trace.server, server):
                found.extend(trace.read().statements[before.get(trace, 0):])
        seen.extend(sql for _, sql in sorted(found, key=lambda stamped: stamped[0]))


def _same_server(traced: tuple, wanted: tuple) -> bool:
    host, port, database = traced
    return (str(port), database) == (str(wanted[1]), wanted[2]) and host in (
        wanted[0], "localhost" if wanted[0] == "127.0.0.1" else wanted[0])


class PgRoundTrips:
    """Round trips between an engine and PostgreSQL, as libpq records them (PQtrace): each one
    ends with the server's ReadyForQuery, whatever started it: a statement, BEGIN, COMMIT,
    ROLLBACK, or a ping (pool_pre_ping's, db_setup.ping's), which are no queries. Attach it
    before the engine's first connection; counts() tells the round trips so far by what started
    them: "ping", "PREPARED" (a statement psycopg prepared earlier) or the first word of the SQL."""

    def __init__(self, engine):
        self.engine, self.traces = engine, []
        event.listen(engine, "connect", self._trace)

    def _trace(self, dbapi_connection, connection_record) -> None:
        self.traces.append(_trace_of(dbapi_connection))

    def counts(self) -> Counter:
        _flush()
        found: Counter = Counter()
        for trace in self.traces:
            found.update(trace.read().trips)
        return found

    def close(self) -> None:
        event.remove(self.engine, "connect", self._trace)
