"""A database or Redis that stalls mid-conversation (SPEC §10): the connection was
open and healthy, then the bytes stop — a proxy, NAT or network that stops forwarding, with no
reset. The server never sees the next statement, so its statement_timeout cannot help: the app's
own deadlines must. Each test puts a TCP proxy between the app and the service, lets it relay,
stalls it on the already-open pooled connection, then lets it flow again.

The times printed are the figures quoted in the README; the assertions bound them loosely (this
machine is shared), the behaviour (status, envelope, Retry-After, recovery) exactly."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import redis
from sqlalchemy.engine import make_url

from fvapp import ratelimit
from tests.support.api import Api, assert_envelope, mint_key
from tests.support.browser import Browser
from tests.support.marks import on_postgresql
from tests.support.net import StallingProxy

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")
SPEC_BOUND = 5.0  # seconds: the "503 within 5 s"
SLACK = 3.0  # what a loaded, shared machine may add to it before a test calls it a failure


def _timed(call, hung_after: float = 30.0):
    """call()'s result and how long it took; fails (rather than hangs) if it never returns."""
    outcome: list = []

    def run():
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # re-raised below, in the test's own thread
            outcome.append((False, exc))

    started = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(hung_after)
    took = time.monotonic() - started
    assert outcome, f"no answer after {took:.0f} s: the request hangs"
    returned, value = outcome[0]
    if not returned:
        raise value
    return value, took


def _through(proxy: StallingProxy, url: str) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


@pytest.fixture
def pg_proxy(database_url):
    url = make_url(database_url)
    proxy = StallingProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield proxy
    proxy.stop()


