"""For tests of body limits (SPEC §11): bodies of an exact size, signed leak-report headers."""

from __future__ import annotations

import json

MIB = 1024 * 1024
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def padded(document, size: int) -> bytes:
    """`document` as JSON followed by spaces up to `size` bytes: valid JSON whatever its length,
    and still valid when cut anywhere after the document, so only the status tells a cut body
    from a whole one."""
    raw = json.dumps(document).encode()
    return raw + b" " * (size - len(raw))


def signed(signer, body: bytes) -> dict:
    return {"Content-Type": "application/json", "Github-Public-Key-Identifier": signer.identifier,
            "Github-Public-Key-Signature": signer.sign(body)}
