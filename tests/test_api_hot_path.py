"""What the API's hot path skips, and what it must not: the envelope written without building
its model (the same bytes), Werkzeug's copy of the headers skipped only where it would change
none, the security headers as they were, the pages' request hooks left out under /api, the
limiter's round trip overlapping the key's read without letting a refused request write or a
refused flood reach the database (nor a lease serve an address refused lately), and the direct
read on PostgreSQL: what the session's would return, one round trip on its thread's own
connection (counted here with libpq's trace, with no statement listener attached), replaced
when it dies, idles, ages or its engine is disposed. (Round trips per request are also counted
in tests/test_api_resilience.py and tests/test_ratelimit.py.)"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from unittest import mock

import pytest
from flask import request
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from werkzeug.wrappers import Response

from fvapp import db_reader, security
from fvapp.api import envelope
from fvapp.api.schemas import Envelope, Me, Meta
from fvapp.extensions import db
from fvapp.formatting import iso
from fvapp.models import ApiKey, Workspace
from fvapp.services import key_auth, keys
from tests.support.api import Api, assert_envelope, bearer, mint_key
from tests.support.tracing import PgRoundTrips, engine_of, sql_statements

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")


@pytest.fixture
def ava(demo):
    return demo.user("ava@acme.test")


def test_the_success_envelope_is_byte_for_byte_the_models_json(app, demo, ava):
    key = mint_key(app, demo.acme, ava)
    with app.app_context():
        principal = key_auth.authenticate(f"Bearer {key}", timedelta(minutes=1))
    data = Me.model_validate({
        "user": {"id": principal.user_id, "email": "a\"b\\\\c\u00e9@x.test", "name": "Ava </script>"},
        "role": principal.role, "workspace": {"id": principal.workspace_id, "name": "Ünïcode ✓",
                                              "plan": principal.plan},
        "api_key": {"id": principal.key_id, "name": "n", "prefix": "fvk_live_ab…",
                    "created_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
                    "last_used_at": None,
                    "expires_at": datetime(2027, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)},
    })
    moment = datetime(2026, 6, 12, 16, 0, 0, 123456, tzinfo=UTC)
    with app.test_request_context("/api/v1/me"), \
            mock.patch.object(envelope, "datetime", mock.Mock(now=lambda tz: moment)):
        response = envelope.success(data)
        rid = envelope.request_id()
    expected = Envelope[Me](success=True, data=data, meta=Meta(requestId=uuid.UUID(rid),
                                                               timestamp=moment))
    assert response.get_data(as_text=True) == expected.model_dump_json()
    assert response.headers["X-Request-Id"] == rid


def test_me_is_byte_for_byte_envelope_of_me_validated_the_usual_way(app, demo, ava):
    """GET /api/v1/me's body against Envelope[Me] built by validation from the database's rows
    (not from the principal the view describes)."""
    key = mint_key(app, demo.acme, ava)
    response = Api(app.test_client(), key).get("/me")
    assert_envelope(response, 200)
    meta = response.get_json()["meta"]
    with app.app_context():
        row = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == keys.hash_key(key)))
        workspace = db.session.get(Workspace, row.workspace_id)
        data = {
            "user": {"id": row.created_by.id, "email": row.created_by.email,
                     "name": row.created_by.name},
            "role": next(m.role for m in row.created_by.memberships
                         if m.workspace_id == row.workspace_id),
            "workspace": {"id": workspace.id, "name": workspace.name, "plan": workspace.plan},
            "api_key": {"id": row.id, "name": row.name, "prefix": row.prefix,
                        "created_at": row.created_at, "last_used_at": row.last_used_at,
                        "expires_at": row.expires_at},
        }
    expected = Envelope[Me].model_validate({
        "success": True, "data": data,
        "meta": {"requestId": meta["requestId"], "timestamp": meta["timestamp"]}})
    assert response.get_data() == expected.model_dump_json().encode()


def test_api_responses_send_the_headers_werkzeug_would(app_factory, app, demo, ava, monkeypatch):
    """ApiResponse skips Werkzeug's copy of the headers only where it would change none: what
    the server is given is what Response.get_wsgi_headers makes, for every kind of answer."""
    compared = []
    ours = envelope.ApiResponse.get_wsgi_headers

    def compare(response, environ):
        sent = ours(response, environ)
        compared.append((response.status_code, list(sent),
                         list(Response.get_wsgi_headers(response, environ))))
        return sent

    monkeypatch.setattr(envelope.ApiResponse, "get_wsgi_headers", compare)
    limited = app_factory(API_RATE_LIMIT="2 per minute")
    api = Api(limited.test_client(), mint_key(app, demo.acme, ava))
    assert_envelope(api.get("/me"), 200)
    assert_envelope(api.post("/initiatives", json={"title": "Headers"}), 201)
    assert_envelope(api.get("/me"), 429, "RATE_LIMITED")
    assert_envelope(api.get("/me", headers={"Authorization": "Bearer nope"}), 401, "UNAUTHORIZED")
    assert_envelope(api.get("/nowhere"), 404, "NOT_FOUND")
    assert_envelope(api.open("/me", "DELETE"), 405, "METHOD_NOT_ALLOWED")
    with limited.test_request_context("/api/v1/initiatives"):
        environ = request.environ
        moved = envelope.success(Meta(requestId=uuid.uuid4(), timestamp=datetime.now(UTC)),
                                 201, headers={"Location": "/api/v1/initiatives/x",
                                               "Content-Location": "/api/v1/é"})
        empty = envelope.ApiResponse(status=204, headers={"Content-Length": "0"})
        unmeasured = envelope.ApiResponse([b"{", b"}"], status=200)  # no Content-Length yet
        for response in (moved, empty, unmeasured):
            compare(response, environ)
    assert [status for status, _, _ in compared] == [200, 201, 429, 401, 404, 405, 201, 204, 200]
    for status, sent, werkzeugs in compared:
        assert sent == werkzeugs, status
    assert dict(compared[6][1])["Content-Location"] == "/api/v1/%C3%A9"  # Werkzeug's own did it


@pytest.mark.parametrize(("mode", "scheme"), [("testing", "http"), ("testing", "https"),
                                              ("development", "https")])
def test_an_api_response_carries_the_security_headers_once_and_in_order(
        app_factory, app, demo, ava, mode, scheme):
    served = app_factory(ENV_MODE=mode, USAGE_FLUSH_IN_BACKGROUND=False)
    key = mint_key(app, demo.acme, ava)
    response = served.test_client().get("/api/v1/me", headers=bearer(key),
                                        base_url=f"{scheme}://localhost")
    assert_envelope(response, 200)
    hsts = [security.HSTS] if scheme == "https" and mode != "development" else []
    assert list(response.headers) == [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(response.get_data()))),
        ("X-Request-Id", response.get_json()["meta"]["requestId"]),
        ("X-RateLimit-Limit", "10000"), ("X-RateLimit-Remaining", "9999"),
        ("X-RateLimit-Reset", response.headers["X-RateLimit-Reset"]),
        *security.DEFAULTS, *hsts, ("Cache-Control", "no-store"),
        ("Vary", "HX-Request"), ("Vary", "Cookie"),
    ]


def test_the_pages_request_hooks_do_not_run_for_the_api(app_factory, app, demo, ava):
    """Flask-WTF's, Flask-Limiter's and Flask-Login's app-wide hooks: pages only, folded into
    one hook per kind (fvapp/__init__.py): an API request runs 6 hooks, not 9."""
    with mock.patch.object(Limiter, "_check_request_limit", autospec=True) as limiter_hook, \
            mock.patch.object(LoginManager, "_update_remember_cookie", autospec=True,
                              side_effect=lambda manager, response: response) as login_hook, \
            mock.patch.object(CSRFProtect, "protect", autospec=True) as csrf_hook:
        served = app_factory()
        client = served.test_client()
        key = mint_key(app, demo.acme, ava)
        assert_envelope(client.get("/api/v1/me", headers=bearer(key)), 200)
        assert_envelope(client.get("/api/v1/nowhere"), 404, "NOT_FOUND")
        assert limiter_hook.call_count == login_hook.call_count == csrf_hook.call_count == 0
        assert client.get("/login").status_code == 200
        assert limiter_hook.call_count == login_hook.call_count == csrf_hook.call_count == 1
    hooks = [len(registry.get(None, [])) + len(registry.get("api", []))
             for registry in (served.before_request_funcs, served.after_request_funcs,
                              served.teardown_request_funcs)]
    assert hooks == [2, 3, 1]  # pages + authenticate; finish + pages + security; pages


def test_a_refused_key_writes_nothing_and_a_refused_flood_reaches_no_database(
    app_factory, app, demo, ava
):
    limited = app_factory(API_RATE_LIMIT="2 per minute")
    key = mint_key(app, demo.acme, ava)
    limiter = limited.extensions["fvapp_api_limiter"]
    digest = keys.hash_key(key)[:32]
    for _ in range(2):  # another process spent the key's budget
        assert limiter.hit("203.0.113.9", digest).allowed
    limiter._refused.clear()  # which this process does not know
    engine = engine_of(limited)
    client = limited.test_client()
    with sql_statements(engine) as seen:
        assert_envelope(client.get("/api/v1/me", headers=bearer(key)), 429, "RATE_LIMITED")
    assert len(seen) == 1 and seen[0].startswith("SELECT")  # the overlapped read, no UPDATE
    with app.app_context():
        last_used = db.session.scalar(select(ApiKey.last_used_at)
                                      .where(ApiKey.key_hash == keys.hash_key(key)))
    assert last_used is None
    with sql_statements(engine) as seen:
        for _ in range(5):
            assert client.get("/api/v1/me", headers=bearer(key)).status_code == 429
    assert seen == []


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (CI sets it)")
def test_an_address_refused_lately_is_not_served_from_a_lease(app_factory, app, demo, ava):
    """Tokens this process leased for a key serve its requests without asking Redis, but not
    those of an address this process refused lately: the script checks its failure budget
    again, so it is refused (before any database work) as without leases."""
    served = app_factory(RATELIMIT_STORAGE_URI=REDIS_URL,
                         RATELIMIT_KEY_PREFIX=f"fvapp-test-{uuid.uuid4().hex}",
                         API_RATE_LIMIT="100000 per minute", API_AUTH_FAILURE_LIMIT="3 per minute")
    limiter = served.extensions["fvapp_api_limiter"]
    key, client = mint_key(app, demo.acme, ava), served.test_client()
    for _ in range(4):  # leases of 1, 2, then 4 tokens: 3 left
        assert_envelope(client.get("/api/v1/me", headers=bearer(key)), 200)
    (lease,) = limiter._leases.values()
    assert (lease.granted, lease.used) == (4, 1)
    for status in (401, 401, 401, 429):  # this address's failure budget, spent
        assert client.get("/api/v1/me", headers=bearer("nope")).status_code == status
    with sql_statements(engine_of(served)) as seen:
        refused = client.get("/api/v1/me", headers=bearer(key))
    assert_envelope(refused, 429, "RATE_LIMITED")
    assert seen == []
    other = client.get("/api/v1/me", headers=bearer(key), environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert_envelope(other, 200)  # another address: the key's budget is intact


def _held(engine):
    """The calling thread's connection for the direct read (made if there is none yet)."""
    return db_reader.held_for(engine).connection


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (CI sets it)")
def test_the_direct_read_on_postgresql_returns_what_the_session_reads(app, demo, ava, database_url):
    key = mint_key(app, demo.acme, ava)
    digest = keys.hash_key(key)
    with app.app_context():
        direct = key_auth._lookup_direct(db.engine, digest)
        via_session = key_auth._lookup_in_session(digest)
        assert direct is not None and tuple(direct) == tuple(via_session)
        assert direct.created_at.utcoffset() == timedelta(0)
        assert key_auth._lookup_direct(db.engine, keys.hash_key(keys.generate_key())) is None
        # Its own connection, in autocommit; the pool's are left as their other users expect.
        assert _held(db.engine).autocommit is True
        with db.engine.connect() as connection:
            assert connection.connection.driver_connection.autocommit is False


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (CI sets it)")
def test_the_direct_read_is_one_round_trip_on_its_own_connection_with_no_pool_checkout(
        app_factory, app, demo, ava, database_url):
    """The direct path itself (no statement listener is attached, so the read is not diverted to
    the session): one prepared round trip per request, all on the thread's one connection, and
    no checkout from the pool (an API request that reads nothing else never touches it)."""
    served = app_factory()
    engine = engine_of(served)
    trips = PgRoundTrips(engine)
    checkouts = []
    event.listen(engine, "checkout", lambda *args: checkouts.append(args))
    try:
        api = Api(served.test_client(), mint_key(app, demo.acme, ava))
        for _ in range(10):  # connects, writes last_used_at; psycopg prepares the auth query
            assert_envelope(api.get("/me"), 200)
        assert not engine.dispatch.before_cursor_execute and not engine.dispatch.after_cursor_execute
        held, before, checked_out = _held(engine), trips.counts(), len(checkouts)
        for _ in range(10):
            assert_envelope(api.get("/me"), 200)
        assert trips.counts() - before == Counter({"PREPARED": 10})
        assert len(checkouts) == checked_out and _held(engine) is held and not held.closed
    finally:
        trips.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (CI sets it)")
