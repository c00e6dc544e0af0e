"""Bodies over the limit over real HTTP (SPEC §11): gunicorn as production runs it, bodies sent
with `Transfer-Encoding: chunked` by a client on a socket → 413 for REST, MCP, leak reports
(their own limit) and pages, never a body cut at the limit; within the limit they are served.
PostgreSQL and Redis, like tests/ops/test_api_across_workers.py."""

from __future__ import annotations

import json
import socket

import pytest

from tests.support.api import bearer, mint_key
from tests.support.bodies import INITIALIZE, MIB, padded, signed
from tests.support.leaks import Signer, report
from tests.support.marks import ON_POSTGRESQL_AND_REDIS
from tests.support.processes import fvapp_server

pytestmark = ON_POSTGRESQL_AND_REDIS
LEAK_LIMIT = 2 * MIB


def chunked(url: str, path: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    """POST `body` in 64 KiB chunks on a socket of its own; (status, headers, body) of the
    answer. The server may answer (and close) before it has read all of a body over its limit:
    whatever it did not take is not sent, and the answer is read all the same."""
    host, port = url.removeprefix("http://").split(":")
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Transfer-Encoding: chunked",
            "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            for at in range(0, len(body), 65536):
                piece = body[at:at + 65536]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered already: read it below
        received = bytearray()
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    head_part, _, content = bytes(received).partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}, content


@pytest.fixture
def keys_file(tmp_path):
    signer = Signer()
    path = tmp_path / "github-keys.json"
    path.write_text(json.dumps({"public_keys": [
        {"key_identifier": signer.identifier, "key": signer.pem(), "is_current": True}]}))
    return signer, path


def test_chunked_bodies_over_the_limit_are_413_over_http(app, database_url, demo, tmp_path,
                                                         keys_file):
    signer, path = keys_file
    key = mint_key(app, demo.acme, demo.user("ava@acme.test"))
    leaked = mint_key(app, demo.acme, demo.user("ava@acme.test"), "Leaked")
    api = {**bearer(key), "Content-Type": "application/json"}
    mcp = {**api, "Accept": "application/json, text/event-stream"}
    over_api, whole_api = MIB + 10, MIB
    leak_over = padded(report(leaked), LEAK_LIMIT + 10)
    leak_whole = padded(report(leaked), LEAK_LIMIT)
    cases = [
        ("/api/v1/initiatives", padded({"title": "Cut"}, over_api), api, 413),
        ("/api/v1/initiatives", padded({"title": "Whole"}, whole_api), api, 201),
        ("/api/mcp", padded(INITIALIZE, over_api), mcp, 413),
        ("/api/mcp", padded(INITIALIZE, whole_api), mcp, 200),
        ("/api/secret-scanning", leak_over, signed(signer, leak_over), 413),
        ("/login", b"email=a%40b.test&password=" + b"x" * over_api,
         {"Content-Type": "application/x-www-form-urlencoded"}, 413),
        ("/api/secret-scanning", leak_whole, signed(signer, leak_whole), 200),
    ]
    with fvapp_server(database_url, tmp_path, SECRET_SCANNING_KEYS_FILE=str(path),
                      SECRET_SCANNING_MAX_BYTES=str(LEAK_LIMIT)) as server:
        answers = [chunked(server.url, p, body, headers) for p, body, headers, _ in cases]
    for (p, _, _, expected), (status, headers, content) in zip(cases, answers, strict=True):
        assert status == expected, (p, status, content[:300])
        if status == 413:
            if p.startswith("/api/"):
                envelope = json.loads(content)
                assert envelope["code"] == "PAYLOAD_TOO_LARGE", envelope
            else:
                assert headers["content-type"].startswith("text/html")
                assert b"That upload is too large." in content
    assert json.loads(answers[-1][2])[0]["label"] == "true_positive"
