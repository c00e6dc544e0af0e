"""The API limiter (fvapp/ratelimit.py): its stated bound, in memory with a fake clock and in
Redis with an injected `now`, also with leases shared out to several processes; at most one
Redis round trip per authenticated request, and few for a busy key (leases), unused tokens
given back; failing open with a circuit breaker when Redis is gone."""

from __future__ import annotations

import bisect
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from types import SimpleNamespace
from unittest import mock
from urllib.parse import urlsplit

import pytest

from fvapp import ratelimit
from fvapp.ratelimit import ApiLimiter
from fvapp.services import keys
from tests.support.api import assert_envelope, bearer, mint_key
from tests.support.net import RedisCommands

REDIS_URL = os.environ.get("TEST_REDIS_URL")
BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.skipif(
    not REDIS_URL, reason="needs TEST_REDIS_URL (CI sets it)"))]


@pytest.fixture(params=BACKENDS)
def make_limiter(request):
    made = []

    def make(key_limit="10 per minute", fail_limit="3 per minute") -> ApiLimiter:
        uri = REDIS_URL if request.param == "redis" else "memory://"
        made.append(ApiLimiter(uri, {}, f"fvapp-test-{uuid.uuid4().hex}", key_limit, fail_limit))
        return made[-1]

    yield make
    # Redis really answered: the fallback to memory would pass these tests on its own.
    assert all(limiter._down_until == 0.0 for limiter in made)


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


# -- at most one Redis round trip per request, most of them none (leases) -------------------

ON_REDIS = pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (CI sets it)")


def lease_trips(requests: int, first: int = 1) -> int:
    """Script calls that `requests` requests for one key need in one process, at one instant
    (no lease expires) and far from the limit: slow start from a lease of `first`, doubling up
    to MAX_LEASE (ratelimit.Lease.want)."""
    trips, size = 0, first
    while requests > 0:
        trips, requests, size = trips + 1, requests - size, min(ratelimit.MAX_LEASE, 2 * size)
    return trips


@contextmanager
def frozen_clock(at: float):
    """The limiter's wall clock stopped at `at` (its monotonic one runs): no lease expires."""
    with mock.patch.object(ratelimit, "time", SimpleNamespace(time=lambda: at,
                                                              monotonic=time.monotonic)):
        yield


@contextmanager
def wire_app(app_factory, **config):
    """An app whose limiter talks to Redis through a proxy that records every command."""
    target = urlsplit(REDIS_URL)
    wire = RedisCommands(target.hostname or "127.0.0.1", target.port or 6379).start()
    try:
        yield wire, app_factory(RATELIMIT_STORAGE_URI=wire.url(),
                                RATELIMIT_KEY_PREFIX=f"fvapp-test-{uuid.uuid4().hex}", **config)
    finally:
        wire.stop()


@ON_REDIS
def test_sustained_requests_for_a_key_need_few_redis_commands_and_never_two(
    app_factory, app, demo
):
    """Counted on the wire: a proxy in front of Redis records every command the app sends.
    A high limit, one key, 200 requests: at most one command each, and only the lease grants
    of the slow start (8 for 200 with MAX_LEASE 64), with the X-RateLimit-Remaining that
    counting each request would give."""
    with wire_app(app_factory, API_RATE_LIMIT="1000000 per hour") as (wire, served), \
            frozen_clock(T0 + 1800.0):
        client, key = served.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))
        assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
        with wire._lock:
            wire.commands.clear()  # the connection's handshake, the first EVALSHA (or EVAL)
        sent, remaining = [], []
        for _ in range(200):
            response = client.get("/api/v1/me", headers=bearer(key))
            assert_envelope(response, 200)
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
            sent.append(taken(wire))
        assert all(commands in ([], ["EVALSHA"]) for commands in sent)
        assert sum(map(len, sent)) == lease_trips(200, first=2)  # the first lease was 1 token
        assert remaining == [1000000 - n for n in range(2, 202)]
        assert client.get("/api/v1/me", headers=bearer("nope")).status_code == 401
        expect(wire, ["EVALSHA"])  # a malformed key: the failure only
        assert client.get("/api/v1/me", headers=bearer(keys.generate_key())).status_code == 401
        expect(wire, ["EVALSHA", "EVALSHA"])  # the check, then the failure
        assert client.get("/api/v1/openapi.json").status_code == 200
        expect(wire, [])


