"""Security headers, set in one place for every response."""

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


def register(app: Flask) -> None:
    @app.after_request
    def _headers(response):
        h = response.headers
        present = {name.lower() for name, _ in h.items()}  # one pass, not a lookup per header
        for name, value in DEFAULTS:
            if name.lower() not in present:
                h.add(name, value)
        if app.config["ENV_MODE"] != "development" and request.is_secure:
            h.setdefault(*HSTS)
        if request.endpoint != "static":
            # Pages hold workspace data; nothing dynamic is cached by browsers or proxies.
            if "cache-control" not in present:
                h.add("Cache-Control", "no-store")
            h.add("Vary", "HX-Request")
            h.add("Vary", "Cookie")
        return response
