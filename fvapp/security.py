"""Security headers, set in one place for every response: register() is called by both apps,
the pages app (fvapp.create_app) and the API app (fvapp/api/app.py)."""

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


def add_headers(response, development: bool, extra: list[tuple[str, str]] | None = None):
    """`extra` (the API's rate-limit headers), the security headers the response does not set
    itself, HSTS on HTTPS outside development, and for anything but static files no-store and
    Vary, in one step."""
    h = response.headers
    present = {name.lower() for name, _ in h}  # one pass, not a lookup per header
    added = extra or []
    added += [pair for name, pair in _DEFAULTS_BY_NAME if name not in present]
    if not development and "strict-transport-security" not in present and request.is_secure:
        added.append(HSTS)
    if request.endpoint != "static":
        # Pages hold workspace data; nothing dynamic is cached by browsers or proxies.
        if "cache-control" not in present:
            added.append(NO_STORE)
        added += VARY
    h[len(h):] = added  # Headers' slice assignment: appended, each value checked, in one step
    return response
