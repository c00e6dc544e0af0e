"""For tests of /api/v1 and /api/mcp: real keys, a client that sends them, the envelope assertions."""

from __future__ import annotations

import re
import uuid

from fvapp.services import keys

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def mint_key(app, workspace, user, name="CI pipeline") -> str:
    """A real key made by the service the Settings page uses, in an app context of its own (a
    test that sends requests holds none); returns the clear key."""
    with app.app_context():
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
