"""The API limiter (fvapp/ratelimit.py): its stated bound, in memory with a fake clock and in
Redis with an injected `now`; one Redis round trip per authenticated request; failing open with
a circuit breaker when Redis is gone."""

from __future__ import annotations

import os
import socket
import time
import uuid

import pytest

from fvapp.ratelimit import ApiLimiter
from fvapp.services import keys
from tests.support.api import assert_envelope, bearer, mint_key

REDIS_URL = os.environ.get("TEST_REDIS_URL")
BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.skipif(
    not REDIS_URL, reason="needs TEST_REDIS_URL (CI sets it)"))]


@pytest.fixture(params=BACKENDS)
def make_limiter(request):
    def make(key_limit="10 per minute", fail_limit="3 per minute") -> ApiLimiter:
        uri = REDIS_URL if request.param == "redis" else "memory://"
        return ApiLimiter(uri, {}, f"fvapp-test-{uuid.uuid4().hex}", key_limit, fail_limit)
    return make


T0 = 1_800_000_000.0 - 1_800_000_000.0 % 60  # the start of a window


def test_an_instant_burst_never_exceeds_the_limit(make_limiter):
    limiter = make_limiter()
    allowed = [limiter.hit("ip", "k", now=T0 + 17.0).allowed for _ in range(25)]
    assert allowed.count(True) == 10 and allowed[:10] == [True] * 10


def test_a_burst_across_a_window_edge_does_not_get_twice_the_limit(make_limiter):
    limiter = make_limiter()
    edge = T0 + 60.0
    before = sum(limiter.hit("ip", "k", now=edge - 0.5).allowed for _ in range(20))
    after = sum(limiter.hit("ip", "k", now=edge + 0.5).allowed for _ in range(20))
    assert before == 10
    assert before + after <= 10 * (1 + 1.0 / 60)  # the bound L·(1 + d/T), d = 1 s: 10, not 20


@pytest.mark.parametrize("step", [0.7, 3.0, 11.0])
def test_any_interval_stays_within_the_stated_bound(make_limiter, step):
    """Requests every `step` seconds for 4 windows: any interval of length d ≤ T holds at most
    L·(1 + d/T) allowed requests."""
    limiter = make_limiter(key_limit="10 per minute")
    times = [T0 + i * step for i in range(int(240 / step))]
    allowed = [t for t in times if limiter.hit("ip", "k", now=t).allowed]
    assert allowed
    for i, start in enumerate(allowed):
        for d in (1.0, 15.0, 30.0, 60.0):
            inside = sum(1 for t in allowed[i:] if t <= start + d)
            assert inside <= 10 * (1 + d / 60), (start, d, inside)


def test_the_budget_comes_back_as_the_window_slides(make_limiter):
    limiter = make_limiter()
    for _ in range(10):
        assert limiter.hit("ip", "k", now=T0 + 1).allowed
    refused = limiter.hit("ip", "k", now=T0 + 2)
    assert not refused.allowed and refused.remaining == 0 and refused.retry_after >= 1
    later = T0 + 2 + refused.retry_after
    assert limiter.hit("ip", "k", now=later).allowed
    assert limiter.hit("ip", "other", now=T0 + 2).allowed  # per key


def test_failures_are_counted_per_address_and_block_it(make_limiter):
    limiter = make_limiter(fail_limit="3 per minute")
    for _ in range(3):
        assert limiter.fail("1.2.3.4", now=T0 + 5).allowed
    assert limiter.fail("1.2.3.4", now=T0 + 5).status == -1
    assert limiter.hit("1.2.3.4", "k", now=T0 + 6).status == -1
    assert limiter.hit("5.6.7.8", "k", now=T0 + 6).allowed


# -- one Redis round trip per request ---------------------------------------------------------


class CountingRedis:
    """Counts the commands the limiter's own redis client sends (each is one round trip: the
    limiter uses no pipelines)."""

    def __init__(self, limiter: ApiLimiter):
        self.commands: list[str] = []
        client = limiter._redis
        original = client.execute_command

        def counted(*args, **kwargs):
            self.commands.append(str(args[0]))
            return original(*args, **kwargs)

        client.execute_command = counted


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (CI sets it)")
def test_one_redis_command_per_authenticated_request_and_one_more_per_failure(
    app_factory, app, demo
):
    served = app_factory(RATELIMIT_STORAGE_URI=REDIS_URL,
                         RATELIMIT_KEY_PREFIX=f"fvapp-test-{uuid.uuid4().hex}")
    counting = CountingRedis(served.extensions["fvapp_api_limiter"])
    client, key = served.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200  # loads the script
    counting.commands.clear()
    for _ in range(10):
        response = client.get("/api/v1/me", headers=bearer(key))
        assert_envelope(response, 200)
        assert response.headers["X-RateLimit-Limit"]
    assert counting.commands == ["EVALSHA"] * 10
    counting.commands.clear()
    assert client.get("/api/v1/me", headers=bearer("nope")).status_code == 401
    assert counting.commands == ["EVALSHA"]  # a malformed key: the failure only
    counting.commands.clear()
    assert client.get("/api/v1/me", headers=bearer(keys.generate_key())).status_code == 401
    assert counting.commands == ["EVALSHA", "EVALSHA"]  # the check, then the failure
    counting.commands.clear()
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert counting.commands == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_redis_down_fails_open_to_memory_and_the_breaker_skips_it_for_a_while():
    limiter = ApiLimiter(f"redis://127.0.0.1:{_closed_port()}/0",
                         {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
                         "fvapp-test", "2 per minute", "3 per minute")
    calls = []
    original = limiter._redis.execute_command
    limiter._redis.execute_command = lambda *a, **k: calls.append(a[0]) or original(*a, **k)
    started = time.monotonic()
    decisions = [limiter.hit("ip", "k").allowed for _ in range(5)]
    assert decisions == [True, True, False, False, False]  # still limited, in memory
    assert len(calls) == 1  # the breaker opened after the first failure
    assert time.monotonic() - started < 2
