"""When the services behind the API fail: Redis (rate-limit counters) and the database; and
what one request really costs the database, round trips included."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from fvapp.extensions import db
from fvapp.services import initiatives
from tests.support.api import Api, assert_envelope, mint_key
from tests.support.browser import Browser
from tests.support.marks import on_postgresql
from tests.support.net import TcpProxy, free_port
from tests.support.tracing import PgRoundTrips, engine_of

PG_URL = os.environ.get("TEST_DATABASE_URL")


def test_requests_are_served_when_redis_is_unreachable(app_factory, app, demo):
    no_redis = app_factory(
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        RATELIMIT_STORAGE_OPTIONS={"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
        API_RATE_LIMIT="3 per minute",
    )
    api = Api(no_redis.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test")))
    # Served, and still limited: each process falls back to counting in its own memory.
    for _ in range(3):
        assert_envelope(api.get("/me"), 200)
    assert_envelope(api.get("/me"), 429, "RATE_LIMITED")
    assert_envelope(api.get("/me", headers={"Authorization": "Bearer nope"}), 401, "UNAUTHORIZED")


@on_postgresql
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
        api = Api(through_proxy.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test")))
        assert_envelope(api.get("/initiatives"), 200)  # the pool now holds a connection

        proxy.stop()
        for _ in range(3):
            down = api.get("/initiatives")
            assert_envelope(down, 503, "SERVICE_UNAVAILABLE")
            assert int(down.headers["Retry-After"]) > 0

        proxy.start()
        assert_envelope(api.get("/initiatives"), 200)  # the disconnect invalidated the pool
        assert_envelope(api.post("/initiatives", json={"title": "After the outage"}), 201)

        # A restart between two requests: the pooled connection is dead, nobody noticed.
        proxy.stop()
        proxy.start()
        assert_envelope(api.get("/initiatives"), 200)
    finally:
        proxy.stop()


def test_an_exhausted_connection_pool_is_503_for_the_api_and_for_pages(app_factory, app, demo):
    # Two connections per pool: an API thread keeps one for its reads (transaction.Readers)
    # and its writes (the key's last_used_at) take another.
    busy = app_factory(SQLALCHEMY_ENGINE_OPTIONS={
        "pool_pre_ping": True, "pool_size": 2, "max_overflow": 0, "pool_timeout": 0.1})
    api = Api(busy.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test")))
    person = Browser(busy.test_client())
    assert person.login("ava@acme.test").status_code == 303
    with busy.app_context():
        pages_engine = db.engine
    # Every connection of each app's pool (the pages app and the API app each have their
    # engine): the next checkout waits, then fails.
    held = [pages_engine.connect(), pages_engine.connect(),
            engine_of(busy).connect(), engine_of(busy).connect()]
    try:
        refused = api.get("/me")
        assert_envelope(refused, 503, "SERVICE_UNAVAILABLE")
        assert int(refused.headers["Retry-After"]) > 0
        page = person.get("/")
        assert page.status_code == 503 and page.mimetype == "text/html"
        assert int(page.headers["Retry-After"]) > 0
    finally:
        for connection in held:
            connection.close()
    assert_envelope(api.get("/me"), 200)
    assert person.get("/").status_code == 200


def _driver_error(kind, invalidated=False):
    return kind("SELECT 1", {}, Exception("connection already closed"),
                connection_invalidated=invalidated)


@pytest.mark.parametrize(("error", "status"), [
    pytest.param(sa_exc.TimeoutError("QueuePool limit reached"), 503, id="pool-timeout"),
    pytest.param(sa_exc.DisconnectionError("ping failed"), 503, id="disconnection"),
    pytest.param(_driver_error(sa_exc.OperationalError), 503, id="operational"),
    pytest.param(_driver_error(sa_exc.InterfaceError, invalidated=True), 503, id="lost-connection"),
    pytest.param(_driver_error(sa_exc.InterfaceError), 500, id="interface-bug"),
    pytest.param(_driver_error(sa_exc.ProgrammingError), 500, id="programming-bug"),
])
def test_database_unavailability_is_503_and_driver_bugs_are_500(
    app, demo, monkeypatch, error, status
):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(initiatives, "page_initiatives", fail)
    api = Api(app.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test")))
    response = api.get("/initiatives")
    assert_envelope(response, status, "SERVICE_UNAVAILABLE" if status == 503 else "INTERNAL_ERROR")
    assert ("Retry-After" in response.headers) is (status == 503)


@on_postgresql
def test_round_trips_to_postgresql_per_authenticated_request(app_factory, app, demo, database_url):
    """One round trip per authenticated request: the auth SELECT, on an autocommit connection
    (no BEGIN/ROLLBACK), and no ping for a connection that was not idle (db_setup).
    benchmarks/api_auth.py prints the same figure."""
    served = app_factory()  # its requests get their own app context, as in production
    trips = PgRoundTrips(engine_of(served))
    try:
        api = Api(served.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test")))
        for _ in range(10):  # connects, writes last_used_at; psycopg prepares the auth query
            assert_envelope(api.get("/me"), 200)
        before = trips.counts()
        for _ in range(10):
            assert_envelope(api.get("/me"), 200)
        assert trips.counts() - before == Counter({"PREPARED": 10})
    finally:
        trips.close()
