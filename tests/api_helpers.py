"""Shared by the tests/test_api_*.py modules (and benchmarks/api_auth.py): real keys, a client
that sends them, the envelope assertions, a counter of the SQL statements a request runs and one
of the round trips it makes to PostgreSQL."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import select
import socket
import subprocess
import tempfile
import threading
import uuid
from collections import Counter
from contextlib import contextmanager

from psycopg import pq
from sqlalchemy import event

from fvapp.extensions import db
from fvapp.services import keys

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)


def mint_key(workspace, user, name="CI pipeline") -> str:
    """A real key made by the service the Settings page uses; returns the clear key."""
    return keys.create_key(workspace.id, user.id, name).clear


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


class Api:
    """A test client for /api/v1 that sends one key (or none)."""

    def __init__(self, client, key: str | None = None):
        self.client, self.key = client, key

    def _headers(self, headers):
        merged = bearer(self.key) if self.key else {}
        merged.update(headers or {})
        return merged

    def get(self, path, headers=None, **kw):
        return self.client.get("/api/v1" + path, headers=self._headers(headers), **kw)

    def post(self, path, json=None, headers=None, **kw):
        return self.client.post("/api/v1" + path, json=json, headers=self._headers(headers), **kw)

    def patch(self, path, json=None, headers=None, **kw):
        return self.client.patch("/api/v1" + path, json=json, headers=self._headers(headers), **kw)

    def open(self, path, method, headers=None, **kw):
        return self.client.open("/api/v1" + path, method=method, headers=self._headers(headers), **kw)


def assert_envelope(response, status: int, code: str | None = None) -> dict:
    """SPEC §5: JSON envelope, X-Request-Id = meta.requestId (a uuid4), timestamp format."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["success"] is (status < 400)
    meta = body["meta"]
    assert uuid.UUID(meta["requestId"]).version == 4
    assert response.headers["X-Request-Id"] == meta["requestId"]
    assert TIMESTAMP.match(meta["timestamp"])
    if status < 400:
        assert set(body) == {"success", "data", "meta"}
    else:
        assert body["code"] == code
        assert isinstance(body["error"], str) and body["error"]
        assert set(body) - {"details"} == {"success", "error", "code", "meta"}
        assert "Traceback" not in response.get_data(as_text=True)
    return body


@contextmanager
def sql_statements(engine=None):
    """Every SQL statement sent while the block runs, transaction control (SQLite's explicit
    BEGIN, COMMIT) left out: those are not queries."""
    engine = engine or db.engine
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not TRANSACTION_CONTROL.match(statement):
            seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


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


def stop_process(process) -> None:
    """Stop a server this test or benchmark started: SIGTERM, then SIGKILL after 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 to stand between the app and PostgreSQL or Redis: stop()
    drops every connection and refuses new ones (the service "goes away"), start() brings it
    back on the same port."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = 0
        self._listener = None
        self._sockets: set = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
            listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # the relay sees EOF and closes both ends

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, client, upstream) -> None:
        pair = (client, upstream)
        sent = bytearray()  # what the client sent so far on this connection
        try:
            while True:
                readable, _, _ = select.select(pair, [], [])
                for source in readable:
                    chunk = source.recv(65536)
                    if not chunk:
                        return
                    if source is client:
                        sent += chunk
                        self.sent(sent)
                    (upstream if source is client else client).sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets -= set(pair)
            for sock in pair:
                sock.close()

    def sent(self, data: bytearray) -> None:
        """Called with the bytes a client has sent on one connection and not consumed yet."""
        data.clear()


class RedisCommands(TcpProxy):
    """A TcpProxy in front of Redis that records the name of every command sent through it:
    what really crosses the wire (each one a round trip unless pipelined), whoever sends it."""

    def __init__(self, target_host: str, target_port: int):
        super().__init__(target_host, target_port)
        self.commands: list[str] = []

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def sent(self, data: bytearray) -> None:
        while True:  # RESP: *<n>\r\n then n times $<length>\r\n<bytes>\r\n
            parts, at = [], 0
            end = data.find(b"\r\n")
            if end < 0 or data[:1] != b"*":
                return
            count, at = int(data[1:end]), end + 2
            for _ in range(count):
                end = data.find(b"\r\n", at)
                if end < 0:
                    return
                length = int(data[at + 1:end])
                if len(data) < end + 2 + length + 2:
                    return
                parts.append(bytes(data[end + 2:end + 2 + length]))
                at = end + 2 + length + 2
            with self._lock:
                self.commands.append(parts[0].decode().upper())
            del data[:at]
