"""GET /healthz and GET /readyz (SPEC §10): public, no session, no CSRF, never rate-limited,
JSON; /readyz says 503 within its timeout when the database or Redis does not answer."""

from __future__ import annotations

import os
import time

import pytest

from tests.support.net import SilentServer

REDIS_URL = os.environ.get("TEST_REDIS_URL")


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


def _assert_public_json(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_alive_public_and_touches_nothing(app_factory, silent):
    # Even with the database and Redis hung, the process itself is alive.
    app = app_factory(SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://x@127.0.0.1:{silent.port}/x",
                      REDIS_URL=f"redis://127.0.0.1:{silent.port}/0")
    client = app.test_client()
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 0.5
    _assert_public_json(response, 200)
    assert response.get_json() == {"status": "ok"}
    assert client.post("/healthz").status_code == 405


def test_readyz_is_ok_when_the_database_answers(app, demo):
    client = app.test_client()
    response = client.get("/readyz")
    _assert_public_json(response, 200)
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok"}}


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (CI sets it)")
def test_readyz_asks_redis_when_it_is_configured(app_factory):
    response = app_factory(REDIS_URL=REDIS_URL).test_client().get("/readyz")
    _assert_public_json(response, 200)
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_fast_when_redis_hangs(app_factory, silent):
    app = app_factory(REDIS_URL=f"redis://127.0.0.1:{silent.port}/0", READYZ_TIMEOUT=0.5)
    started = time.monotonic()
    response = app.test_client().get("/readyz")
    assert time.monotonic() - started < 2
    _assert_public_json(response, 503)
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] in {"timeout", "error", "busy"}


def test_readyz_is_503_fast_when_the_database_hangs_then_ok_again(app_factory, silent, app):
    hung = app_factory(SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://x@127.0.0.1:{silent.port}/x",
                       READYZ_TIMEOUT=0.5)
    client = hung.test_client()
    for _ in range(3):  # the first probe is stuck; later calls do not pile up behind it
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < 2
        _assert_public_json(response, 503)
        assert response.get_json()["checks"]["database"] in {"timeout", "busy"}
    silent.close()  # the stuck connection attempt now fails and frees its slot
    deadline = time.monotonic() + 5
    while app.test_client().get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readyz did not recover"
        time.sleep(0.05)


def test_health_endpoints_are_never_rate_limited(app_factory):
    client = app_factory(LOGIN_LIMIT_PER_IP="1 per minute", API_AUTH_FAILURE_LIMIT="1 per minute",
                         API_RATE_LIMIT="1 per minute").test_client()
    for _ in range(30):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
