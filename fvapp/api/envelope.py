"""The SPEC §5 envelope: every /api/v1 response, success or error, is built here, and with it
the X-Request-Id header (the same value as meta.requestId)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import Response, request
from pydantic import BaseModel
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..formatting import iso
from ..request_log import REQUEST_ID
from ..services import key_auth
from ..services.errors import DomainError, Forbidden, NotFound
from .schemas import CODES, PAID_PLAN_REQUIRED, ErrorDetail, ErrorResponse, Meta

__all__ = ["ApiError", "error", "error_for_domain", "error_for_exception",
           "request_id", "success"]


class ApiError(Exception):
    """Raised by API code to answer with an error envelope."""

    def __init__(self, status: int, code: str | None = None, message: str | None = None,
                 details: list[dict] | None = None, headers: dict | None = None):
        super().__init__(message or code or status)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers


def request_id() -> str:
    """One uuid4 per request, kept on the request itself (never shared with another): the one
    fvapp/request_log.py assigned and logs, or a new one when request logging is off."""
    environ = request.environ
    if REQUEST_ID not in environ:
        environ[REQUEST_ID] = str(uuid.uuid4())
    return environ[REQUEST_ID]


def _meta() -> Meta:
    return Meta(requestId=request_id(), timestamp=datetime.now(UTC))


_JSON = "application/json"


def _response(body: str, status: int, rid: str, headers: dict | None) -> Response:
    """The response: its JSON body, Content-Type, Content-Length and X-Request-Id (the same
    value as meta.requestId), then `headers`."""
    response = Response(body, status=status, content_type=_JSON)
    added = [("X-Request-Id", rid)]
    if headers:
        added += headers.items()
    h = response.headers
    h[len(h):] = added  # Headers' slice assignment: appended, each value checked, in one step
    return response


def _respond(body: BaseModel, status: int, headers: dict | None, **dump) -> Response:
    return _response(body.model_dump_json(**dump), status, request_id(), headers)


def success(data: BaseModel, status: int = 200, headers: dict | None = None) -> Response:
    """Envelope[type(data)] as JSON. Written out here rather than built as that model and
    dumped: the same bytes (pydantic's compact JSON for `data`; requestId and timestamp need no
    escaping) for a fraction of the cost, on every successful call."""
    rid = request_id()
    body = (f'{{"success":true,"data":{data.model_dump_json()},'
            f'"meta":{{"requestId":"{rid}","timestamp":"{iso(datetime.now(UTC))}"}}}}')
    return _response(body, status, rid, headers)


def error(status: int, code: str | None = None, message: str | None = None, details=None,
          headers: dict | None = None) -> Response:
    default_code, default_message = CODES.get(status, CODES[500])
    fields = {"success": False, "error": message or default_message, "code": code or default_code,
              "meta": _meta()}
    if details is not None:
        fields["details"] = [ErrorDetail(**d) for d in details]
    # exclude_unset: `details` is left out, not null, when there are none
    return _respond(ErrorResponse(**fields), status, headers, exclude_unset=True)


def error_for_domain(exc: DomainError) -> Response:
    """A refusal from a service, in the envelope: the one mapping from domain errors to HTTP."""
    if isinstance(exc, key_auth.KeyRejected):
        return error(401, message=exc.message, headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, key_auth.PlanRequired):
        return error(403, PAID_PLAN_REQUIRED, exc.message)
    if isinstance(exc, NotFound):
        return error(404, message=exc.message)
    if isinstance(exc, Forbidden):
        return error(403, message=exc.message)
    return error(400, message="The request is not valid",
                 details=[{"field": exc.field or "body", "message": exc.message}])


def error_for_exception(exc: Exception) -> Response:
    """The answer to an exception raised while serving the API: its own refusals (ApiError), the
    services' (DomainError) and HTTP errors (routing 404/405, 413, 415…); anything else is a 500.
    Called by the app-level handlers in fvapp/errors.py, which decide 503 and log the 500s."""
    if isinstance(exc, ApiError):
        return error(exc.status, exc.code, exc.message, exc.details, exc.headers)
    if isinstance(exc, DomainError):
        return error_for_domain(exc)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        if status not in CODES:
            status = 400 if 400 <= status < 500 else 500
        headers = None
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers = {"Allow": ", ".join(sorted(exc.valid_methods))}
        return error(status, headers=headers)
    return error(500)
