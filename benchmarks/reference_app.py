"""The thinnest implementation of the API operations `make bench` measures, that Flask + psycopg
allow, to compare fvapp against: the same operations on fvapp's schema (in a database of its
own), the same work, nothing more.

Every request: Bearer → SHA-256 → one indexed SELECT of the key joined to its workspace (plan),
its creator and the creator's membership (401 unknown/revoked/creator gone, 403 plan without API
access), then the operation's one statement (SELECT, INSERT … RETURNING or UPDATE … RETURNING)
and the §5 envelope as compact JSON, with the same fields in the same order as fvapp's answer
(tests/ops/test_bench_reference_is_the_same_operation.py checks the shapes). One autocommit connection per process, no
cache, no rate limit, no last_used_at write.

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
app.config["REFERENCE_DATABASE_URL"] = os.environ.get("REFERENCE_DATABASE_URL")

API_PLANS = ("pro", "team", "consultant", "internal")
TITLE_MAX, DESCRIPTION_MAX = 200, 10_000
KEY_SQL = (
    "SELECT k.id, k.name, k.prefix, k.created_at, k.last_used_at, k.revoked_at,"
    " u.id, u.email, u.name, w.id, w.name, w.plan, m.role, {expiry}"
    " FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id"
    " JOIN users u ON u.id = k.created_by_id LEFT JOIN memberships m"
    " ON m.user_id = k.created_by_id AND m.workspace_id = k.workspace_id WHERE k.key_hash = %s"
)
# A schema without key expiry (an older checkout measured with --app-dir): no expiry to check.
EXPIRY = {True: "k.expires_at <= now(), k.expires_at", False: "false, NULL::timestamptz"}
HAS_EXPIRY_SQL = ("SELECT EXISTS (SELECT 1 FROM information_schema.columns"
                  " WHERE table_name = 'api_keys' AND column_name = 'expires_at')")
_key_sql: str | None = None
LIST_SQL = {  # active or archived initiatives, newest first
    "false": "SELECT id, title, description, archived_at, created_at, updated_at FROM initiatives"
             " WHERE workspace_id = %s AND archived_at IS NULL"
             " ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
    "true": "SELECT id, title, description, archived_at, created_at, updated_at FROM initiatives"
            " WHERE workspace_id = %s AND archived_at IS NOT NULL"
            " ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
}
GET_SQL = ("SELECT id, title, description, archived_at, created_at, updated_at FROM initiatives"
           " WHERE id = %s AND workspace_id = %s")
INSERT_SQL = ("INSERT INTO initiatives (id, workspace_id, created_by_id, title, description,"
              " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, now(), now())"
              " RETURNING id, title, description, archived_at, created_at, updated_at")
UPDATE_SQL = ("UPDATE initiatives SET {} WHERE id = %s AND workspace_id = %s"
              " RETURNING id, title, description, archived_at, created_at, updated_at")
_connection: psycopg.Connection | None = None


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def connection() -> psycopg.Connection:
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(app.config["REFERENCE_DATABASE_URL"], autocommit=True)
    return _connection


def close() -> None:
    """Close this process's connection (the next request opens another)."""
    if _connection is not None:
        _connection.close()


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def envelope(status: int, fields: str) -> Response:
    request_id = str(uuid.uuid4())
    body = (f'{{{fields},"meta":{{"requestId":"{request_id}",'
            f'"timestamp":"{iso(datetime.now(UTC))}"}}}}')
    return Response(body, status=status, mimetype="application/json",
                    headers={"X-Request-Id": request_id})


def success(data: dict, status: int = 200) -> Response:
    return envelope(status, '"success":true,"data":' + json.dumps(data, separators=(",", ":"), ensure_ascii=False))


@app.errorhandler(Refused)
def refused(exc: Refused) -> Response:
    fields = json.dumps({"success": False, "error": exc.message, "code": exc.code},
                        separators=(",", ":"), ensure_ascii=False)[1:-1]
    response = envelope(exc.status, fields)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def key_sql() -> str:
    """The key check's SELECT for this database's schema (looked up once per process)."""
    global _key_sql
    if _key_sql is None:
        has_expiry = connection().execute(HAS_EXPIRY_SQL).fetchone()[0]
        _key_sql = KEY_SQL.format(expiry=EXPIRY[has_expiry])
    return _key_sql