@on_postgresql
def test_a_database_that_stalls_on_an_open_connection_is_a_503_then_service_resumes(
        app_factory, app, demo, database_url, pg_proxy):
    stalling = app_factory(SQLALCHEMY_DATABASE_URI=_through(pg_proxy, database_url))  # defaults
    api = Api(stalling.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test")))
    person = Browser(stalling.test_client())
    assert person.login("ava@acme.test").status_code == 303
    assert_envelope(api.get("/me"), 200)  # the pool holds an open, healthy connection
    assert person.get("/settings/api-keys").status_code == 200

    pg_proxy.stall()
    response, api_took = _timed(lambda: api.get("/me"))
    assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert int(response.headers["Retry-After"]) > 0
    page, page_took = _timed(lambda: person.get("/settings/api-keys"))
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "briefly unavailable" in page.text and int(page.headers["Retry-After"]) > 0
    print(f"\nstalled database: API 503 in {api_took:.2f} s, page 503 in {page_took:.2f} s")
    assert api_took < SPEC_BOUND + SLACK and page_took < SPEC_BOUND + SLACK

    pg_proxy.flow()
    response, recovered = _timed(lambda: api.get("/me"))
    assert_envelope(response, 200)  # the stalled connection was discarded; a fresh one answers
    assert person.get("/settings/api-keys").status_code == 200  # still signed in
    print(f"stalled database: first API request after it flows again: 200 in {recovered:.2f} s")


@on_postgresql
def test_readyz_says_503_within_its_timeout_when_the_database_stalls(
        app_factory, app, database_url, pg_proxy):
    stalling = app_factory(SQLALCHEMY_DATABASE_URI=_through(pg_proxy, database_url),
                           READYZ_TIMEOUT=0.5)
    client = stalling.test_client()
    assert client.get("/readyz").status_code == 200  # the probe's connection is now pooled
    pg_proxy.stall()
    for _ in range(2):  # the first probe waits out its timeout, the next finds it still stuck
        response, took = _timed(lambda: client.get("/readyz"))
        assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
        assert response.get_json()["checks"]["database"] in {"timeout", "busy"}
        assert took < 0.5 + SLACK
    pg_proxy.flow()
    deadline = time.monotonic() + 10  # the stuck probe ends at its reply deadline at the latest
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readyz did not recover"
        time.sleep(0.1)


@pytest.fixture
def redis_proxy():
    url = make_url(REDIS_URL)
    proxy = StallingProxy(url.host or "127.0.0.1", url.port or 6379).start()
    yield proxy
    proxy.stop()


def _redis_app(app_factory, proxy: StallingProxy, **extra):
    through = f"redis://127.0.0.1:{proxy.port}/{make_url(REDIS_URL).database or 0}"
    prefix = f"fvapp-test-stall-{uuid.uuid4().hex[:8]}"
    return prefix, app_factory(
        REDIS_URL=through, RATELIMIT_STORAGE_URI=through, RATELIMIT_KEY_PREFIX=prefix,
        RATELIMIT_STORAGE_OPTIONS={"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
        **extra)


def _counted_in_redis(prefix: str) -> int:
    """Requests the API limiter counted in the real Redis (not through the proxy)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(int(count) for key in client.scan_iter(f"{prefix}:apikey:*")
                   for count in client.hvals(key))
    finally:
        client.close()


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (CI sets it)")
def test_a_redis_that_stalls_costs_the_api_and_sign_in_a_bounded_delay_then_is_used_again(
        app_factory, app, demo, redis_proxy, monkeypatch):
    monkeypatch.setattr(ratelimit.store, "BREAKER_SECONDS", 1.0)  # production: 5 s
    prefix, stalling = _redis_app(app_factory, redis_proxy, LOGIN_LIMIT_PER_EMAIL="3 per minute")
    api = Api(stalling.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test")))
    assert_envelope(api.get("/me"), 200)
    assert _counted_in_redis(prefix) == 1  # the limiter talks to Redis through the proxy
    _, flowing_took = _timed(lambda: Browser(stalling.test_client()).login("ava@acme.test"))

    redis_proxy.stall()
    took = []
    for _ in range(10):  # rate limits fail open: counted in process memory meanwhile
        response, seconds = _timed(lambda: api.get("/me"))
        assert_envelope(response, 200)
        took.append(seconds)
    person = Browser(stalling.test_client())
    wrong, wrong_took = _timed(lambda: person.login("ava@acme.test", "wrong password!"))
    assert wrong.status_code == 422 and "password" in wrong.text  # the form again, not a 429/500
    right, right_took = _timed(lambda: person.login("ava@acme.test"))
    assert right.status_code == 303
    print(f"\nstalled Redis: API requests {min(took):.3f}–{max(took):.3f} s (first {took[0]:.3f} s),"
          f" sign-in {wrong_took:.2f} s (wrong password), {right_took:.2f} s (right one;"
          f" {flowing_took:.2f} s with Redis flowing; each is 3 requests)")
    assert max(took) < 0.2 + SLACK and wrong_took < 1 + SLACK and right_took < 1 + SLACK
    assert _counted_in_redis(prefix) == 1  # nothing reached Redis meanwhile
    stranger = Browser(stalling.test_client())  # the login budgets still hold, per process
    for _ in range(3):
        assert stranger.login("mia@acme.test", "wrong password!").status_code == 422
    refused = stranger.login("mia@acme.test", "wrong password!")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0

    redis_proxy.flow()
    time.sleep(1.1)  # the breaker's pause ends; the next request asks Redis again
    assert_envelope(api.get("/me"), 200)
    assert_envelope(api.get("/me"), 200)
    assert _counted_in_redis(prefix) >= 2


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (CI sets it)")
def test_readyz_says_503_within_its_timeout_when_redis_stalls(app_factory, app, redis_proxy):
    _, stalling = _redis_app(app_factory, redis_proxy, READYZ_TIMEOUT=0.5)
    client = stalling.test_client()
    assert client.get("/readyz").get_json()["checks"] == {"database": "ok", "redis": "ok"}
    redis_proxy.stall()
    response, took = _timed(lambda: client.get("/readyz"))
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert response.get_json()["checks"]["database"] == "ok"
    assert response.get_json()["checks"]["redis"] in {"timeout", "error", "busy"}
    assert took < 0.5 + SLACK
    redis_proxy.flow()
    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readyz did not recover"
        time.sleep(0.1)
