"""The API limiter (fvapp/ratelimit/): its stated bound, in memory with a fake clock and on real
Redis (its clock is this machine's: Redis runs here), also with leases shared out to several
processes; at most one Redis round trip per authenticated request, and few for a busy key
(leases), unused tokens given back; failing open with a circuit breaker when Redis is gone."""

from __future__ import annotations

import bisect
import random
import socket
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

from fvapp.ratelimit import ApiLimiter, Limit, Store, api
from fvapp.services import keys
from tests.support.api import assert_envelope, bearer, mint_key
from tests.support.browser import Browser
from tests.support.marks import REDIS_URL
from tests.support.net import RedisCommands

ON_REDIS = pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (CI sets it)")
PATIENT = {"socket_timeout": 5, "socket_connect_timeout": 5}  # a busy machine is not Redis down


def memory_limiter(key_limit="10 per minute", fail_limit="3 per minute") -> ApiLimiter:
    return ApiLimiter(Store("memory://", {}, "p"), Limit.parse(key_limit), Limit.parse(fail_limit))


T0 = 1_800_000_000.0 - 1_800_000_000.0 % 60  # the start of a window (a fake clock: memory)


def test_an_instant_burst_never_exceeds_the_limit():
    limiter = memory_limiter()
    allowed = [limiter.admit("k", now=T0 + 17.0).allowed for _ in range(25)]
    assert allowed.count(True) == 10 and allowed[:10] == [True] * 10


def test_a_burst_across_a_window_edge_does_not_get_twice_the_limit():
    limiter = memory_limiter()
    edge = T0 + 60.0
    before = sum(limiter.admit("k", now=edge - 0.5).allowed for _ in range(20))
    after = sum(limiter.admit("k", now=edge + 0.5).allowed for _ in range(20))
    assert before == 10
    assert before + after <= 10 * (1 + 1.0 / 60)  # the bound L·(1 + d/T), d = 1 s: 10, not 20


@pytest.mark.parametrize("step", [0.7, 3.0, 11.0])
def test_any_interval_stays_within_the_stated_bound(step):
    """Requests every `step` seconds for 4 windows: any interval of length d ≤ T holds at most
    L·(1 + d/T) allowed requests."""
    limiter = memory_limiter(key_limit="10 per minute")
    times = [T0 + i * step for i in range(int(240 / step))]
    allowed = [t for t in times if limiter.admit("k", now=t).allowed]
    assert allowed
    for i, start in enumerate(allowed):
        for d in (1.0, 15.0, 30.0, 60.0):
            inside = sum(1 for t in allowed[i:] if t <= start + d)
            assert inside <= 10 * (1 + d / 60), (start, d, inside)


def test_the_budget_comes_back_as_the_window_slides():
    limiter = memory_limiter()
    for _ in range(10):
        assert limiter.admit("k", now=T0 + 1).allowed
    refused = limiter.admit("k", now=T0 + 2)
    assert not refused.allowed and refused.remaining == 0 and refused.retry_after >= 1
    assert limiter.recently_refused("k") and not limiter.recently_refused("other")
    later = T0 + 2 + refused.retry_after
    assert limiter.admit("k", now=later).allowed
    assert limiter.admit("other", now=T0 + 2).allowed  # per key


@pytest.mark.parametrize("store", ["memory", pytest.param("redis", marks=ON_REDIS)])
def test_failures_are_counted_per_address_and_never_touch_a_key(store):
    uri = REDIS_URL if store == "redis" else "memory://"
    limiter = ApiLimiter(Store(uri, PATIENT, f"fvapp-test-{uuid.uuid4().hex}"),
                         Limit.parse("10 per minute"), Limit.parse("3 per minute"))
    for _ in range(3):
        assert limiter.fail("1.2.3.4").allowed
    refused = limiter.fail("1.2.3.4")
    assert not refused.allowed and refused.limit == 3 and refused.retry_after >= 1
    assert refused.reset >= int(time.time()) + refused.retry_after - 1
    assert limiter.fail("5.6.7.8").allowed
    assert limiter.admit("k").allowed  # a key is judged by its own limit alone
    limiter.store.close()
    assert limiter.store.breaker.trips == 0  # Redis really answered


# -- at most one Redis round trip per request, most of them none (leases) -------------------


