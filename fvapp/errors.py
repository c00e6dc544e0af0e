"""Every error answer of the pages app, as a page for people. The API app answers its errors
in the SPEC §5 envelope (fvapp/api/app.py, fvapp/api/envelope.py); what a page answers for a
service's refusal is page_status_for_domain below, the API's is envelope.error_for_domain.
Whether the database is unavailable (503) is decided here for both (database_unavailable).
The messages the browser script shows when an htmx request fails are REQUEST_FAILURES below
(sent on every page).
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, render_template, request, session
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from .extensions import db
from .health import PATHS as HEALTH_PATHS
from .services.errors import DomainError, Forbidden, NotFound

log = logging.getLogger(__name__)

TOO_MANY = "Too many attempts. Wait a minute and try again."

MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have access to this page.",
    404: "This page does not exist, or it is not yours to see.",
    405: "That action is not available here.",
    413: "That upload is too large.",
    429: TOO_MANY,
    500: "Something went wrong on our side. It has been logged.",
    503: "The service is briefly unavailable. Try again in a few seconds.",
}

# What the page says when one of its htmx requests fails (static/js/app.js shows it; htmx swaps
# nothing on an error). By status; "other" for any other status (a proxy's 502 included),
# "offline" when the server could not be reached at all. Rendered into <body> by base.html.
REQUEST_FAILURES = {
    "400": "Your page has expired (its security token is no longer valid). "
           "Reload the page and try again.",
    "403": "You no longer have access to this. Reload the page.",
    "404": "This is no longer available: your role or the workspace's plan may have changed. "
           "Reload the page.",
    "409": "You switched workspace in another tab, so nothing was changed. "
           "Reload the page to continue.",
    "413": "That is too large to send.",
    "429": TOO_MANY,
    "other": "Something went wrong on our side. Try again in a moment.",
    "offline": "ForceVue could not be reached. Check your connection and try again.",
}


def page_status_for_domain(exc: DomainError) -> int | None:
    """The page answer to a service's refusal a view let through: 404 when the thing is not
    there for this person — and when they may not touch it (Forbidden): pages never reveal
    that something hidden from someone exists. None for the other refusals, which a view must
    show on its form (one reaching here is a bug: a 500). The API's mapping, which does say
    403, is fvapp/api/envelope.py's error_for_domain."""
    if isinstance(exc, (NotFound, Forbidden)):
        return 404
    return None


RETRY_AFTER = {"Retry-After": "5"}  # seconds, after the database was unavailable

# The database cannot serve us right now: refused or lost connections (OperationalError, and a
# pool_pre_ping that keeps failing: DisconnectionError), or every pooled connection busy for
# pool_timeout seconds (TimeoutError). Not a bug: 503 and "retry", never a 500.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.DisconnectionError, sa_exc.TimeoutError)


def database_unavailable(error: BaseException) -> bool:
    # Any other driver error counts when SQLAlchemy recognised it as a lost connection (e.g. an
    # InterfaceError "connection already closed"); otherwise it is a bug, and a 500.
    return isinstance(error, DATABASE_UNAVAILABLE) or (
        isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated
    )


def _html(status: int, message: str | None = None, headers=None):
    title = {404: "Not found", 403: "No access", 409: "Workspace changed", 429: "Slow down",
             503: "Unavailable"}.get(
        status, "Something is off"
    )
    g.fv_context = None  # error pages never query the database (it may be the error)
    if status != 503:
        body = render_template(
            "errors/error.html", status=status, title=title,
            message=message or MESSAGES.get(status), in_shell=current_user.is_authenticated,
        )
        return body, status, headers or {}
    # With the database gone, the page is rendered from its template alone, without the app's
    # context processors: Flask-Login's loads current_user (a query, or the reload of one the
    # rollback expired), which would fail again inside this handler and leave a bare 500. So
    # the page shows an anonymous user; the session, and so the login, is untouched, and the
    # session alone says whether the page sits in the app shell.
    app = current_app
    body = app.jinja_env.get_template("errors/error.html").render(
        status=status, title=title, message=message or MESSAGES.get(status),
        in_shell=bool(session.get("_user_id")), request=request, session=session, g=g,
        config=app.config, ctx=None, current_user=app.login_manager.anonymous_user(),
    )
    return body, status, headers or {}


def register_error_handlers(app: Flask) -> None:
    app.jinja_env.globals["REQUEST_FAILURES"] = REQUEST_FAILURES  # base.html sends them

    @app.errorhandler(CSRFError)
    def _csrf(exc):
        return _html(400, "Your form expired or was sent without its security token. "
                          "Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if request.path in HEALTH_PATHS:  # no session there, so no HTML page (it needs CSRF)
            return {"status": "error", "error": exc.name}, exc.code or 500
        message = exc.description if exc.code in (403, 409) and exc.description else None
        headers = None
        if exc.code == 429:  # every 429 says when to come back (SPEC §7); MESSAGES says what
            retry_after = getattr(exc, "retry_after", None)
            seconds = retry_after if isinstance(retry_after, int) else 60
            headers = {"Retry-After": str(max(1, seconds))}
        return _html(exc.code or 500, message, headers)

    @app.errorhandler(Exception)
    def _exception(exc):
        if isinstance(exc, HTTPException):
            return _http(exc)
        if database_unavailable(exc):
            log.warning("database unavailable: %s", type(exc).__name__)
            db.session.rollback()
            return _html(503, headers=RETRY_AFTER)
        if isinstance(exc, DomainError):
            status = page_status_for_domain(exc)
            if status:
                return _html(status)
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        return _html(500)
