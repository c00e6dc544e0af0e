"""The request hook of /api/v1: the Bearer key and its rate limit, before any view runs.

Top to bottom: parse the header (no database work for a missing or malformed key); read the key
(one SELECT); a request that does not authenticate counts against its address's budget of
failed authentications (fvapp/ratelimit: 401, or 429 once the address is over it); one that
does is judged by its key's own limit alone (a token this process leased for the key, or one
Redis round trip; 429 when over it), never by its address's failures, so a valid key behind a
shared address is not locked out by its neighbours. Then the plan (a 403 counts against the
key's limit) and last_used_at. A key this process refused lately is asked about first: a
refused flood of a valid key costs the database nothing. After the view, the answer is counted
for its key in process memory (fvapp/usage/counting.py: no database or Redis work).
"""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

from flask import current_app, g, request
from werkzeug.exceptions import TooManyRequests

from .. import ratelimit, usage
from ..ratelimit import ApiLimiter
from ..services import key_auth
from ..services.key_auth import KeyRejected, PlanRequired, Principal
from . import bp

PUBLIC_ENDPOINTS = {"api.openapi"}
EXTENSION = "fvapp_api_limiter"


@bp.record_once
def _create_limiter(state) -> None:
    state.app.extensions[EXTENSION] = ratelimit.api_limiter(state.app)


def current_principal() -> Principal:
    return g.api_principal


def _failed(api_limiter: ApiLimiter, address: str, rejected: KeyRejected) -> NoReturn:
    """A failed authentication: 401, or 429 when the address is over its failure budget."""
    decision = api_limiter.fail(address)
    if not decision.allowed:
        g.api_rate = decision
        raise TooManyRequests()
    raise rejected


def _admit(api_limiter: ApiLimiter, digest: str, key_id=None) -> None:
    """The key's own limit: 429 when it is over it (counted for the key, when it was read)."""
    decision = g.api_rate = api_limiter.admit(digest)
    if not decision.allowed:
        g.api_key_id = key_id
        raise TooManyRequests()


@bp.before_request
def authenticate():
    g.api_principal = g.api_rate = g.api_key_id = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    api_limiter: ApiLimiter = current_app.extensions[EXTENSION]
    address = request.remote_addr or "unknown"  # the client's, as ProxyFix decides
    try:
        key_hash = key_auth.candidate_hash(request.headers.get("Authorization"))
    except KeyRejected as rejected:  # no key, or a malformed one: no database work
        _failed(api_limiter, address, rejected)
    digest = key_hash[:32]
    asked_first = api_limiter.recently_refused(digest)
    if asked_first:  # asked first: a refused flood of a valid key reads no database
        _admit(api_limiter, digest)
    try:
        principal = key_auth.principal_for(key_hash)
    except KeyRejected as rejected:  # unknown, revoked, or its creator left
        g.api_rate, g.api_key_id = None, rejected.key_id
        _failed(api_limiter, address, rejected)
    if not asked_first:
        _admit(api_limiter, digest, principal.key_id)
    try:
        g.api_principal = key_auth.accept(
            principal, timedelta(seconds=current_app.config["API_KEY_TOUCH_SECONDS"]),
            ip=request.remote_addr, user_agent=request.headers.get("User-Agent"))
    except PlanRequired:
        g.api_key_id = principal.key_id
        raise


def finish(response):
    """After any API request (the API app's after_request, fvapp/api/app.py): the X-RateLimit-*
    headers, then the answer counted for its key (requests per key per day, in memory:
    fvapp/usage/counting.py). Nothing for a request the hook did not read a key for."""
    return count_usage(rate_limit_headers(response))


def count_usage(response):
    """Count the answer for its key (requests per key per day, fvapp/usage/counting.py): the key it
    authenticated as, else, for a refused request, the key whose row was read (revoked, creator
    removed, plan, rate limit). A key nobody has counts for nobody. No database or Redis work:
    a dict increment."""
    principal = g.get("api_principal")
    key_id = principal.key_id if principal is not None else g.get("api_key_id")
    if key_id is not None:
        usage.aggregator().add(key_id, response.status_code)
    return response


def rate_limit_headers(response):
    decision = g.get("api_rate")
    if decision is None or not (g.get("api_principal")
                                or response.status_code in (403, 429)):
        return response
    headers = response.headers
    headers.extend((("X-RateLimit-Limit", str(decision.limit)),  # none yet: no set (scans)
                    ("X-RateLimit-Remaining", str(decision.remaining)),
                    ("X-RateLimit-Reset", str(decision.reset))))
    if response.status_code == 429:
        headers["Retry-After"] = str(decision.retry_after)
    return response
