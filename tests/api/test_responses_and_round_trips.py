"""What the API's hot path skips, and what it must not: the envelope written without building
its model (the same bytes), the security headers as they were, the pages' extensions absent from
the API app (no CSRF, Flask-Login, Flask-Limiter or cookie session under /api), the limiter's
round trip overlapping the key's read without letting a refused request write or a refused
flood reach the database (nor a lease serve an address refused lately), and the key's read: one
path, the same whether or not statements are being counted, one round trip on the wire (libpq's
trace). (Round trips per request are also counted in tests/ops/test_redis_and_database_failures.py and
tests/services/test_rate_limits.py.)"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from unittest import mock

import pytest
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from fvapp import api_app, ratelimit, security
from fvapp.api import envelope
from fvapp.api.schemas import Envelope, Me, Meta
from fvapp.extensions import db
from fvapp.formatting import iso
from fvapp.models import ApiKey, Workspace
from fvapp.services import key_auth, keys
from tests.support.api import Api, assert_envelope, bearer, mint_key
from tests.support.marks import on_postgresql
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


def test_every_kind_of_api_answer_carries_the_security_headers_once(app_factory, app, demo, ava):
    """fvapp/security.py's ApiHeaders wraps the API app: refusals, routing errors, the public
    OpenAPI document and the reference page (its own CSP kept, not a second one) get them too."""
    served = app_factory(USAGE_FLUSH_IN_BACKGROUND=False)
    client = served.test_client()
    key = mint_key(app, demo.acme, ava)
    answers = {
        "200": client.get("/api/v1/me", headers=bearer(key)),
        "401": client.get("/api/v1/me", headers=bearer("fvk_live_" + "A" * 40)),
        "404": client.get("/api/v1/nowhere"),
        "405": client.delete("/api/v1/me", headers=bearer(key)),
        "openapi": client.get("/api/v1/openapi.json"),
        "mcp manifest": client.get("/api/mcp"),
        "reference page": client.get("/api/v1/docs"),
    }
    for what, response in answers.items():
        names = [name.lower() for name, _ in response.headers]
        for name, _ in (*security.DEFAULTS, ("Cache-Control", "no-store")):
            assert names.count(name.lower()) == 1, (what, name, response.headers)
        assert response.headers.getlist("Vary") == ["HX-Request", "Cookie"], what
    assert answers["reference page"].headers["Content-Security-Policy"] != security.CSP


def test_the_api_app_has_none_of_the_pages_extensions(app_factory, app, demo, ava):
    """The API app registers no CSRF, no Flask-Login, no Flask-Limiter and no session: none of
    their hooks runs for an API request, and a browser's session cookie is neither read nor
    set there. The pages keep them (one hook each per page request)."""
    with mock.patch.object(Limiter, "_check_request_limit", autospec=True) as limiter_hook, \
            mock.patch.object(LoginManager, "_update_remember_cookie", autospec=True,
                              side_effect=lambda manager, response: response) as login_hook, \
            mock.patch.object(CSRFProtect, "protect", autospec=True) as csrf_hook:
        served = app_factory()
        client = served.test_client()
        key = mint_key(app, demo.acme, ava)
        assert_envelope(client.get("/api/v1/me", headers=bearer(key)), 200)
        assert_envelope(client.get("/api/v1/nowhere"), 404, "NOT_FOUND")
        assert_envelope(client.post("/api/v1/initiatives", headers=bearer(key),
                                    json={"title": "No CSRF token"}), 201)
        assert limiter_hook.call_count == login_hook.call_count == csrf_hook.call_count == 0
        assert client.get("/login").status_code == 200
        assert limiter_hook.call_count == login_hook.call_count == csrf_hook.call_count == 1
    api = api_app(served)
    assert {"csrf", "limiter", "sqlalchemy"} <= set(served.extensions)
    assert not {"csrf", "limiter", "login_manager"} & set(api.extensions)
    assert not hasattr(api, "login_manager")
    client.set_cookie("session", "anything")
    answer = client.get("/api/v1/me", headers=bearer(key))
    assert_envelope(answer, 200)
    assert "Set-Cookie" not in answer.headers


def test_a_refused_key_writes_nothing_and_a_refused_flood_reaches_no_database(
    app_factory, app, demo, ava
):
    limited = app_factory(API_RATE_LIMIT="2 per minute")
    key = mint_key(app, demo.acme, ava)
    other_process = ratelimit.api_limiter(limited)  # on the same counters
    digest = keys.hash_key(key)[:32]
    for _ in range(2):  # another process spent the key's budget, which this one does not know
        assert other_process.admit(digest).allowed
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
def test_a_lease_keeps_serving_a_valid_key_from_an_address_over_its_failure_budget(
    app_factory, app, demo, ava
):
    """Tokens this process leased for a key serve its requests without asking Redis, also
    from an address whose failure budget is spent: a key that authenticates is judged by its
    own limit alone (SPEC §11). The key's read still happens; Redis is not asked."""
    served = app_factory(RATELIMIT_STORAGE_URI=REDIS_URL,
                         RATELIMIT_KEY_PREFIX=f"fvapp-test-{uuid.uuid4().hex}",
                         API_RATE_LIMIT="100000 per minute", API_AUTH_FAILURE_LIMIT="3 per minute")
    limiter = api_app(served).extensions["fvapp_api_limiter"]
    key, client = mint_key(app, demo.acme, ava), served.test_client()
    for _ in range(4):  # leases of 1, 2, then 4 tokens: 3 left
        assert_envelope(client.get("/api/v1/me", headers=bearer(key)), 200)
    (lease,) = limiter.leases.values()
    assert (lease.granted, lease.used) == (4, 1)
    for status in (401, 401, 401, 429):  # this address's failure budget, spent
        assert client.get("/api/v1/me", headers=bearer("nope")).status_code == status
    with sql_statements(engine_of(served)) as seen:
        assert_envelope(client.get("/api/v1/me", headers=bearer(key)), 200)
    assert len(seen) == 1 and seen[0].startswith("SELECT")
    assert (lease.granted, lease.used) == (4, 2)  # served from the lease


