"""For tests that reach /api/mcp over real HTTP: a live server thread, the MCP initialize call."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import requests
from werkzeug.serving import make_server


@contextmanager
def live(application):
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def post_initialize(url, headers):
    return requests.post(url + "/api/mcp", timeout=10, headers={
        "Accept": "application/json, text/event-stream", **headers}, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}})
