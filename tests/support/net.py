"""Sockets for tests and benchmarks: a free port, a TCP proxy that can take a service away (or,
StallingProxy, stall it: open connections stop getting answers), and a server that accepts
connections and never answers (a hung database or Redis)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

from werkzeug.serving import make_server


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listened on a moment ago (and nothing does now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        sent = bytearray()  # what the client sent on this connection and sent() left
        try:
            while True:
                readable, _, _ = select.select(pair, [], [], self._gate())
                if not self._forwarding():
                    continue  # paused while selecting: leave the bytes where they are
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

    def _gate(self) -> float | None:
        """Before each select(): may block; returns select's timeout (None: wait for bytes)."""
        return None

    def _forwarding(self) -> bool:
        return True

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


class StallingProxy(TcpProxy):
    """A TcpProxy whose relays can be paused: stall() stops forwarding bytes in both directions
    on every connection, open or new (no RST, no FIN: the peers just hear nothing), flow()
    resumes forwarding what was buffered meanwhile."""

    def __init__(self, target_host: str, target_port: int):
        super().__init__(target_host, target_port)
        self.flowing = threading.Event()
        self.flowing.set()

    def stall(self) -> None:
        self.flowing.clear()
        time.sleep(0.1)  # every relay is past its current select() and now waits

    def flow(self) -> None:
        self.flowing.set()

    def stop(self) -> None:
        self.flow()  # let paused relays see their sockets close
        super().stop()

    def _gate(self) -> float | None:
        self.flowing.wait()
        return 0.05  # wake up to notice a stall() that came while selecting

    def _forwarding(self) -> bool:
        return self.flowing.is_set()


class SilentServer:
    """Accepts TCP connections and never says a word: a hung database or Redis."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                self.held.append(self.listener.accept()[0])
            except (TimeoutError, OSError):
                continue

    def close(self):
        self._stop.set()
        for sock in [*self.held, self.listener]:
            sock.close()


@contextlib.contextmanager
def live(application):
    """Serve a WSGI app from a thread on a free localhost port for the block; yields its base URL."""
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