def lease_trips(requests: int, first: int = 1) -> int:
    """Script calls that `requests` requests for one key need in one process, no lease
    expiring and far from the limit: slow start from a lease of `first`, doubling up to
    MAX_LEASE (api.Lease.want)."""
    trips, size = 0, first
    while requests > 0:
        trips, requests, size = trips + 1, requests - size, min(api.MAX_LEASE, 2 * size)
    return trips


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
    app_factory, app, demo, monkeypatch
):
    """Counted on the wire: a proxy in front of Redis records every command the app sends.
    A high limit, one key, 200 requests: at most one command each, and only the lease grants
    of the slow start (8 for 200 with MAX_LEASE 64), with the X-RateLimit-Remaining that
    counting each request would give. (Leases last a minute here, so none expires meanwhile.)"""
    monkeypatch.setattr(api, "LEASE_SECONDS", 60.0)
    with wire_app(app_factory, API_RATE_LIMIT="1000000 per day") as (wire, served):
        client, key = served.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))
        assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
        with wire._lock:
            wire.commands.clear()  # the connection's handshake, the script's first call
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
        expect(wire, ["EVALSHA"])  # an unknown key: read, then the failure only
        assert client.get("/api/v1/openapi.json").status_code == 200
        expect(wire, [])


@ON_REDIS
def test_a_small_limit_is_one_redis_command_per_request(app_factory, app, demo):
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


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_redis_down_fails_open_to_memory_and_the_breaker_skips_it_for_a_while():
    store = Store(f"redis://127.0.0.1:{_closed_port()}/0",
                  {"socket_timeout": 0.2, "socket_connect_timeout": 0.2}, "fvapp-test")
    limiter = ApiLimiter(store, Limit.parse("2 per minute"), Limit.parse("3 per minute"))
    started = time.monotonic()
    decisions = [limiter.admit("k").allowed for _ in range(5)]
    assert decisions == [True, True, False, False, False]  # still limited, in memory
    assert [limiter.fail("ip").allowed for _ in range(4)] == [True, True, True, False]
    store.close()
    assert store.breaker.trips == 1  # the breaker opened after the first failure
    assert time.monotonic() - started < 2


# -- leases on real Redis: the bound across processes, give-back, headers --------------------


@pytest.fixture
def redis_limiters():
    """ApiLimiters on real Redis sharing a fresh prefix: processes of one deployment."""
    prefix, made = f"fvapp-test-{uuid.uuid4().hex}", []

    def make(count: int, key_limit: str) -> list[ApiLimiter]:
        made.extend(ApiLimiter(Store(REDIS_URL, PATIENT, prefix), Limit.parse(key_limit),
                               Limit.parse("1000 per minute")) for _ in range(count))
        return made[-count:]

    yield make
    for limiter in made:
        limiter.store.close()
    assert all(limiter.store.breaker.trips == 0 for limiter in made)  # Redis really answered


def redis_now(limiter: ApiLimiter) -> float:
    seconds, microseconds = limiter.store.redis.time()
    return seconds + microseconds / 1e6


def wait_for_phase(limiter: ApiLimiter, start: float, end: float) -> None:
    """Wait (less than one period) until Redis's clock is `start` to `end` seconds into one of
    the key limit's windows."""
    period = limiter.key_limit.period
    for _ in range(5000):
        phase = redis_now(limiter) % period
        if start <= phase < end:
            return
        time.sleep(min(0.01, (start - phase) % period))
    raise AssertionError("Redis's clock never reached the phase")


def counted(limiter: ApiLimiter, key_digest: str, at: float) -> int:
    """The key's count in Redis for the window of `at` (Redis's clock)."""
    number, _ = limiter.key_limit.window(at)
    found = limiter.store.redis.hget(limiter.store.key(f"apikey:{key_digest}"), str(number))
    return int(found or 0)


def trips_of(limiter: ApiLimiter) -> list:
    """Records each call the limiter makes to its store."""
    calls, take = [], limiter.store.take
    limiter.store.take = lambda *a, **kw: calls.append(a) or take(*a, **kw)
    return calls