@on_postgresql
def test_the_key_read_is_one_round_trip_counted_or_not(app_factory, app, demo, ava, database_url):
    """On the wire (libpq's trace): an authenticated GET /me whose last_used_at is fresh makes
    one round trip to PostgreSQL, the key's read, and nothing else (no BEGIN, COMMIT, ping or
    reset); the same with a statement listener attached (one read path: counting the
    statements does not change what is sent)."""
    served = app_factory()
    engine = engine_of(served)
    trips = PgRoundTrips(engine)
    try:
        api = Api(served.test_client(), mint_key(app, demo.acme, ava))
        for _ in range(10):  # connects, writes last_used_at; psycopg prepares the auth query
            assert_envelope(api.get("/me"), 200)
        before = trips.counts()
        for _ in range(5):
            assert_envelope(api.get("/me"), 200)
        quiet = trips.counts() - before
        before = trips.counts()
        with sql_statements(engine) as seen:
            for _ in range(5):
                assert_envelope(api.get("/me"), 200)
        counted = trips.counts() - before
        assert quiet == counted == Counter({"PREPARED": 5}), (quiet, counted)
        assert len(seen) == 5 and all(s.startswith("SELECT") for s in seen)
    finally:
        trips.close()


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


@on_postgresql
def test_reads_take_no_connection_from_the_pool_per_request(app_factory, app, demo, ava,
                                                            database_url):
    """A thread keeps its reading connection (transaction.read), taken from the pool once and
    detached from it (PoolProxiedConnection.detach): the pool's checkout event (SQLAlchemy's
    PoolEvents) does not fire for a GET, and the thread's connection is closed when the thread
    ends and when the engine is disposed (the pool's close_detached event)."""
    import gc
    import threading

    from sqlalchemy import event

    served = app_factory()
    engine = engine_of(served)
    detached, closed = [], []
    event.listen(engine, "detach", lambda *args: detached.append(1))
    event.listen(engine, "close_detached", lambda *args: closed.append(1))
    api = Api(served.test_client(), mint_key(app, demo.acme, ava))
    assert_envelope(api.get("/me"), 200)  # the first: takes the reading connection, touches
    assert (len(detached), closed) == (1, [])
    checkouts = []
    event.listen(engine, "checkout", lambda *args: checkouts.append(1))
    for _ in range(5):
        assert_envelope(api.get("/me"), 200)
        assert_envelope(api.get("/initiatives?limit=5"), 200)
    assert checkouts == [] and len(detached) == 1
    assert engine.pool.checkedout() == 0  # the reading connection is the thread's, not the pool's

    def on_a_thread():
        assert_envelope(api.get("/me"), 200)

    worker = threading.Thread(target=on_a_thread)
    worker.start()
    worker.join(timeout=30)
    assert len(checkouts) == 1 and len(detached) == 2  # the new thread's own
    del worker
    gc.collect()
    assert len(closed) == 1  # the ended thread's was closed
    engine.dispose()
    assert len(closed) == 2  # this thread's too
    assert_envelope(api.get("/me"), 200)  # a fresh one, from the new pool
    assert len(detached) == 3 and len(closed) == 2


@on_postgresql
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Chatham"])
def test_reads_give_utc_datetimes_whatever_the_connections_time_zone(app_factory, demo, ava,
                                                                     database_url, zone):
    """transaction.read runs its compiled statement on psycopg's cursor: its rows are named
    tuples, the datetimes in UTC (tzinfo datetime.UTC) as models.UTCDateTime gives them through
    the session, also on a connection whose TimeZone is not UTC (the engine's is: config)."""
    from fvapp.services import initiatives
    from fvapp.services.transaction import read

    served = app_factory(SQLALCHEMY_ENGINE_OPTIONS={
        "connect_args": {"options": f"-c TimeZone={zone}"}})
    key = mint_key(demo.app, demo.acme, ava)
    with demo.app.app_context():
        made = initiatives.create_initiative(demo.acme.id, ava.id, "Zoned", None)
        expected = db.session.execute(key_auth._BY_HASH, {"key_hash": keys.hash_key(key)}).one()
    with api_app(served).app_context():
        (row,) = read(key_auth._BY_HASH, {"key_hash": keys.hash_key(key)})
        got = initiatives.get_initiative(demo.acme.id, made.id)
    assert tuple(row) == tuple(expected) and row._fields == tuple(expected._fields)
    assert row.created_at.tzinfo is UTC and row.created_at == expected.created_at
    assert tuple(got) == tuple(made) and got.created_at.tzinfo is UTC
    assert got.archived_at is None and got.archived is False
