"""GET /api/v1/docs: the API reference, rendered in the browser by Redoc (vendored from npm in
static/vendor/redoc, no CDN) from the public /api/v1/openapi.json, with the curl example of
each operation (its x-codeSamples). Public, like the OpenAPI document.

A blueprint of its own on the /api/v1 prefix: the page is not an API call, so the key hook of
the `api` blueprint does not run for it. Redoc injects its styles at run time and searches in a
blob: worker, so this page alone gets a CSP with style-src 'unsafe-inline' and worker-src blob:;
scripts stay 'self' only (no inline script on the page). Redoc's sidebar always shows its
vendor's logo (no option turns it off): img-src allows exactly that one file, nothing else.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from ..paths import SETTINGS_API_KEYS
from . import PREFIX

bp = Blueprint("api_docs", __name__, url_prefix=PREFIX)

DOCS_CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: https://cdn.redoc.ly/redoc/logo-mini.svg",
    "font-src 'self'",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])


@bp.get("/docs", provide_automatic_options=False)
def docs():
    response = render_template("api_docs.html", settings_url=SETTINGS_API_KEYS)
    return response, 200, {"Content-Security-Policy": DOCS_CSP}