@ON_REDIS
@pytest.mark.parametrize("seed", range(3))
def test_the_bound_holds_with_leases_across_processes(redis_limiters, seed):
    """Four processes, one key, a limit of 300 per second, requests in random bursts from
    random processes over four windows of Redis's clock: any interval of length d ≤ T holds
    at most L·(1 + d/T) admitted requests. (Each admission is timed between the moments before
    and after it was decided; the bound is checked with that much slack.)"""
    rng, limit = random.Random(seed), 300
    processes = redis_limiters(4, f"{limit} per second")
    trips = [trips_of(process) for process in processes]
    admitted, asked, slack = [], 0, 0.0
    wait_for_phase(processes[0], 0.0, 0.1)
    began = time.time()
    while time.time() < began + 4:
        time.sleep(rng.choice([0.0, 0.0, 0.001, 0.01, 0.05, rng.uniform(0, 0.3)]))
        process = rng.choice(processes)
        for _ in range(rng.choice([1, 1, 5, 30, 100])):
            asked += 1
            before = time.time()
            if process.admit("k").allowed:
                after = time.time()
                admitted.append((before + after) / 2)
                slack = max(slack, after - before)
    admitted.sort()
    for i, start in enumerate(admitted):
        for d in (0.0, 0.05, 0.25, 0.5, 1.0):
            inside = bisect.bisect_right(admitted, start + d) - i
            assert inside <= limit * (1 + (d + slack) / 1), (start - began, d, inside, slack)
    per_window = Counter(int(at // 1) for at in admitted)
    assert max(per_window.values()) <= limit * (1 + slack)  # a window's counter never exceeds L
    assert len(admitted) > 3 * limit * 0.8  # the limit was reached, window after window
    local = asked - sum(map(len, trips))  # requests a lease served, without Redis
    assert local > len(admitted) / 5, (asked, len(admitted), local)


@ON_REDIS
def test_unused_tokens_are_given_back_by_the_next_call(redis_limiters, monkeypatch):
    monkeypatch.setattr(api, "LEASE_SECONDS", 0.3)
    limiter, = redis_limiters(1, "100000 per minute")
    trips = trips_of(limiter)
    wait_for_phase(limiter, 1.0, 50.0)  # far from the window's end
    for _ in range(4):  # leases of 1, 2, then 4 tokens: 7 counted, 4 used
        assert limiter.admit("k").allowed
    at = redis_now(limiter)
    assert len(trips) == 3 and counted(limiter, "k", at) == 7
    time.sleep(0.4)  # the lease expired with 3 tokens unused
    assert limiter.admit("k").allowed
    assert len(trips) == 4 and counted(limiter, "k", at) == 5  # the tokens actually used
    assert limiter.admit("k").allowed  # that lease was of 1 (what was used)
    assert len(trips) == 5 and counted(limiter, "k", at) == 7  # then 2: 1 held


@ON_REDIS
def test_a_lease_ends_at_its_window_edge_by_redis_clock_and_gives_back_to_that_window(
    redis_limiters
):
    limiter, = redis_limiters(1, "100000 per 2 seconds")
    trips = trips_of(limiter)
    wait_for_phase(limiter, 1.7, 1.8)  # 0.2–0.3 s before an edge: the lease is cut short
    for _ in range(4):
        assert limiter.admit("k").allowed
    before_edge = redis_now(limiter)
    assert counted(limiter, "k", before_edge) == 7
    wait_for_phase(limiter, 0.05, 0.5)
    assert limiter.admit("k").allowed  # not from the old window's lease
    after_edge = redis_now(limiter)
    assert len(trips) == 4 and int(after_edge // 2) == int(before_edge // 2) + 1
    assert counted(limiter, "k", before_edge) == 4 and counted(limiter, "k", after_edge) == 4
    # The lease cut by the edge was the same size (4 tokens): it serves 3 more here.
    for _ in range(3):
        assert limiter.admit("k").allowed
    assert len(trips) == 4


@ON_REDIS
def test_remaining_counts_down_as_counting_each_request_would(redis_limiters):
    """One process with leases says, request after request, the X-RateLimit-Remaining, Limit
    and Reset of the limiter without them (in memory: one count per request)."""
    leased, = redis_limiters(1, "1000 per minute")
    plain = memory_limiter("1000 per minute", "1000 per minute")
    trips = trips_of(leased)
    wait_for_phase(leased, 1.0, 50.0)
    for _ in range(300):
        a, b = leased.admit("k"), plain.admit("k")
        assert (a.remaining, a.reset, a.limit) == (b.remaining, b.reset, b.limit)
    assert len(trips) < 40


@ON_REDIS
def test_threads_sharing_a_limiter_count_every_token_once(redis_limiters):
    """gthread workers: one process, eight threads, one key, past its limit. Never more
    admitted than the limit, and Redis counts exactly the admitted requests plus the tokens
    this process still holds or has to give back."""
    limiter, = redis_limiters(1, "500 per minute")
    admitted, start = [], threading.Barrier(8)
    wait_for_phase(limiter, 1.0, 50.0)

    def work():
        start.wait()
        admitted.append(sum(limiter.admit("k").allowed for _ in range(150)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = sum((lease.unused() or (0, 0))[1] for lease in limiter.leases.values())
    assert 250 <= sum(admitted) <= 500
    assert counted(limiter, "k", redis_now(limiter)) == sum(admitted) + held


def test_one_breaker_serves_the_api_and_the_sign_in_throttle(app_factory, app, demo, caplog):
    """Redis unreachable: the API's first request trips the breaker, and the sign-in that
    follows does not try Redis again (one warning in the log, not one per caller)."""
    served = app_factory(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{_closed_port()}/0",
                         RATELIMIT_STORAGE_OPTIONS={"socket_timeout": 0.2,
                                                    "socket_connect_timeout": 0.2})
    key = mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))
    with caplog.at_level("WARNING", logger="fvapp.ratelimit"):
        assert_envelope(served.test_client().get("/api/v1/me", headers=bearer(key)), 200)
        assert Browser(served.test_client()).login("ava@acme.test").status_code == 303
    warnings = [r for r in caplog.records if "storage unavailable" in r.getMessage()]
    assert len(warnings) == 1