def principal() -> tuple:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "UNAUTHORIZED", "Send your API key.")
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    row = connection().execute(key_sql(), (digest,)).fetchone()
    if row is None or row[5] is not None or row[12] is None or row[13]:
        raise Refused(401, "UNAUTHORIZED", "This API key is not valid.")
    if row[11] not in API_PLANS:
        raise Refused(403, "PAID_PLAN_REQUIRED", "API access needs a paid plan.")
    return row


def initiative(row: tuple) -> dict:
    return {"id": str(row[0]), "title": row[1], "description": row[2],
            "archived": row[3] is not None, "archived_at": iso(row[3]),
            "created_at": iso(row[4]), "updated_at": iso(row[5])}


def text(body: dict, name: str, limit: int, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit:
        raise Refused(400, "VALIDATION_ERROR", f"{name}: 1–{limit} characters.")
    return value.strip()


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused(400, "VALIDATION_ERROR", "Send a JSON object.")
    return body


def initiative_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Refused(404, "NOT_FOUND", "Initiative not found.") from None


@app.get("/api/v1/me")
def me():
    p = principal()
    return success({
        "user": {"id": str(p[6]), "email": p[7], "name": p[8]},
        "role": p[12],
        "workspace": {"id": str(p[9]), "name": p[10], "plan": p[11]},
        "api_key": {"id": str(p[0]), "name": p[1], "prefix": p[2], "created_at": iso(p[3]),
                    "last_used_at": iso(p[4]), "expires_at": iso(p[14])},
    })


@app.get("/api/v1/initiatives")
def list_initiatives():
    p = principal()
    try:
        limit = int(request.args.get("limit", 20))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        raise Refused(400, "VALIDATION_ERROR", "limit and offset are integers.") from None
    archived = request.args.get("archived", "false")
    if not 1 <= limit <= 100 or offset < 0 or archived not in ("true", "false"):
        raise Refused(400, "VALIDATION_ERROR", "archived true/false, limit 1–100, offset ≥ 0.")
    rows = connection().execute(LIST_SQL[archived], (p[9], limit + 1, offset)).fetchall()
    return success({"items": [initiative(row) for row in rows[:limit]],
                    "pagination": {"limit": limit, "offset": offset,
                                   "has_more": len(rows) > limit}})


@app.post("/api/v1/initiatives")
def create_initiative():
    p = principal()
    body = json_body()
    title = text(body, "title", TITLE_MAX, True)
    description = text(body, "description", DESCRIPTION_MAX, False)
    row = connection().execute(INSERT_SQL, (uuid.uuid4(), p[9], p[6], title, description)).fetchone()
    return success(initiative(row), 201)


@app.get("/api/v1/initiatives/<raw_id>")
def get_initiative(raw_id: str):
    p = principal()
    row = connection().execute(GET_SQL, (initiative_id(raw_id), p[9])).fetchone()
    if row is None:
        raise Refused(404, "NOT_FOUND", "Initiative not found.")
    return success(initiative(row))


@app.patch("/api/v1/initiatives/<raw_id>")
def update_initiative(raw_id: str):
    p = principal()
    body = json_body()
    sets, values = [], []
    if "title" in body:
        sets.append("title = %s")
        values.append(text(body, "title", TITLE_MAX, True))
    if "description" in body:
        sets.append("description = %s")
        values.append(text(body, "description", DESCRIPTION_MAX, False))
    if "archived" in body:
        if not isinstance(body["archived"], bool):
            raise Refused(400, "VALIDATION_ERROR", "archived: true or false.")
        sets.append("archived_at = CASE WHEN %s THEN COALESCE(archived_at, now()) END")
        values.append(body["archived"])
    sets.append("updated_at = now()")
    sql = UPDATE_SQL.format(", ".join(sets))  # fixed fragments; the values are parameters
    row = connection().execute(sql, (*values, initiative_id(raw_id), p[9])).fetchone()
    if row is None:
        raise Refused(404, "NOT_FOUND", "Initiative not found.")
    return success(initiative(row))
