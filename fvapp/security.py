"""Security headers, set in one place for every response: register() for the pages app
(fvapp.create_app: an after_request hook), ApiHeaders for the API app (fvapp/api/app.py: a WSGI
wrapper), the same headers in the same order."""

from __future__ import annotations

from flask import Flask, request

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


# Set on every response that does not set them itself.
DEFAULTS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
_DEFAULTS_BY_NAME = [(name.lower(), (name, value)) for name, value in DEFAULTS]


NO_STORE = ("Cache-Control", "no-store")
VARY = (("Vary", "HX-Request"), ("Vary", "Cookie"))


def register(app: Flask) -> None:
    """The headers on every answer of `app` (the pages app; the API app calls add_headers from
    its one after_request hook, fvapp/api/app.py)."""
    development = app.config["ENV_MODE"] == "development"

    @app.after_request
    def _headers(response):
        return add_headers(response, development)


def add_headers(response, development: bool):
    """The security headers the response does not set itself, HSTS on HTTPS outside
    development, and for anything but static files no-store and Vary, in one step."""
    h = response.headers
    added = missing({name.lower() for name, _ in h}, request.is_secure, development,
                    request.endpoint != "static")
    h[len(h):] = added  # Headers' slice assignment: appended, each value checked, in one step
    return response


def missing(present: set[str], secure: bool, development: bool, dynamic: bool) -> list:
    """The headers to add to an answer that has the headers named `present` (lower case)."""
    added = [pair for name, pair in _DEFAULTS_BY_NAME if name not in present]
    if not development and secure and "strict-transport-security" not in present:
        added.append(HSTS)
    if dynamic:
        # Pages and API answers hold workspace data: nothing is cached by browsers or proxies.
        if "cache-control" not in present:
            added.append(NO_STORE)
        added += VARY
    return added


class ApiHeaders:
    """The API app's security headers (the same as the pages', add_headers: every API answer is
    dynamic), as a WSGI wrapper: appended to the header list each answer starts with, errors
    and refusals included. Their values are this module's constants, so they go to the server
    as they are; a Werkzeug Headers object would check each one on every answer, twice (when
    added, and when the response copies its headers for the server)."""

    def __init__(self, wsgi_app, development: bool):
        self.wsgi_app, self.development = wsgi_app, development

    def __call__(self, environ, start_response):
        secure = environ.get("wsgi.url_scheme") in ("https", "wss")  # Request.is_secure

        def start_with_headers(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers.extend(missing(present, secure, self.development, True))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start_with_headers)
