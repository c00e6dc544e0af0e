"""When the services behind the API fail: Redis (rate-limit counters) and the database."""

from __future__ import annotations

import os
import socket

import pytest
from api_helpers import Api, TcpProxy, assert_envelope, mint_key
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("TEST_DATABASE_URL")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


def test_requests_are_served_when_redis_is_unreachable(app_factory, app, demo):
    no_redis = app_factory(
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{_closed_port()}/0",
        RATELIMIT_STORAGE_OPTIONS={"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
        API_RATE_LIMIT="3 per minute",
    )
    api = Api(no_redis.test_client(), mint_key(demo.acme, demo.user("ava@acme.test")))
    # Served, and still limited: each process falls back to counting in its own memory.
    for _ in range(3):
        assert_envelope(api.get("/me"), 200)
    assert_envelope(api.get("/me"), 429, "RATE_LIMITED")
    assert_envelope(api.get("/me", headers={"Authorization": "Bearer nope"}), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (CI sets it)")
def test_database_outage_is_503_and_the_first_request_after_it_succeeds(
    app_factory, app, demo, database_url
):
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    try:
        through_proxy = app_factory(
            SQLALCHEMY_DATABASE_URI=url.set(host="127.0.0.1", port=proxy.port).render_as_string(
                hide_password=False)
        )
        api = Api(through_proxy.test_client(), mint_key(demo.acme, demo.user("ava@acme.test")))
        assert_envelope(api.get("/initiatives"), 200)  # the pool now holds a connection

        proxy.stop()
        for _ in range(3):
            down = api.get("/initiatives")
            assert_envelope(down, 503, "SERVICE_UNAVAILABLE")
            assert int(down.headers["Retry-After"]) > 0

        proxy.start()
        assert_envelope(api.get("/initiatives"), 200)  # pool_pre_ping replaced the dead connection
        assert_envelope(api.post("/initiatives", json={"title": "After the outage"}), 201)

        # A restart between two requests: the pooled connection is dead, nobody noticed.
        proxy.stop()
        proxy.start()
        assert_envelope(api.get("/initiatives"), 200)
    finally:
        proxy.stop()
