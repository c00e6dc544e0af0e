"""The SPEC §5 envelope, for every /api/v1 response. (Filled out by the REST API issue.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import g, jsonify
from werkzeug.exceptions import HTTPException

CODES = {
    400: ("VALIDATION_ERROR", "The request is not valid"),
    401: ("UNAUTHORIZED", "A valid API key is required"),
    403: ("FORBIDDEN", "Your role does not allow this"),
    404: ("NOT_FOUND", "Resource not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    413: ("PAYLOAD_TOO_LARGE", "The body is larger than 1 MiB"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Send the body as application/json"),
    429: ("RATE_LIMITED", "Too many requests"),
    500: ("INTERNAL_ERROR", "Internal error"),
    503: ("SERVICE_UNAVAILABLE", "Service temporarily unavailable"),
}


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and Z."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def request_id() -> str:
    if "request_id" not in g:
        g.request_id = str(uuid.uuid4())
    return g.request_id


def _meta() -> dict:
    return {"requestId": request_id(), "timestamp": iso(datetime.now(UTC))}


def success(data, status: int = 200, headers: dict | None = None):
    response = jsonify({"success": True, "data": data, "meta": _meta()})
    response.status_code = status
    response.headers["X-Request-Id"] = request_id()
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def error(status: int, code: str | None = None, message: str | None = None, details=None,
          headers: dict | None = None):
    default_code, default_message = CODES.get(status, CODES[500])
    body = {"success": False, "error": message or default_message, "code": code or default_code}
    if details is not None:
        body["details"] = details
    body["meta"] = _meta()
    response = jsonify(body)
    response.status_code = status
    response.headers["X-Request-Id"] = request_id()
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def error_for_exception(exc: Exception):
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        if status not in CODES:
            status = 400 if 400 <= status < 500 else 500
        return error(status)
    if exc.__class__.__name__ == "OperationalError":
        return error(503, headers={"Retry-After": "5"})
    return error(500)
