"""Failed sign-in budgets without a malicious lockout (SPEC §7, OWASP "device cookies").

Every sign-in attempt is counted *before* the password is checked, and refunded if it succeeds:
the counter is the limit's own atomic "acquire" (a Lua script in Redis, a lock in memory), so a
burst of N concurrent wrong passwords gets exactly as many bcrypt checks as the budget has left,
never N.

Budgets: one per client IP (LOGIN_LIMIT_PER_IP), and one per email (LOGIN_LIMIT_PER_EMAIL) —
unless the browser shows a valid device cookie for that email, which it received when it signed
in as that email before: then the attempt counts against that device's own budget
(LOGIN_LIMIT_PER_DEVICE) instead. So someone burning Ava's per-email budget from elsewhere
cannot keep Ava, on her own browser, from signing in to revoke a leaked key.
"""

from __future__ import annotations

import hmac
import math
import secrets
import time
from dataclasses import dataclass

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from ..extensions import limiter

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

    held: list
    retry_after: int = 0

    @property
    def allowed(self) -> bool:
        return self.retry_after == 0


def _budgets(email: str) -> list[tuple[str, tuple[str, ...]]]:
    config = current_app.config
    prefix = config["RATELIMIT_KEY_PREFIX"]
    budgets = [(config["LOGIN_LIMIT_PER_IP"], (prefix, "login-ip", request.remote_addr or "-"))]
    email = _email_id(email)
    nonce = devices_in_request().get(email)
    if nonce:
        budgets.append((config["LOGIN_LIMIT_PER_DEVICE"], (prefix, "login-device", nonce[:32])))
    else:
        budgets.append((config["LOGIN_LIMIT_PER_EMAIL"], (prefix, "login-email", email)))
    return budgets


class _Fallback:
    """While the limit storage (Redis) fails or stalls, attempts are counted in this process's
    memory for BREAKER_SECONDS: each sign-in does not wait out the storage's socket timeout
    again for every budget, and the budgets still hold (per process) meanwhile. One per app."""

    EXTENSION = "fvapp_login_fallback"
    BREAKER_SECONDS = 5.0  # as the API's limiter (fvapp/ratelimit.py)

    def __init__(self, strategy_class):
        self.strategy = strategy_class(MemoryStorage())
        self.until = 0.0

    @classmethod
    def of_app(cls) -> _Fallback:
        extensions = current_app.extensions
        if cls.EXTENSION not in extensions:
            extensions[cls.EXTENSION] = cls(type(limiter.limiter))
        return extensions[cls.EXTENSION]

    def trip(self) -> None:
        current_app.logger.warning("login throttle storage unavailable; counting in process "
                                   "memory for %.0f s", self.BREAKER_SECONDS)
        self.until = time.monotonic() + self.BREAKER_SECONDS


def count_attempt(email: str) -> Attempt:
    """Count one attempt against every budget it falls under, or none if one is spent."""
    fallback = _Fallback.of_app()
    strategy = fallback.strategy if time.monotonic() < fallback.until else limiter.limiter
    held: list = []  # (strategy, item, identifiers)
    for spec, identifiers in _budgets(email):
        for item in parse_many(spec):
            try:
                acquired = strategy.hit(item, *identifiers)
            except Exception:  # storage down or stalled: this process counts, for a while
                fallback.trip()
                strategy = fallback.strategy
                acquired = strategy.hit(item, *identifiers)
            if not acquired:
                refund(Attempt(held))
                return Attempt([], _retry_after(strategy, item, identifiers))
            held.append((strategy, item, identifiers))
    return Attempt(held)


def refund(attempt: Attempt) -> None:
    """A sign-in that succeeded is not a failure: give back what count_attempt took."""
    for strategy, item, identifiers in attempt.held:
        _refund(strategy, item, identifiers)


def _refund(strategy, item, identifiers) -> None:
    storage = strategy.storage
    key = item.key_for(*identifiers)
    try:
        if isinstance(strategy, MovingWindowRateLimiter):
            if isinstance(storage, RedisStorage):
                storage.get_connection().lpop(storage.prefixed_key(key))  # newest entry
            elif isinstance(storage, MemoryStorage):
                with storage.locks[key]:
                    if storage.events.get(key):
                        storage.events[key].pop(0)  # newest entry
        elif isinstance(strategy, FixedWindowRateLimiter):
            storage.incr(key, item.get_expiry(), amount=-1)
    except Exception:  # storage down: nothing to give back
        current_app.logger.warning("login throttle storage unavailable")


def _retry_after(strategy, item, identifiers) -> int:
    try:
        reset = strategy.get_window_stats(item, *identifiers).reset_time
    except Exception:
        return item.get_expiry()
    return max(1, math.ceil(reset - time.time()))
