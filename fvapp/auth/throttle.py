"""Failed sign-in budgets without a malicious lockout (SPEC §7, OWASP "device cookies").

Every sign-in attempt is counted *before* the password is checked, and refunded if it succeeds:
the counter (fvapp/ratelimit's sliding window, the API limiter's) checks and counts in one
atomic step (a Lua script in Redis, a lock in memory), so a burst of N concurrent wrong
passwords gets exactly as many bcrypt checks as the budget has left, never N.

Budgets: one per client IP (LOGIN_LIMIT_PER_IP), and one per email (LOGIN_LIMIT_PER_EMAIL) —
unless the browser shows a valid device cookie for that email, which it received when it signed
in as that email before: then the attempt counts against that device's own budget
(LOGIN_LIMIT_PER_DEVICE) instead. So someone burning Ava's per-email budget from elsewhere
cannot keep Ava, on her own browser, from signing in to revoke a leaked key.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .. import ratelimit
from ..ratelimit import Limit
from ..ratelimit.window import refused

DEVICE_COOKIE_MAX_AGE = 365 * 24 * 3600
DEVICES_KEPT = 5  # emails remembered per browser


def _email_id(email: str) -> str:
    """The email as counters and device cookies name it: keyed hash, fixed length, so neither
    the Redis keys nor the (signed, not encrypted) cookie say who it is, however long it is."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"login-email:" + email.encode("utf-8", "replace"), "sha256").hexdigest()[:32]


def device_cookie_name() -> str:
    return "login_device" if current_app.config["ENV_MODE"] != "production" else "__Host-login_device"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="fvapp-login-device")


def devices_in_request() -> dict[str, str]:
    """{email id: device nonce} from this browser's signed device cookie, or {}."""
    raw = request.cookies.get(device_cookie_name())
    if not raw:
        return {}
    try:
        value = _serializer().loads(raw, max_age=DEVICE_COOKIE_MAX_AGE)
    except BadSignature:
        return {}
    if not isinstance(value, dict):
        return {}
    return {e: n for e, n in value.items() if isinstance(e, str) and isinstance(n, str)}


def remember_device(response, email: str) -> None:
    """After a successful sign-in: this browser is now a known device for this email."""
    devices = devices_in_request()
    email = _email_id(email)
    devices.pop(email, None)
    devices[email] = secrets.token_urlsafe(16)  # a fresh nonce each sign-in
    kept = dict(list(devices.items())[-DEVICES_KEPT:])
    production = current_app.config["ENV_MODE"] == "production"
    response.set_cookie(device_cookie_name(), _serializer().dumps(kept), max_age=DEVICE_COOKIE_MAX_AGE,
                        path="/", secure=production, httponly=True, samesite="Lax")


@dataclass
class Attempt:
    """The budgets one sign-in attempt was counted against; refund() gives them back."""

    held: list  # (counter name, Limit, Reply)
    retry_after: int = 0

    @property
    def allowed(self) -> bool:
        return self.retry_after == 0


def _budgets(email: str) -> list[tuple[str, str]]:
    """(limits, counter name) of each budget an attempt for `email` from here counts against."""
    config = current_app.config
    budgets = [(config["LOGIN_LIMIT_PER_IP"], f"login-ip:{request.remote_addr or '-'}")]
    email = _email_id(email)
    nonce = devices_in_request().get(email)
    if nonce:
        budgets.append((config["LOGIN_LIMIT_PER_DEVICE"], f"login-device:{nonce[:32]}"))
    else:
        budgets.append((config["LOGIN_LIMIT_PER_EMAIL"], f"login-email:{email}"))
    return budgets


def count_attempt(email: str) -> Attempt:
    """Count one attempt against every budget it falls under, or none if one is spent. The
    app's rate-limit store (fvapp/ratelimit): Redis, or this process's memory while Redis is
    unavailable (its breaker, shared with the API's limiter)."""
    store = ratelimit.store_of(current_app)
    held: list = []
    for spec, name in _budgets(email):
        for limit in Limit.parse_many(spec):
            counter = f"{name}:{limit.amount}/{limit.period}"
            reply = store.take(counter, limit)
            if not reply.allowed:
                refund(Attempt(held))
                return Attempt([], refused(limit, reply.now, reply.current,
                                           reply.previous).retry_after)
            held.append((counter, limit, reply))
    return Attempt(held)


def refund(attempt: Attempt) -> None:
    """A sign-in that succeeded is not a failure: give back what count_attempt took."""
    store = ratelimit.store_of(current_app)
    for counter, limit, reply in attempt.held:
        store.give_back(counter, limit, reply)
