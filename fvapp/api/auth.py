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
CHECK = "api_check"  # flask.g's name for the request's KeyCheck


@bp.record_once
def _create_limiter(state) -> None:
    state.app.extensions[EXTENSION] = ratelimit.api_limiter(state.app)


class KeyCheck:
    """What the hook learnt about the request's key, kept on flask.g as one object (one lookup
    for the after_request hook, not one per field): `principal` once the key authenticated,
    `rate` the rate-limit decision (its headers), `key_id` the key a refused request counts
    for once its row was read."""

    __slots__ = ("principal", "rate", "key_id")

    def __init__(self):
        self.principal: Principal | None = None
        self.rate = None
        self.key_id = None


def current_principal() -> Principal:
    return g.api_check.principal


def _failed(check: KeyCheck, api_limiter: ApiLimiter, address: str,
            rejected: KeyRejected) -> NoReturn:
    """A failed authentication: 401, or 429 when the address is over its failure budget."""
    decision = api_limiter.fail(address)
    if not decision.allowed:
        check.rate = decision
        raise TooManyRequests()
    raise rejected


def _admit(check: KeyCheck, api_limiter: ApiLimiter, digest: str, key_id=None) -> None:
    """The key's own limit: 429 when it is over it (counted for the key, when it was read)."""
    decision = check.rate = api_limiter.admit(digest)
    if not decision.allowed:
        check.key_id = key_id
        raise TooManyRequests()


@bp.before_request
def authenticate():
    check = g.api_check = KeyCheck()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    app = current_app
    api_limiter: ApiLimiter = app.extensions[EXTENSION]
    environ = request.environ  # the headers and the address as Werkzeug reads them
    address = environ.get("REMOTE_ADDR") or "unknown"  # the client's, as ProxyFix decides
    try:
        key_hash = key_auth.candidate_hash(environ.get("HTTP_AUTHORIZATION"))
    except KeyRejected as rejected:  # no key, or a malformed one: no database work
        _failed(check, api_limiter, address, rejected)
    digest = key_hash[:32]
    asked_first = api_limiter.recently_refused(digest)
    if asked_first:  # asked first: a refused flood of a valid key reads no database
        _admit(check, api_limiter, digest)
    try:
        principal = key_auth.principal_for(key_hash)
    except KeyRejected as rejected:  # unknown, revoked, or its creator left
        check.rate, check.key_id = None, rejected.key_id
        _failed(check, api_limiter, address, rejected)
    if not asked_first:
        _admit(check, api_limiter, digest, principal.key_id)
    try:
        check.principal = key_auth.accept(
            principal, timedelta(seconds=app.config["API_KEY_TOUCH_SECONDS"]),
            ip=environ.get("REMOTE_ADDR"), user_agent=environ.get("HTTP_USER_AGENT"))
    except PlanRequired:
        check.key_id = principal.key_id
        raise


def finished_headers(status: int) -> list[tuple[str, str]]:
    """After any API request (the API app's after_request, fvapp/api/app.py): the answer counted
    for its key (requests per key per day, in memory: fvapp/usage/counting.py), and the
    X-RateLimit-* headers (with Retry-After on a 429) it gets, returned for the hook to add with
    the others in one go. Nothing for a request the hook did not read a key for."""
    check: KeyCheck | None = g.get(CHECK)
    if check is None:
        return []
    count_usage(check, status)
    return rate_limit_headers(check, status)


def count_usage(check: KeyCheck, status: int) -> None:
    """Count the answer for its key (requests per key per day, fvapp/usage/counting.py): the key it
    authenticated as, else, for a refused request, the key whose row was read (revoked, creator
    removed, plan, rate limit). A key nobody has counts for nobody. No database or Redis work:
    a dict increment."""
    principal = check.principal
    key_id = principal.key_id if principal is not None else check.key_id
    if key_id is not None:
        usage.aggregator().add(key_id, status)


def rate_limit_headers(check: KeyCheck, status: int) -> list[tuple[str, str]]:
    decision = check.rate
    if decision is None or not (check.principal or status in (403, 429)):
        return []
    headers = [("X-RateLimit-Limit", str(decision.limit)),  # none yet: no set (scans)
               ("X-RateLimit-Remaining", str(decision.remaining)),
               ("X-RateLimit-Reset", str(decision.reset))]
    if status == 429:
        headers.append(("Retry-After", str(decision.retry_after)))
    return headers