@ON_REDIS
def test_a_small_limit_is_one_redis_command_per_request_as_before(app_factory, app, demo):
    """L = 20: a lease of ⌊(L − e)/SHARE⌋ tokens is one token, so each request asks Redis."""
    with wire_app(app_factory, API_RATE_LIMIT="20 per minute") as (wire, served):
        client, key = served.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))
        assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
        taken(wire)
        for _ in range(10):
            assert_envelope(client.get("/api/v1/me", headers=bearer(key)), 200)
        expect(wire, ["EVALSHA"] * 10)


def taken(wire: RedisCommands) -> list[str]:
    """The commands sent since the last call. The proxy relays on its own thread, but the app
    reads each reply only after the proxy has counted the command, so nothing is missed."""
    with wire._lock:
        sent, wire.commands[:] = list(wire.commands), []
    return sent


def expect(wire: RedisCommands, commands: list[str]) -> None:
    sent = taken(wire)
    assert sent == commands, sent


def test_the_script_is_loaded_again_when_redis_forgot_it(make_limiter):
    """After a restart or SCRIPT FLUSH the server answers NOSCRIPT: the limiter sends the
    script itself (EVAL) and the request is counted, not refused or served uncounted."""
    limiter = make_limiter("2 per minute")
    limiter._sha = "0" * 40  # a script the server has never seen
    assert [limiter.hit("1.2.3.4", "k").allowed for _ in range(3)] == [True, True, False]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_redis_down_fails_open_to_memory_and_the_breaker_skips_it_for_a_while():
    limiter = ApiLimiter(f"redis://127.0.0.1:{_closed_port()}/0",
                         {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
                         "fvapp-test", "2 per minute", "3 per minute")
    calls = []
    original = limiter._send
    limiter._send = lambda *a: calls.append(a) or original(*a)
    started = time.monotonic()
    decisions = [limiter.hit("ip", "k").allowed for _ in range(5)]
    assert decisions == [True, True, False, False, False]  # still limited, in memory
    assert len(calls) == 1  # the breaker opened after the first failure
    assert time.monotonic() - started < 2


# -- leases: the bound across processes, give-back, headers ----------------------------------


@pytest.fixture
def redis_limiters():
    """ApiLimiters on real Redis sharing a fresh prefix: processes of one deployment."""
    prefix, made = f"fvapp-test-{uuid.uuid4().hex}", []

    def make(count: int, key_limit: str) -> list[ApiLimiter]:
        made.extend(ApiLimiter(REDIS_URL, {}, prefix, key_limit, "1000 per minute")
                    for _ in range(count))
        return made[-count:]

    yield make
    assert all(limiter._down_until == 0.0 for limiter in made)  # Redis really answered


def counted(limiter: ApiLimiter, key_digest: str, now: float) -> int:
    """The key's counter in Redis for the window of `now`."""
    number, _ = limiter.key_limit.window(now)
    return int(limiter._redis.get(f"{limiter.prefix}:apikey:{key_digest}:{number}") or 0)


def trips_of(limiter: ApiLimiter) -> list:
    """Records each script call the limiter sends."""
    calls, send = [], limiter._send
    limiter._send = lambda *a: calls.append(a) or send(*a)
    return calls


@ON_REDIS
@pytest.mark.parametrize("seed", range(6))
def test_the_bound_holds_with_leases_across_processes(redis_limiters, monkeypatch, seed):
    """Four processes, one key, requests in random bursts from random processes over four
    windows (leases of up to 10 s here, so that one crossing a window edge would show): any
    interval of length d ≤ T holds at most L·(1 + d/T) admitted requests."""
    monkeypatch.setattr(ratelimit, "LEASE_SECONDS", 10.0)
    rng, limit = random.Random(seed), 1000
    processes = redis_limiters(4, f"{limit} per minute")
    trips = [trips_of(process) for process in processes]
    t, admitted, asked = T0, [], 0
    while t < T0 + 240:
        t += rng.choice([0.0, 0.0, 0.01, 0.2, 1.0, rng.uniform(0, 8)])
        process = rng.choice(processes)
        for _ in range(rng.choice([1, 1, 5, 30, 100])):
            asked += 1
            if process.hit("ip", "k", now=t).allowed:
                admitted.append(t)
    for i, start in enumerate(admitted):
        for d in (0.0, 1.0, 5.0, 15.0, 30.0, 60.0):
            inside = bisect.bisect_right(admitted, start + d) - i
            assert inside <= limit * (1 + d / 60), (start - T0, d, inside)
    per_window = Counter(int((at - T0) // 60) for at in admitted)
    assert max(per_window.values()) <= limit  # a window's counter never exceeds L
    assert len(admitted) > 4 * limit * 0.8  # the limit was reached, window after window
    local = asked - sum(map(len, trips))  # requests a lease served, without Redis
    assert local > len(admitted) / 3, (asked, len(admitted), local)


@ON_REDIS
def test_unused_tokens_are_given_back_by_the_next_call(redis_limiters):
    limiter, = redis_limiters(1, "100000 per minute")
    trips = trips_of(limiter)
    at = T0 + 10.0
    for _ in range(4):  # leases of 1, 2, then 4 tokens: 7 counted, 4 used
        assert limiter.hit("ip", "k", now=at).allowed
    assert len(trips) == 3 and counted(limiter, "k", at) == 7
    later = at + ratelimit.LEASE_SECONDS + 0.5  # the lease expired with 3 tokens unused
    assert limiter.hit("ip", "k", now=later).allowed
    assert len(trips) == 4 and counted(limiter, "k", later) == 5  # the tokens actually used
    assert limiter.hit("ip", "k", now=later).allowed  # that lease was of 1 (what was used)
    assert len(trips) == 5 and counted(limiter, "k", later) == 7  # then 2: 1 held


@ON_REDIS
def test_a_lease_ends_at_its_window_edge_and_gives_back_to_that_window(redis_limiters):
    limiter, = redis_limiters(1, "100000 per minute")
    trips = trips_of(limiter)
    edge = T0 + 60.0
    for _ in range(4):
        assert limiter.hit("ip", "k", now=edge - 0.1).allowed
    assert counted(limiter, "k", edge - 0.1) == 7
    assert limiter.hit("ip", "k", now=edge + 0.1).allowed  # not from the old window's lease
    assert len(trips) == 4
    assert counted(limiter, "k", edge - 0.1) == 4 and counted(limiter, "k", edge + 0.1) == 4
    # The lease cut by the edge was the same size (4 tokens): it serves 3 more here.
    for _ in range(3):
        assert limiter.hit("ip", "k", now=edge + 0.2).allowed
    assert len(trips) == 4


@ON_REDIS
def test_remaining_counts_down_as_counting_each_request_would(redis_limiters):
    """One process with leases says, request after request, the X-RateLimit-Remaining and
    Reset of the limiter without them (in memory: one count per request), in the first window
    and in the next one (where the previous window weighs)."""
    leased, = redis_limiters(1, "1000 per minute")
    plain = ApiLimiter("memory://", {}, "p", "1000 per minute", "1000 per minute")
    trips = trips_of(leased)
    for at in (T0 + 10.0, T0 + 70.0):
        for _ in range(300):
            a, b = leased.hit("ip", "k", now=at), plain.hit("ip", "k", now=at)
            assert (a.remaining, a.reset, a.limit) == (b.remaining, b.reset, b.limit)
    assert len(trips) < 40


@ON_REDIS
def test_threads_sharing_a_limiter_count_every_token_once(redis_limiters):
    """gthread workers: one process, eight threads, one key, past its limit, at one instant.
    Never more admitted than the limit, and Redis counts exactly the admitted requests plus
    the tokens this process still holds or has to give back."""
    limiter, = redis_limiters(1, "500 per minute")
    at, admitted, start = T0 + 5.0, [], threading.Barrier(8)

    def work():
        start.wait()
        admitted.append(sum(limiter.hit("ip", "k", now=at).allowed for _ in range(150)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = sum((lease.unused() or (0, 0))[1] for lease in limiter._leases.values())
    assert 250 <= sum(admitted) <= 500
    assert counted(limiter, "k", at) == sum(admitted) + held
