"""Configuration read from the environment once, in the factory."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import NoReturn

from .db_setup import REPLY_TIMEOUT_ARG

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


class ConfigError(RuntimeError):
    """The environment does not describe a runnable app."""


def exit_for(error: ConfigError) -> NoReturn:
    """End an operator's command (flask, gunicorn) on settings that cannot start the app: one
    line on stderr naming what to set, exit status 2, no traceback."""
    print(f"fvapp: {error}", file=sys.stderr)
    raise SystemExit(2) from None


def _normalize_db_url(url: str) -> str:
    # Heroku-style URLs name no driver; we always talk to PostgreSQL through psycopg 3.
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare):]
    return url


def _development_secret() -> str:
    """A secret kept in instance/ so sessions survive restarts on a developer's machine."""
    path = INSTANCE / "secret_key"
    if not path.exists():
        INSTANCE.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _integer(env: dict[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name, str(default)))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {env[name]!r}") from None


def _bytes(env: dict[str, str], name: str, default: int) -> int:
    value = _integer(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be a number of bytes above 0, not {value}")
    return value


def _seconds(env: dict[str, str], name: str, default: int) -> int:
    value = _integer(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be a number of seconds above 0, not {value}")
    return value


def _positive(env: dict[str, str], name: str, default: float) -> float:
    try:
        value = float(env.get(name, str(default)))
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {env[name]!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be a number of seconds above 0, not {env[name]!r}")
    return value


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value not in {"0", "1", "true", "false", "yes", "no"}:
        raise ConfigError(f"{name} must be 1 or 0, not {env[name]!r}")
    return value in {"1", "true", "yes"}


def from_environment(env: dict[str, str] | None = None, overrides: dict | None = None) -> dict:
    env = dict(os.environ if env is None else env)
    overrides = overrides or {}
    mode = str(overrides.get("ENV_MODE") or env.get("FVAPP_ENV", "production")).lower()
    if mode not in {"production", "development", "testing"}:
        raise ConfigError(f"FVAPP_ENV must be production, development or testing, not {mode!r}")
    development = mode != "production"

    secret = overrides.get("SECRET_KEY") or env.get("SECRET_KEY")
    if not secret:
        if not development:
            raise ConfigError("SECRET_KEY must be set in production: set SECRET_KEY, or "
                              "FVAPP_ENV=development for a local run.")
        secret = _development_secret()

    database_url = (
        overrides.get("SQLALCHEMY_DATABASE_URI")
        or env.get("DATABASE_URL")
        or f"sqlite:///{INSTANCE / 'fvapp.sqlite3'}"
    )
    redis_url = overrides.get("REDIS_URL", env.get("REDIS_URL")) or None

    config = {
        "ENV_MODE": mode,
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": _normalize_db_url(database_url),
        # No pool_pre_ping: db_setup pings only connections idle for a while; recycled hourly.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_recycle": 3600},
        "REDIS_URL": redis_url,
        # "__Host-": the browser only keeps it if Secure, Path=/ and no Domain (SPEC §7), so no
        # sibling subdomain can plant or shadow it. Development and tests serve plain http, where
        # cookies are not Secure, so there it keeps the plain name.
        "SESSION_COOKIE_NAME": "session" if development else "__Host-session",
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": None,
        # A session ends after this long without a request, and this long after sign-in at most.
        "SESSION_IDLE_TIMEOUT": _seconds(env, "SESSION_IDLE_TIMEOUT", 12 * 3600),
        "SESSION_ABSOLUTE_LIFETIME": _seconds(env, "SESSION_ABSOLUTE_LIFETIME", 14 * 24 * 3600),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": not development,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": not development,
        "WTF_CSRF_TIME_LIMIT": None,  # tokens are bound to the session, which logout ends
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "BCRYPT_ROUNDS": _integer(env, "BCRYPT_ROUNDS", 12),
        "LOGIN_LIMIT_PER_EMAIL": env.get("LOGIN_LIMIT_PER_EMAIL", "5 per minute; 20 per hour"),
        "LOGIN_LIMIT_PER_IP": env.get("LOGIN_LIMIT_PER_IP", "30 per minute"),
        # A browser that signed in as an email before has its own budget for it (device cookie).
        "LOGIN_LIMIT_PER_DEVICE": env.get("LOGIN_LIMIT_PER_DEVICE", "5 per minute; 20 per hour"),
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT", "600 per minute"),
        "API_AUTH_FAILURE_LIMIT": env.get("API_AUTH_FAILURE_LIMIT", "30 per minute"),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_STORAGE_OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2}
        if redis_url
        else {},
        # Flask-Limiter's strategy, for the login pages; the API has its own sliding-window
        # counter (fvapp/ratelimit/), at most one Redis round trip per request (token leases).
        "RATELIMIT_STRATEGY": env.get("RATELIMIT_STRATEGY", "moving-window"),
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # Several deployments (or test runs) may share one Redis: their counters must not mix.
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "fvapp"),
        "RATELIMIT_HEADERS_ENABLED": False,  # the API sets its own X-RateLimit-* headers
        "API_KEY_TOUCH_SECONDS": 60,
        # Usage per key per day (fvapp/usage/counting.py): each process writes its counts at most this
        # often (seconds); a crash loses at most this much of one process's counts. Tests flush
        # by hand unless USAGE_FLUSH_IN_BACKGROUND=1.
        "USAGE_FLUSH_INTERVAL": _positive(env, "USAGE_FLUSH_INTERVAL", 60.0),
        "USAGE_FLUSH_IN_BACKGROUND": _flag(env, "USAGE_FLUSH_IN_BACKGROUND", mode != "testing"),
        # Behind a reverse proxy, how many proxies to trust for X-Forwarded-For/-Proto/-Host:
        # without it every client has the proxy's address, and per-IP limits hit everyone.
        "TRUSTED_PROXY_HOPS": int(env.get("TRUSTED_PROXY_HOPS", "0")),
        # GET /readyz: how long the database (and Redis) may take to answer before it says 503.
        "READYZ_TIMEOUT": float(env.get("READYZ_TIMEOUT", "2")),
        # One log line per request (fvapp/request_log.py); "0" turns it off.
        "LOG_REQUESTS": env.get("LOG_REQUESTS", "1").strip().lower() not in {"0", "false", "no", "off"},
        # GitHub secret-scanning public keys (JSON); unset: POST /api/secret-scanning is a 404.
        "SECRET_SCANNING_KEYS_FILE": env.get("SECRET_SCANNING_KEYS_FILE") or None,
        # POST /api/secret-scanning's own body limit (GitHub sends large batches); 413 above it.
        "SECRET_SCANNING_MAX_BYTES": _bytes(env, "SECRET_SCANNING_MAX_BYTES", 16 * 1024 * 1024),
    }
    if database_url.startswith("sqlite"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 15}}
    elif database_url.startswith("postgres"):
        # A hung database must not hang workers (SPEC §10): bounded connect and pool checkout,
        # and a server-side cap on any one statement. What they raise is answered 503.
        # A connection that stalls once open (no answer, no reset) is bounded client-side: a
        # reply deadline of statement_timeout + 1 s on every wait (fvapp/db_setup.py), and the
        # kernel's TCP_USER_TIMEOUT and keepalives for a peer that stops acknowledging.
        tuning = {**env, **{k: str(v) for k, v in overrides.items() if k.startswith("DB_")}}
        statement_ms = _seconds(tuning, "DB_STATEMENT_TIMEOUT_MS", 3000)
        reply_timeout = statement_ms / 1000 + 1
        config["SQLALCHEMY_ENGINE_OPTIONS"].update(
            pool_timeout=_seconds(tuning, "DB_POOL_TIMEOUT", 3),
            connect_args={
                "connect_timeout": _seconds(tuning, "DB_CONNECT_TIMEOUT", 3),
                # TimeZone=UTC: timestamptz values come back in UTC (tzinfo datetime.UTC), as
                # models.UTCDateTime gives them, with no conversion per value (transaction.read).
                "options": f"-c statement_timeout={statement_ms} -c TimeZone=UTC",
                REPLY_TIMEOUT_ARG: reply_timeout,
                "tcp_user_timeout": int(reply_timeout * 1000),
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            },
        )
    config.update(overrides)
    if mode == "production" and config["BCRYPT_ROUNDS"] < 12:
        raise ConfigError(
            f"BCRYPT_ROUNDS must be at least 12 in production, not {config['BCRYPT_ROUNDS']} "
            "(lower costs are for tests only)."
        )
    return config
