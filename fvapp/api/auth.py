"""The request hook of /api/v1: rate limits and the Bearer key, before any view runs.

Per request with a well-formed key: one call to the rate limiter (fvapp/ratelimit.py: it counts
the request against the key's limit, keyed by the key's SHA-256, with a token this process
leased for the key, no round trip; or else one Redis round trip that reads the caller IP's
failed-authentication budget and leases tokens) and the key's read (one indexed query),
overlapped: the limiter's script is sent first and its verdict read once the row is in, before
the row is judged (so a refused request gets 429 whatever its key, and writes nothing). A plan
refusal (403) therefore counts against the key's limit; a 401 also counts against the address's
failure budget (one more call, on failures only). After the view, the answer is counted
for its key in process memory (fvapp/usage.py: no database or Redis work). An address or key this process refused lately
waits for the verdict before the read: a refused flood costs the database nothing. The browser
session plays no part: the API app (fvapp/api/app.py) has none, nor Flask-Limiter or Flask-Login.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, request
from werkzeug.exceptions import TooManyRequests

from .. import usage
from ..ratelimit import ApiLimiter, Decision
from ..services import key_auth
from ..services.key_auth import KeyRejected, PlanRequired, Principal
from . import bp

PUBLIC_ENDPOINTS = {"api.openapi"}
EXTENSION = "fvapp_api_limiter"


@bp.record_once
def _create_limiter(state) -> None:
    config = state.app.config
    state.app.extensions[EXTENSION] = ApiLimiter(
        config["RATELIMIT_STORAGE_URI"],
        config.get("RATELIMIT_STORAGE_OPTIONS") or {},
        config["RATELIMIT_KEY_PREFIX"],
        key_limit=config["API_RATE_LIMIT"],
        fail_limit=config["API_AUTH_FAILURE_LIMIT"],
    )


def current_principal() -> Principal:
    return g.api_principal


def _refuse(decision: Decision, rejected: KeyRejected):
    if not decision.allowed:  # the address was already over its failure budget
        g.api_rate = decision
        raise TooManyRequests()
    raise rejected


@bp.before_request
def authenticate():
    req, state = request, g
    state.api_principal = state.api_rate = state.api_key_id = None
    if req.endpoint in PUBLIC_ENDPOINTS:
        return
    app = current_app
    api_limiter: ApiLimiter = app.extensions[EXTENSION]
    remote, headers = req.remote_addr, req.headers  # the client's, as ProxyFix decides
    address = remote or "unknown"
    try:
        key_hash = key_auth.candidate_hash(headers.get("Authorization"))
    except KeyRejected as rejected:  # no key, or a malformed one: no database work
        _refuse(api_limiter.fail(address), rejected)
    digest = key_hash[:32]
    # The limiter's round trip (when it needs one: not while this process holds a lease for
    # the key) overlaps the key's read: its script is sent now, its verdict read once the row
    # is in (admit), before the row is judged or last_used_at written. An address or key this
    # process refused lately waits for the verdict first: no database work for a refused flood.
    verdict = api_limiter.start(address, digest)

    def admit(key_id=None) -> None:
        decision = state.api_rate = verdict()
        if not decision.allowed:
            state.api_key_id = key_id  # a known key's 429 counts for it (count_usage)
            raise TooManyRequests()

    if api_limiter.refused_lately(address, digest):
        admit()
    try:
        state.api_principal = key_auth.principal_for(
            key_hash, timedelta(seconds=app.config["API_KEY_TOUCH_SECONDS"]), admit,
            ip=remote, user_agent=headers.get("User-Agent"))
    except KeyRejected as rejected:
        state.api_rate, state.api_key_id = None, rejected.key_id
        _refuse(api_limiter.fail(address), rejected)
    except PlanRequired as refused:
        state.api_key_id = refused.key_id
        raise
    finally:
        verdict()  # the reply is always read, whatever happened meanwhile


@bp.after_request
def finish(response):
    """The after_request of the key-authenticated blueprints (API v1, MCP), one hook (Flask's
    cost is per hook): the X-RateLimit-* headers, then the answer counted for its key (requests
    per key per day, in memory: fvapp/usage.py)."""
    return count_usage(rate_limit_headers(response))


def count_usage(response):
    """Count the answer for its key (requests per key per day, fvapp/usage.py): the key it
    authenticated as, else, for a refused request, the key whose row was read (revoked, creator
    removed, plan, rate limit). A key nobody has counts for nobody. No database or Redis work:
    a dict increment."""
    principal = g.get("api_principal")
    key_id = principal.key_id if principal is not None else g.get("api_key_id")
    if key_id is not None:
        usage.aggregator().add(key_id, response.status_code)
    return response


def rate_limit_headers(response):
    state = g
    decision = state.get("api_rate")
    if decision is None or not (state.get("api_principal")
                                or response.status_code in (403, 429)):
        return response
    headers = response.headers
    headers.extend((("X-RateLimit-Limit", str(decision.limit)),  # none yet: no set (scans)
                    ("X-RateLimit-Remaining", str(decision.remaining)),
                    ("X-RateLimit-Reset", str(decision.reset))))
    if response.status_code == 429:
        headers["Retry-After"] = str(decision.retry_after)
    return response
