"""Rate limits: sliding-window counters (window.py), kept in Redis on Redis's clock or in
process memory behind one circuit breaker (store.py), and the API's limiter with its token
leases (api.py). The sign-in throttle (fvapp/auth/throttle.py) counts on the same store.

One Store per app (`store_of`): the API limiter and the sign-in throttle share its Redis
client, its memory fallback and its breaker.
"""

from __future__ import annotations

from flask import Flask

from .api import ApiLimiter
from .store import Store
from .window import Decision, Limit, Reply

__all__ = ["ApiLimiter", "Decision", "Limit", "Reply", "Store", "api_limiter", "store_of"]

EXTENSION = "fvapp_ratelimit"


def store_of(app: Flask) -> Store:
    """The app's counters (made on first use, from RATELIMIT_STORAGE_URI, _OPTIONS, _KEY_PREFIX)."""
    store = app.extensions.get(EXTENSION)
    if store is None:
        config = app.config
        store = app.extensions.setdefault(EXTENSION, Store(
            config["RATELIMIT_STORAGE_URI"], config.get("RATELIMIT_STORAGE_OPTIONS") or {},
            config["RATELIMIT_KEY_PREFIX"]))
    return store


def api_limiter(app: Flask) -> ApiLimiter:
    """An API limiter on the app's store, from API_RATE_LIMIT and API_AUTH_FAILURE_LIMIT."""
    config = app.config
    return ApiLimiter(store_of(app), Limit.parse(config["API_RATE_LIMIT"]),
                      Limit.parse(config["API_AUTH_FAILURE_LIMIT"]))
