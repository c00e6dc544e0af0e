"""Round trips counted on the wire: a TCP proxy on 127.0.0.1 in front of PostgreSQL or Redis that
reads what clients send through it and counts the round trips by what they carry, whoever sends
them (any process, any driver, any code path).

PostgreSQL (protocol 3): a round trip ends with each simple Query or each Sync of the extended
protocol; it is named by the first word of its SQL ("ping" for the empty statement a pool's
pre-ping sends), a prepared statement by the SQL it was prepared with. Clients must connect
without TLS (sslmode=disable), or the bytes cannot be read. Redis (RESP): each command a round
trip (nothing here pipelines), named by the command.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import threading
from collections import Counter


class WireCounter:
    """Start it, point a client at `port`, read counts() (a Counter of round trips by name)."""

    def __init__(self, host: str, port: int, parser):
        self.target, self.parser = (host, port), parser
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.found: Counter = Counter()
        self.lock = threading.Lock()
        self.sockets: set = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def counts(self) -> Counter:
        with self.lock:
            return Counter(self.found)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _record(self, name: str) -> None:
        with self.lock:
            self.found[name] += 1

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets |= {client, upstream}
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, client, upstream) -> None:
        parse = self.parser(self._record)
        try:
            while True:
                readable, _, _ = select.select((client, upstream), [], [])
                for source in readable:
                    chunk = source.recv(65536)
                    if not chunk:
                        return
                    if source is client:
                        parse(chunk)
                    (upstream if source is client else client).sendall(chunk)
        except OSError:
            pass
        finally:
            with self.lock:
                self.sockets -= {client, upstream}
            client.close()
            upstream.close()


def _first_word(sql: str) -> str:
    sql = sql.strip().lstrip("(")
    if sql in ("", ";"):
        return "ping"
    return (re.match(r"[A-Za-z]*", sql).group() or "other").upper()


def postgres(record):
    """A parser of one connection's client → server bytes (PostgreSQL protocol 3)."""
    buffer = bytearray()
    state = {"started": False, "pending": None}
    prepared: dict[bytes, str] = {}

    def feed(chunk: bytes) -> None:
        buffer.extend(chunk)
        while True:
            if not state["started"]:  # untyped: SSLRequest/GSSENCRequest, then the startup packet
                if len(buffer) < 8:
                    return
                length, code = struct.unpack("!ii", buffer[:8])
                if len(buffer) < length:
                    return
                del buffer[:length]
                state["started"] = code == 196608  # 3.0: the startup packet itself
                continue
            if len(buffer) < 5:
                return
            kind, length = buffer[0:1], struct.unpack("!i", buffer[1:5])[0]
            if len(buffer) < 1 + length:
                return
            payload = bytes(buffer[5:1 + length])
            del buffer[:1 + length]
            if kind == b"Q":
                record(_first_word(payload.split(b"\0", 1)[0].decode(errors="replace")))
            elif kind == b"P":  # Parse: statement name, SQL
                name, sql = payload.split(b"\0", 2)[:2]
                word = _first_word(sql.decode(errors="replace"))
                if name:
                    prepared[name] = word
                state["pending"] = state["pending"] or word
            elif kind == b"B":  # Bind: portal name, statement name
                statement = payload.split(b"\0", 2)[1]
                state["pending"] = state["pending"] or prepared.get(statement, "PREPARED")
            elif kind == b"S":  # Sync: the end of an extended-protocol round trip
                record(state["pending"] or "sync")
                state["pending"] = None

    return feed


def redis(record):
    """A parser of one connection's client → server bytes (RESP arrays of bulk strings)."""
    buffer = bytearray()

    def feed(chunk: bytes) -> None:
        buffer.extend(chunk)
        while True:
            end = buffer.find(b"\r\n")
            if end < 0 or buffer[:1] != b"*":
                return
            count, at, parts = int(buffer[1:end]), end + 2, []
            for _ in range(count):
                end = buffer.find(b"\r\n", at)
                if end < 0:
                    return
                length = int(buffer[at + 1:end])
                if len(buffer) < end + 2 + length + 2:
                    return
                parts.append(bytes(buffer[end + 2:end + 2 + length]))
                at = end + 2 + length + 2
            record(parts[0].decode().upper() if parts else "other")
            del buffer[:at]

    return feed
