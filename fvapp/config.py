"""Configuration read from the environment once, in the factory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


class ConfigError(RuntimeError):
    """The environment does not describe a runnable app."""


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
            raise ConfigError("SECRET_KEY must be set in production (FVAPP_ENV=production).")
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
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": redis_url,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": not development,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": not development,
        "WTF_CSRF_TIME_LIMIT": None,  # tokens are bound to the session, which logout ends
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "BCRYPT_ROUNDS": int(env.get("BCRYPT_ROUNDS", "12")),
        "LOGIN_LIMIT_PER_EMAIL": env.get("LOGIN_LIMIT_PER_EMAIL", "5 per minute; 20 per hour"),
        "LOGIN_LIMIT_PER_IP": env.get("LOGIN_LIMIT_PER_IP", "30 per minute"),
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT", "600 per minute"),
        "API_AUTH_FAILURE_LIMIT": env.get("API_AUTH_FAILURE_LIMIT", "30 per minute"),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_STORAGE_OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2}
        if redis_url
        else {},
        # A sliding window: "5 per minute" means any 60 s, so a burst straddling the turn of
        # a minute cannot get twice the limit (as it can with fixed windows).
        "RATELIMIT_STRATEGY": env.get("RATELIMIT_STRATEGY", "moving-window"),
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # Several deployments (or test runs) may share one Redis: their counters must not mix.
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "fvapp"),
        "RATELIMIT_HEADERS_ENABLED": False,  # the API sets its own X-RateLimit-* headers
        "API_KEY_TOUCH_SECONDS": 60,
        # Behind a reverse proxy, how many proxies to trust for X-Forwarded-For/-Proto/-Host:
        # without it every client has the proxy's address, and per-IP limits hit everyone.
        "TRUSTED_PROXY_HOPS": int(env.get("TRUSTED_PROXY_HOPS", "0")),
        # GitHub secret-scanning public keys (JSON); unset: POST /api/secret-scanning is a 404.
        "SECRET_SCANNING_KEYS_FILE": env.get("SECRET_SCANNING_KEYS_FILE") or None,
    }
    if database_url.startswith("sqlite"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True, "connect_args": {"timeout": 15}}
    config.update(overrides)
    return config