def test_the_direct_read_keeps_one_cursor_which_outlives_a_failed_statement(
        app, demo, ava, database_url):
    """The thread's connection keeps one cursor for the read (a cursor per read sets up its
    adapters and loaders again: a third of the read's cost); a statement that failed on it
    (not a lost connection) leaves both usable for the next read."""
    key = mint_key(app, demo.acme, ava)
    digest = keys.hash_key(key)
    with app.app_context():
        engine = db.engine
        first = key_auth._lookup_direct(engine, digest)
        held = db_reader.held_for(engine)
        with mock.patch.object(type(held.connection), "cursor",
                               side_effect=AssertionError("a cursor made for a read")):
            for _ in range(3):
                assert key_auth._lookup_direct(engine, digest) == first
        with pytest.raises(engine.dialect.loaded_dbapi.errors.DivisionByZero):
            held.cursor.execute("SELECT 1 / 0")
        assert key_auth._lookup_direct(engine, digest) == first
        assert db_reader.held_for(engine) is held


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (CI sets it)")
def test_the_direct_reads_connection_is_replaced_when_it_died_went_idle_aged_or_was_disposed(
        app_factory, app, demo, ava, database_url, monkeypatch):
    served = app_factory()
    engine = engine_of(served)
    api = Api(served.test_client(), mint_key(app, demo.acme, ava))
    assert_envelope(api.get("/me"), 200)
    first = _held(engine)

    # Killed by the server (a restart, an admin): the request is retried once on a fresh
    # connection, and the pool's older connections are invalidated too.
    with engine.connect() as admin:
        admin.exec_driver_sql(f"SELECT pg_terminate_backend({first.info.backend_pid})")
    invalidated = engine.pool._invalidate_time
    assert_envelope(api.get("/me"), 200)
    second = _held(engine)
    assert second is not first and first.closed and engine.pool._invalidate_time > invalidated

    # Idle for PING_AFTER_IDLE_SECONDS: pinged first (short reply timeout), replaced if dead.
    monkeypatch.setattr(db_reader, "PING_AFTER_IDLE_SECONDS", 0.0)
    trips = PgRoundTrips(engine)  # traces the connections opened from now on
    try:
        with engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({second.info.backend_pid})")
        invalidated = engine.pool._invalidate_time
        assert_envelope(api.get("/me"), 200)
        third = _held(engine)
        assert third is not second and second.closed
        assert engine.pool._invalidate_time == invalidated  # a failed ping concerns that one only
        before = trips.counts()
        assert_envelope(api.get("/me"), 200)  # alive: pinged, kept
        assert trips.counts() - before == Counter({"ping": 1, "PREPARED": 1})
        assert _held(engine) is third
    finally:
        trips.close()
    monkeypatch.undo()

    # pool_recycle seconds old (counted from its opening, as the pool does): replaced.
    aging = app_factory(SQLALCHEMY_ENGINE_OPTIONS={"pool_recycle": 1})
    aging_api = Api(aging.test_client(), api.key)
    assert_envelope(aging_api.get("/me"), 200)
    young = _held(engine_of(aging))
    time.sleep(1.1)
    assert_envelope(aging_api.get("/me"), 200)
    assert _held(engine_of(aging)) is not young and young.closed

    # engine.dispose() closes the threads' connections with the pool's own.
    last = _held(engine)
    engine.dispose()
    assert last.closed
    assert_envelope(api.get("/me"), 200)
    assert _held(engine) is not last


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23),
                                                                max_value=timedelta(hours=23)))))
