"""What the API's hot path skips, and what it must not: the envelope written without building
its model, the pages' request hooks left out under /api, the limiter's round trip overlapping
the key's read without letting a refused request write or a refused flood reach the database
(nor a lease serve an address refused lately),
and the direct read on PostgreSQL returning what the session's would. (Round trips per request
are counted in tests/test_api_resilience.py and tests/test_ratelimit.py.)"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select

from fvapp.api import envelope
from fvapp.api.schemas import Envelope, Me, Meta
from fvapp.extensions import db
from fvapp.models import ApiKey
from fvapp.services import key_auth, keys
from tests.support.api import assert_envelope, bearer, mint_key
from tests.support.tracing import engine_of, sql_statements

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
                    "last_used_at": None},
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
        # The connection went back to the pool as the pool's other users expect it.
        with db.engine.connect() as connection:
            assert connection.connection.driver_connection.autocommit is False
