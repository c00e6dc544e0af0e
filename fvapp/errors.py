"""Error pages for people, the JSON envelope for /api/: chosen at app level by path, because
routing errors (404/405) never reach a blueprint's handler."""

from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have access to this page.",
    404: "This page does not exist, or it is not yours to see.",
    405: "That action is not available here.",
    413: "That upload is too large.",
    429: "Too many attempts. Wait a minute and try again.",
    500: "Something went wrong on our side. It has been logged.",
    503: "The service is briefly unavailable. Try again in a few seconds.",
}


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _html(status: int, message: str | None = None, headers=None):
    title = {404: "Not found", 403: "No access", 409: "Workspace changed", 429: "Slow down",
             503: "Unavailable"}.get(
        status, "Something is off"
    )
    g.fv_context = None  # error pages never query the database (it may be the error)
    body = render_template(
        "errors/error.html", status=status, title=title, message=message or MESSAGES.get(status)
    )
    return body, status, headers or {}


def register_error_handlers(app: Flask) -> None:
    from .api.envelope import error_for_exception

    @app.errorhandler(CSRFError)
    def _csrf(error):
        if _is_api():  # the API is exempt; kept for completeness
            return error_for_exception(error)
        return _html(400, "Your form expired or was sent without its security token. "
                          "Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if _is_api():
            return error_for_exception(error)
        message = error.description if error.code in (403, 409) and error.description else None
        if error.code == 429:
            message = "Too many attempts. Wait a minute and try again."
        return _html(error.code or 500, message)

    @app.errorhandler(OperationalError)
    def _db_down(error):
        log.warning("database unavailable: %s", type(error).__name__)
        db.session.rollback()
        if _is_api():
            return error_for_exception(error)
        return _html(503, headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(error):
        if isinstance(error, HTTPException):
            return _http(error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        if _is_api():
            return error_for_exception(InternalServerError())
        return _html(500)