def test_the_api_timestamp_is_strftimes_iso_8601_utc_with_milliseconds(moment):
    """formatting.iso (three per API request) uses isoformat: the same text as the strftime
    form it replaced."""
    utc = moment.astimezone(UTC)
    assert iso(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    assert iso(datetime(2026, 6, 12, 16, 0, 0, 123999, UTC)) == "2026-06-12T16:00:00.123Z"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (CI sets it)")
def test_a_forked_child_opens_its_own_direct_read_connection_and_leaves_the_parents(
        app_factory, app, demo, ava, database_url):
    served = app_factory()
    engine = engine_of(served)
    key = mint_key(app, demo.acme, ava)
    assert_envelope(Api(served.test_client(), key).get("/me"), 200)
    parents = _held(engine)
    child = os.fork()
    if child == 0:  # the child: a fresh pool (as engine.dispose(close=False) makes), then a read
        ok = False
        try:
            engine.pool = engine.pool.recreate()
            with served.app_context():
                row = key_auth._lookup_direct(engine, keys.hash_key(key))
            ok = row is not None and _held(engine) is not parents and not parents.closed
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The child neither closed nor used the parent's connection: it still answers, unreplaced.
    assert parents.execute("SELECT 1").fetchone() == (1,)
    assert_envelope(Api(served.test_client(), key).get("/me"), 200)
    assert _held(engine) is parents
