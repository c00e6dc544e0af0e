"""The SPEC §5 envelope: every /api/v1 response, success or error, is built here, and with it
the X-Request-Id header (the same value as meta.requestId)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import Response, request
from pydantic import BaseModel
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..formatting import iso
from ..request_log import REQUEST_ID
from ..services import key_auth
from ..services.errors import DomainError, Forbidden, NotFound
from .schemas import CODES, PAID_PLAN_REQUIRED, ErrorDetail, ErrorResponse, Meta

__all__ = ["ApiError", "ApiResponse", "error", "error_for_domain", "error_for_exception",
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


class ApiResponse(Response):
    """Every envelope's response. Its WSGI headers are its own headers when Werkzeug would change
    none of them: no Location or Content-Location to make absolute, no status whose
    Content-Length goes (1xx, 204, 304), Content-Length already set (set_data sets it).
    Werkzeug's own get_wsgi_headers copies them into a new Headers, checking every value again;
    otherwise it runs as usual. Same headers, same order (tests/test_api_hot_path.py)."""

    def get_wsgi_headers(self, environ) -> Headers:
        status = self.status_code
        if status < 200 or status in (204, 304):
            return super().get_wsgi_headers(environ)
        has_length = False
        for name, _ in self.headers:
            name = name.lower()
            if name == "content-length":
                has_length = True
            elif name in _REWRITTEN:
                return super().get_wsgi_headers(environ)
        if not has_length:
            return super().get_wsgi_headers(environ)
        return _unchecked(self.headers._list)  # checked as they were added


_REWRITTEN = frozenset({"location", "content-location"})
_JSON = ("Content-Type", "application/json")


def _unchecked(pairs: list[tuple[str, str]]) -> Headers:
    """Headers holding these (name, value) pairs as they are, each value's check for line
    breaks (Headers.add) skipped: only for values that were checked already or made here."""
    headers = Headers()
    headers._list = list(pairs)
    return headers


def _response(body: str, status: int, rid: str, headers: dict | None) -> ApiResponse:
    """The response with its Content-Type, Content-Length and X-Request-Id (a uuid4 of ours)
    given up front, rather than set one by one (each set scans and checks the headers again),
    then `headers`: the order Werkzeug's constructor and the sets gave them."""
    data = body.encode()
    given = _unchecked([_JSON, ("Content-Length", str(len(data))), ("X-Request-Id", rid)])
    if headers:
        given.extend(headers)  # values from elsewhere: checked
    return ApiResponse(data, status=status, headers=given)


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
