"""Operational endpoints for load balancers (SPEC §10): GET /healthz and GET /readyz.

Public, no session (fvapp.session.SessionInterface skips them), no CSRF (GET only), never
rate-limited, JSON. /healthz touches nothing: the process answers, so it is alive. /readyz asks
the database (and Redis, when configured) to answer within READYZ_TIMEOUT seconds; each probe
runs in its own thread, so a hung dependency costs the caller that timeout and nothing more, and
at most one probe per dependency is in flight per process (a still-stuck earlier probe means
"not ready" at once, rather than piling up threads against a dead server).
"""

from __future__ import annotations

import threading

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from .extensions import db, limiter

bp = Blueprint("health", __name__)

PATHS = frozenset({"/healthz", "/readyz"})

_in_flight: dict[str, threading.Lock] = {"database": threading.Lock(), "redis": threading.Lock()}
_redis_clients: dict[str, object] = {}


def _answer(payload: dict, status: int):
    response = jsonify(payload)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


@bp.get("/healthz")
@limiter.exempt
def healthz():
    return _answer({"status": "ok"}, 200)


def _probe_database(engine, config) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _probe_redis(engine, config) -> None:
    import redis

    url, timeout = config["REDIS_URL"], config["READYZ_TIMEOUT"]
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients.setdefault(url, redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout))
    client.ping()


def _check(name: str, probe, engine, config) -> str:
    """'ok', 'timeout', 'busy' (an earlier probe is still stuck) or 'error'."""
    lock = _in_flight[name]
    if not lock.acquire(blocking=False):
        return "busy"
    outcome: list[str] = []
    done = threading.Event()

    def run():
        try:
            probe(engine, config)
            outcome.append("ok")
        except Exception:  # any failure to answer is "not ready"; the reason is not public
            outcome.append("error")
        finally:
            lock.release()
            done.set()

    threading.Thread(target=run, name=f"readyz-{name}", daemon=True).start()
    return outcome[0] if done.wait(config["READYZ_TIMEOUT"]) else "timeout"


@bp.get("/readyz")
@limiter.exempt
def readyz():
    # The probes run in threads of their own, outside this request: they get the engine and
    # the configuration themselves, not the app context.
    engine, config = db.engine, current_app.config
    checks = {"database": _check("database", _probe_database, engine, config)}
    if config.get("REDIS_URL"):
        checks["redis"] = _check("redis", _probe_redis, engine, config)
    ready = all(state == "ok" for state in checks.values())
    return _answer({"status": "ok" if ready else "unavailable", "checks": checks},
                   200 if ready else 503)
