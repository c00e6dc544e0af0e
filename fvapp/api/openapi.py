"""GET /api/v1/openapi.json, generated from the operations and their pydantic models."""

from __future__ import annotations

import json
from functools import cache

from pydantic.json_schema import models_json_schema

from .operations import OPERATIONS, Operation
from .schemas import Envelope, ErrorResponse

REF = "#/components/schemas/{model}"

HEADERS = {
    "X-Request-Id": {"description": "Equals meta.requestId.",
                     "schema": {"type": "string", "format": "uuid"}},
    "WWW-Authenticate": {"description": "Always `Bearer`.", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer", "minimum": 0}},
    "X-RateLimit-Limit": {"description": "Requests allowed per window for this key.",
                          "schema": {"type": "integer", "minimum": 0}},
    "X-RateLimit-Remaining": {"description": "Requests left in the current window.",
                              "schema": {"type": "integer", "minimum": 0}},
    "X-RateLimit-Reset": {"description": "When the window resets (Unix time, seconds).",
                          "schema": {"type": "integer", "minimum": 0}},
}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

ERRORS = {  # status: (description, headers always sent besides X-Request-Id)
    400: ("VALIDATION_ERROR: bad JSON, query parameter or field, with `details`.", ()),
    401: ("UNAUTHORIZED: missing, malformed, unknown or revoked key, or its creator left the "
          "workspace.", ("WWW-Authenticate",)),
    403: ("PAID_PLAN_REQUIRED: the key's workspace is on the free plan. FORBIDDEN: the key's "
          "creator may not do this.", ()),
    404: ("NOT_FOUND: no such resource in the key's workspace.", ()),
    413: ("PAYLOAD_TOO_LARGE: body over 1 MiB.", ()),
    415: ("UNSUPPORTED_MEDIA_TYPE: the body is not application/json.", ()),
    429: ("RATE_LIMITED: too many requests for this key, or too many failed "
          "authentications from this address.", ("Retry-After", *RATE_HEADERS)),
    500: ("INTERNAL_ERROR.", ()),
    503: ("SERVICE_UNAVAILABLE: the database is unreachable; retry.", ("Retry-After",)),
}

DESCRIPTION = """\
The REST API of a ForceVue workspace. Every request runs in the key's workspace and acts as the
user who created the key. Every response is a JSON envelope with `meta.requestId` (also the
`X-Request-Id` header); timestamps are ISO-8601 UTC with milliseconds and `Z`.

# Authentication

Create a key on Settings → API Keys and send it on every request:
`Authorization: Bearer fvk_live_…`. Only that header authenticates: not a browser session, not
`X-API-Key`, not a key in the URL. A missing, malformed, unknown or revoked key answers 401
`UNAUTHORIZED`; a workspace on the free plan answers 403 `PAID_PLAN_REQUIRED`.

# Errors

Errors use the same envelope: `{"success": false, "error", "code", "details"?, "meta"}`.
`details` lists `{field, message}` on validation errors.

| status | code |
|---|---|
""" + "\n".join(f"| {status} | {text} |" for status, (text, _) in ERRORS.items()) + "\n"

# Operations are grouped by resource (the first segment of their path), in this order.
TAGS = [
    {"name": "Me", "description": "The key and the user it acts as."},
    {"name": "Initiatives", "description": "ForceVue's product efforts: list, create, read, update."},
]


def _tag(op: Operation) -> str:
    return op.path.strip("/").split("/")[0].capitalize()


def _header_refs(names, required=True) -> dict:
    return {name: {"$ref": f"#/components/headers/{name}", "required": required} for name in names}


def _error_statuses(op: Operation) -> list[int]:
    statuses = [401, 403, 429, 500, 503]
    if op.query or op.body:
        statuses.append(400)
    if op.path_parameters:
        statuses.append(404)
    if op.body:
        statuses += [413, 415]
    return sorted(statuses)


def _parameters(op: Operation) -> list[dict]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
        for name in op.path_parameters
    ]
    if op.query is not None:
        query = op.query.model_json_schema(ref_template=REF)
        for name, schema in query["properties"].items():
            parameters.append({"name": name, "in": "query", "required": False,
                               "description": schema.pop("description", ""), "schema": schema})
    return parameters


_EXAMPLE_VALUES = {"title": "Launch v2", "description": "From a script", "archived": True,
                   "limit": 10, "offset": 0}


def _curl(op: Operation) -> str:
    """A curl example for one operation (shown by the reference page at /api/v1/docs)."""
    path = op.path
    for name in op.path_parameters:
        path = path.replace("{" + name + "}", "$" + name.upper())
    lines = ["curl -s"]
    if op.method != "get":
        lines[0] += f" -X {op.method.upper()}"
    lines.append('-H "Authorization: Bearer $FVAPP_KEY"')
    if op.query is not None:
        query = {**_EXAMPLE_VALUES, "archived": "false"}
        path += "?" + "&".join(f"{name}={query.get(name, '')}" for name in op.query.model_fields)
    if op.body is not None:
        body = {name: _EXAMPLE_VALUES[name] for name in op.body.model_fields
                if name in _EXAMPLE_VALUES}
        if op.method == "patch":
            body = {"archived": True}
        lines.append("-H 'Content-Type: application/json'")
        lines.append(f"-d '{json.dumps(body)}'")
    lines.append(f'"$FVAPP{path}"')  # FVAPP=https://…/api/v1, as in the README
    return " \\\n     ".join(lines)


def _operation(op: Operation, names: dict) -> dict:
    success = {
        "description": "Success.",
        "headers": {**_header_refs(["X-Request-Id"]), **_header_refs(RATE_HEADERS, required=False)},
        "content": {"application/json": {"schema": {"$ref": names[(Envelope[op.response], "serialization")]}}},
    }
    spec = {
        "operationId": op.name,
        "summary": op.summary,
        "tags": [_tag(op)],
        "parameters": _parameters(op),
        "responses": {str(op.status): success}
        | {str(status): {"$ref": f"#/components/responses/{status}"} for status in _error_statuses(op)},
        "x-codeSamples": [{"lang": "Shell", "label": "curl", "source": _curl(op)}],
    }
    if op.description:
        spec["description"] = op.description
    if op.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": names[(op.body, "validation")]}}},
        }
    return spec


@cache
def document() -> dict:
    models = {(Envelope[op.response], "serialization") for op in OPERATIONS}
    models |= {(op.body, "validation") for op in OPERATIONS if op.body is not None}
    models.add((ErrorResponse, "serialization"))
    models = sorted(models, key=lambda pair: (pair[0].__name__, pair[1]))
    keys, top = models_json_schema(models, ref_template=REF)
    names = {pair: schema["$ref"] for pair, schema in keys.items()}

    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, names)
    error_ref = names[(ErrorResponse, "serialization")]
    return {
        "openapi": "3.1.0",
        "info": {"title": "ForceVue REST API", "version": "1.0.0", "description": DESCRIPTION},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "fvk_live_…",
                               "description": "An API key from Settings → API Keys."}
            },
            "schemas": top["$defs"],
            "headers": HEADERS,
            "responses": {
                str(status): {
                    "description": description,
                    "headers": _header_refs(["X-Request-Id", *headers]),
                    "content": {"application/json": {"schema": {"$ref": error_ref}}},
                }
                for status, (description, headers) in ERRORS.items()
            },
        },
    }
