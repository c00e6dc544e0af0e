"""The request hook of /api/v1: rate limits and the Bearer key, before any view runs.

Order, per request: the failed-authentication budget of the caller's IP (refused before any
database work), then the key (one indexed query), then the key's own rate limit. The browser
session plays no part: under /api/ it is not even opened (see SessionInterface).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import current_app, g, request
from flask_limiter.util import get_remote_address

from ..extensions import limiter
from ..services import key_auth
from ..services.key_auth import Principal
from . import bp

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = {"api.openapi"}


def _failed_authentication(response) -> bool:
    return response.status_code == 401


@limiter.shared_limit(
    lambda: current_app.config["API_AUTH_FAILURE_LIMIT"],
    scope="api-auth-failures",
    key_func=get_remote_address,
    deduct_when=_failed_authentication,  # only 401s are counted; the check runs on every call
)
def _check_failure_budget() -> None:
    """429 for an address that failed authentication too often, whatever key it sends now."""


@limiter.shared_limit(
    lambda: current_app.config["API_RATE_LIMIT"],
    scope="api-key",
    key_func=lambda: g.api_principal.key_id.hex,
)
def _count_key_request() -> None:
    """One request against the key's limit, shared by every endpoint (and, through Redis,
    by every process)."""


def current_principal() -> Principal:
    return g.api_principal


@bp.before_request
def authenticate():
    g.api_principal = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    _check_failure_budget()
    g.api_principal = key_auth.authenticate(
        request.headers.get("Authorization"),
        touch_every=timedelta(seconds=current_app.config["API_KEY_TOUCH_SECONDS"]),
    )
    _count_key_request()


@bp.after_request
def rate_limit_headers(response):
    current = limiter.current_limit
    if current is None or not (g.get("api_principal") or response.status_code == 429):
        return response
    try:
        reset_at, remaining = current.reset_at, current.remaining
    except Exception:  # the storage went away mid-request: the headers are best effort
        log.warning("rate-limit storage unavailable; no X-RateLimit headers", exc_info=True)
        return response
    response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(max(0, remaining))
    response.headers["X-RateLimit-Reset"] = str(reset_at)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, reset_at - int(time.time())))
    return response
