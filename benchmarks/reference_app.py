"""The thinnest GET /api/v1/me that Flask + psycopg allow, to compare fvapp against (make bench):
Bearer → SHA-256 → one indexed join (fvapp's schema, in its own database) → the envelope.
One autocommit connection per process, prepared statement. No rate limit, no last_used_at.

    REFERENCE_DATABASE_URL=postgresql://… gunicorn -w 2 benchmarks.reference_app:app
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import UTC, datetime

import psycopg
from flask import Flask, Response, request

app = Flask(__name__)
SQL = (
    "SELECT k.id, k.name, k.prefix, k.revoked_at, w.id, w.name, w.plan, u.id, u.email, u.name,"
    " m.role FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id"
    " JOIN users u ON u.id = k.created_by_id LEFT JOIN memberships m"
    " ON m.user_id = k.created_by_id AND m.workspace_id = k.workspace_id WHERE k.key_hash = %s"
)
_connection: psycopg.Connection | None = None


def connection() -> psycopg.Connection:
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["REFERENCE_DATABASE_URL"], autocommit=True,
                                      prepare_threshold=0)
    return _connection


def envelope(status: int, body: dict) -> Response:
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    body["meta"] = {"requestId": request_id, "timestamp": now}
    return Response(json.dumps(body), status=status, mimetype="application/json",
                    headers={"X-Request-Id": request_id})


@app.get("/api/v1/me")
def me():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return envelope(401, {"success": False, "error": "no key", "code": "UNAUTHORIZED"})
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    row = connection().execute(SQL, (digest,)).fetchone()
    if row is None or row[3] is not None or row[10] is None:
        return envelope(401, {"success": False, "error": "bad key", "code": "UNAUTHORIZED"})
    data = {"key": {"id": str(row[0]), "name": row[1], "prefix": row[2]},
            "workspace": {"id": str(row[4]), "name": row[5], "plan": row[6]},
            "user": {"id": str(row[7]), "email": row[8], "name": row[9], "role": row[10]}}
    return envelope(200, {"success": True, "data": data})
