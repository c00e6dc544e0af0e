"""For tests that reach /api/mcp over real HTTP: a live server thread, the MCP initialize call."""

from __future__ import annotations

import requests

from tests.support.net import live

__all__ = ["live", "post_initialize"]


def post_initialize(url, headers):
    return requests.post(url + "/api/mcp", timeout=10, headers={
        "Accept": "application/json, text/event-stream", **headers}, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}})
