"""Across processes: gunicorn with 2 workers on PostgreSQL and Redis, as in production.

Revocation must reach every worker on the very next request, and the per-key limit is one
count shared by both workers (each worker counting alone would allow twice the limit). These
need PostgreSQL and Redis, so they run on the postgresql backend when TEST_DATABASE_URL and
TEST_REDIS_URL are set (CI sets both).
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy.engine import make_url

from fvapp.services import keys
from tests.support.api import bearer, mint_key
from tests.support.marks import ON_POSTGRESQL_AND_REDIS, REDIS_URL
from tests.support.net import TcpProxy
from tests.support.processes import fvapp_server

pytestmark = ON_POSTGRESQL_AND_REDIS


@pytest.fixture
def ava(demo):
    return demo.user("ava@acme.test")


def test_revocation_reaches_every_worker_on_the_next_request(app_context, database_url, demo, ava, tmp_path):
    created = keys.create_key(demo.acme.id, ava.id, "CI pipeline")
    with fvapp_server(database_url, tmp_path) as server:
        before = server.burst("/api/v1/me", 20, bearer(created.clear))
        assert [r.status_code for r in before] == [200] * 20
        assert len(set(server.pids())) == 2  # both workers have served this key

        keys.revoke_key(demo.acme.id, created.key.id, ava.id)
        served = len(server.pids())
        after = server.burst("/api/v1/me", 20, bearer(created.clear))
        assert [r.status_code for r in after] == [401] * 20
        assert all(r.headers["WWW-Authenticate"] == "Bearer" for r in after)
        assert all(r.json()["code"] == "UNAUTHORIZED" for r in after)
        assert len(set(server.pids()[served:])) == 2  # and both workers refused it


def test_the_per_key_limit_is_one_count_across_both_workers(database_url, demo, ava, tmp_path):
    key = mint_key(demo.app, demo.acme, ava)
    other = mint_key(demo.app, demo.acme, ava, "Other application")
    with fvapp_server(database_url, tmp_path, API_RATE_LIMIT="5 per minute") as server:
        answers = server.burst("/api/v1/me", 12, bearer(key))
        assert Counter(r.status_code for r in answers) == {200: 5, 429: 7}
        assert len(set(server.pids())) == 2

        refused = server.get("/api/v1/initiatives", headers=bearer(key))
        assert refused.status_code == 429
        assert refused.json()["code"] == "RATE_LIMITED"
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["X-RateLimit-Limit"] == "5"
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert server.get("/api/v1/me", headers=bearer(other)).status_code == 200


def test_redis_going_away_never_turns_into_errors(database_url, demo, ava, tmp_path):
    key = mint_key(demo.app, demo.acme, ava)
    redis = make_url(REDIS_URL.replace("redis://", "postgresql://", 1))  # only host and port
    proxy = TcpProxy(redis.host or "127.0.0.1", redis.port or 6379).start()
    try:
        through_proxy = f"redis://127.0.0.1:{proxy.port}/{redis.database or 0}"
        with fvapp_server(database_url, tmp_path, redis_url=through_proxy) as server:
            assert [r.status_code for r in server.burst("/api/v1/me", 10, bearer(key))] == [200] * 10
            proxy.stop()
            answers = server.burst("/api/v1/me", 20, bearer(key))
            assert [r.status_code for r in answers] == [200] * 20
            proxy.start()
            assert server.get("/api/v1/me", headers=bearer(key)).status_code == 200
    finally:
        proxy.stop()
