"""Abuse of the rate limits (SPEC §11): the failed-authentication budget of an address slows
down unknown and invalid keys only, never a key that authenticates (shared NAT, CI egress, a
proxy without TRUSTED_PROXY_HOPS); and every instance counts its windows on one clock, Redis's,
whatever its own clock says."""

from __future__ import annotations

import time
import uuid

import pytest

from fvapp.ratelimit import ApiLimiter, Limit, Store
from fvapp.services import keys
from tests.support.api import assert_envelope, bearer, mint_key
from tests.support.marks import PG_URL, REDIS_URL
from tests.support.processes import fvapp_server

ON_REDIS = pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (CI sets it)")
STORES = ["memory", pytest.param("redis", marks=ON_REDIS)]


@pytest.mark.parametrize("store", STORES)
def test_random_keys_from_an_address_do_not_lock_out_a_valid_key_from_it(
    app_factory, app, demo, store
):
    config = {"API_AUTH_FAILURE_LIMIT": "30 per minute"}
    if store == "redis":
        config.update(RATELIMIT_STORAGE_URI=REDIS_URL,
                      RATELIMIT_KEY_PREFIX=f"fvapp-test-{uuid.uuid4().hex}")
    client = app_factory(**config).test_client()
    key = mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))
    assert_envelope(client.get("/api/v1/me", headers=bearer(key)), 200)
    for _ in range(30):
        random_key = bearer(keys.generate_key())
        assert_envelope(client.get("/api/v1/me", headers=random_key), 401, "UNAUTHORIZED")
    for _ in range(3):  # the address is over its budget: unknown keys are slowed down
        sprayed = client.get("/api/v1/me", headers=bearer(keys.generate_key()))
        assert_envelope(sprayed, 429, "RATE_LIMITED")
        assert int(sprayed.headers["Retry-After"]) >= 1
        assert client.get("/api/v1/me", headers=bearer("fvk_live_nope")).status_code == 429
    for _ in range(5):  # the valid key is judged by its own limit alone
        served = client.get("/api/v1/me", headers=bearer(key))
        assert_envelope(served, 200)
        assert int(served.headers["X-RateLimit-Remaining"]) > 0
        assert "Retry-After" not in served.headers


@pytest.mark.slow
@pytest.mark.skipif(not (PG_URL and REDIS_URL),
                    reason="needs TEST_DATABASE_URL and TEST_REDIS_URL (CI sets both)")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_random_keys_do_not_lock_out_a_valid_key_in_any_worker(
    app_context, database_url, demo, tmp_path
):
    """gunicorn, two workers, one Redis: the same, whichever worker serves which request."""
    created = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "CI pipeline")
    with fvapp_server(database_url, tmp_path, API_AUTH_FAILURE_LIMIT="30 per minute") as server:
        assert [r.status_code for r in server.burst("/api/v1/me", 10, bearer(created.clear))] \
            == [200] * 10
        sprayed = [server.get("/api/v1/me", headers=bearer(keys.generate_key())).status_code
                   for _ in range(36)]
        assert sprayed == [401] * 30 + [429] * 6
        again = server.burst("/api/v1/me", 20, bearer(created.clear))
        assert [r.status_code for r in again] == [200] * 20
        assert len(set(server.pids())) == 2  # both workers served


# -- one clock -------------------------------------------------------------------------------


def redis_time(store: Store) -> float:
    seconds, microseconds = store.redis.time()
    return seconds + microseconds / 1e6


def wait_for_phase(store: Store, period: float, start: float, end: float) -> None:
    """Wait (less than one period) until Redis's clock is between `start` and `end` seconds
    into a window of `period` seconds."""
    for _ in range(2000):
        phase = redis_time(store) % period
        if start <= phase < end:
            return
        time.sleep(min(0.005, (start - phase) % period))
    raise AssertionError("Redis's clock never reached the phase")


@ON_REDIS
def test_instances_whose_clocks_differ_count_one_window_across_an_edge():
    """Two instances, the second's clock 1.5 s ahead of the first's, a limit of 100 per 2 s,
    both bursting just before a window edge (by Redis's clock) and just after it: together at
    most L·(1 + d/T) over the d seconds the bursts span, not the 2L that two clocks in
    different windows would let through."""
    prefix, limit = f"fvapp-test-{uuid.uuid4().hex}", Limit(100, 2)
    patient = {"socket_timeout": 5, "socket_connect_timeout": 5}  # busy machine ≠ Redis down
    first, second = (ApiLimiter(Store(REDIS_URL, patient, prefix), limit, Limit(1000, 60))
                     for _ in range(2))
    clocks = ((first, 0.0), (second, 1.5))  # each instance's own clock: time.time() + skew
    wait_for_phase(first.store, 2, 1.6, 1.7)  # 0.3–0.4 s before an edge
    began = time.time()
    admitted = burst(clocks)
    wait_for_phase(first.store, 2, 0.05, 0.3)  # just after the edge
    admitted += burst(clocks)
    span = time.time() - began
    first.store.close()
    second.store.close()
    assert span < 2
    print(f"\nclocks 1.5 s apart: {admitted} admitted in {span:.2f} s for 100 per 2 s")
    assert admitted <= limit.amount * (1 + span / limit.period)
    assert first.store.breaker.trips == second.store.breaker.trips == 0  # Redis answered


def burst(clocks) -> int:
    """150 requests for one key from each instance, on its own clock: how many admitted."""
    return sum(limiter.admit("k", now=time.time() + skew).allowed
               for limiter, skew in clocks for _ in range(150))
