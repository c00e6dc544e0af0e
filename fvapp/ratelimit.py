"""The API's rate limits: one sliding-window counter per key, one per caller IP for failed
authentications, kept in Redis (a Lua script, EVALSHA, at most one round trip per request and
most requests none: token leases, below), or in process memory without Redis.

The algorithm (the same in Lua and in Python): a limit of L per period T keeps two counters,
the current fixed window's and the previous one's; a request at fraction f of the current window
is allowed when prev·(1−f) + cur + 1 ≤ L, and only allowed requests are counted. The bound:
requests allowed in any interval of length d ≤ T are at most L·(1 + d/T) — an instant burst
never exceeds L, and a burst straddling a window edge gets L, not the 2L of fixed windows
(tests/test_ratelimit.py checks it). Memory is O(1) per key: two integers with a TTL.

Leases (Redis only). When a process has no usable tokens for a key, the script (the one round
trip) checks the IP's failure budget and the key's estimate e as above and, if the request is
allowed, grants g = min(want, max(1, ⌊(L − e)/SHARE⌋)) tokens at once: INCRBY g on the current
window's counter, so e + g ≤ L. The request uses the first; the process keeps the rest and hands
them out one per request for the same key, with no round trip, until LEASE_SECONDS have passed
or the window ends, whichever is first (a lease never crosses a window edge). `want` follows the
key's rate in this process: 1 for a key not seen lately, doubled when a lease was used up, the
tokens actually used when some went unused, at most MAX_LEASE. Near the limit (L − e < 2·SHARE)
g is 1: exactly the per-request counting of before. The unused tokens of a lease are given back
by this process's next script call for that key (DECRBY on the lease's window, never below 0,
only while that counter exists); a call whose reply is lost gives nothing back twice.

Why the bound still holds: (1) every token is counted, in its window, before it is used, and a
give-back only removes tokens that will never be used, so a window's counter is never below the
tokens used in it once its leases have ended, which is by the window's end; (2) a counter never
exceeds L (each grant checks e + g ≤ L, a give-back only lowers it). Take an interval [a, a+d],
d ≤ T. Inside one window: at most its counter, ≤ L. Across the edge between windows n−1 and n:
x tokens used in n−1, y in n. Every one of the y was granted at some time in [edge, a+d]; let
t* be the last such grant, at fraction f* ≤ d/T of window n. Its check read P, the counter of
n−1 at t* (not final: give-backs may still lower it; but every token used in n−1 was counted
before its use and a give-back only removes unused ones, so P ≥ x; and P ≤ L), and the counter
of n, which held every earlier grant's used tokens: P·(1−f*) + y ≤ L. So
x + y ≤ P + L − P·(1−f*) = L + P·f* ≤ L·(1 + d/T).
The cost is waste, not excess: tokens counted but unused (at most one lease per process per
key, each ≤ MAX_LEASE and ≤ (L − e)/SHARE) make the key look busier to the others until they are
given back, or until their window slides out (2T) if the process sees that key no more.

When Redis fails or stalls (socket timeouts are short), the request is served and counted in
process memory; a circuit breaker then skips Redis for a few seconds so that each request does
not pay the timeout again. Tokens already leased stay usable (they were counted in Redis);
tokens due back when a call fails are not given back (waste, never excess).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from limits import parse
from redis.exceptions import NoScriptError

log = logging.getLogger(__name__)

BREAKER_SECONDS = 5.0
REFUSALS_KEPT = 10_000  # addresses and keys remembered as refused lately, per process
LEASES_KEPT = 10_000  # keys with a lease (or tokens to give back), per process
LEASE_SECONDS = 1.0  # a lease's tokens are used within this (and within their window)
MAX_LEASE = 64  # tokens granted at once, at most
SHARE = 16  # a grant takes at most 1/SHARE of the key's headroom: processes assumed to lease

# KEYS: failures current, failures previous, key current, key previous (key ones absent for
# mode "fail"), then the counter tokens are given back to (only when ARGV[10] > 0).
# ARGV: mode, fail limit, fail weight, fail ttl, key limit, key weight, key ttl, tokens wanted,
# SHARE, tokens given back.
# Returns {status, estimate·1000, current, previous, granted}: status 1 allowed (granted ≥ 1
# tokens counted; the estimate is the key's before them), 0 over the key's limit, -1 the address
# is over its failed-authentication budget.
LUA = """
if tonumber(ARGV[10]) > 0 then
  local held = tonumber(redis.call('GET', KEYS[5]) or '0')
  local back = math.min(held, tonumber(ARGV[10]))
  if back > 0 then redis.call('DECRBY', KEYS[5], back) end
end
local function est(cur, prev, w)
  local c = tonumber(redis.call('GET', cur) or '0')
  local p = tonumber(redis.call('GET', prev) or '0')
  return p * w + c, c, p
end
local fail = est(KEYS[1], KEYS[2], tonumber(ARGV[3]))
if fail >= tonumber(ARGV[2]) then return {-1, 0, 0, 0, 0} end
if ARGV[1] == 'fail' then
  if redis.call('INCR', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
  return {1, 0, 0, 0, 0}
end
local limit = tonumber(ARGV[5])
local e, c, p = est(KEYS[3], KEYS[4], tonumber(ARGV[6]))
if e + 1 > limit then return {0, math.floor(e * 1000), c, p, 0} end
local g = math.min(tonumber(ARGV[8]), math.max(1, math.floor((limit - e) / tonumber(ARGV[9]))))
c = redis.call('INCRBY', KEYS[3], g)
if c == g then redis.call('EXPIRE', KEYS[3], ARGV[7]) end
return {1, math.floor(e * 1000), c, p, g}
"""


@dataclass(frozen=True)
class Limit:
    amount: int
    period: int  # seconds

    @classmethod
    def parse(cls, text: str) -> Limit:
        item = parse(text)
        return cls(item.amount, item.get_expiry())

    def window(self, now: float) -> tuple[int, float]:
        """The current window's number and the previous window's weight at `now`."""
        number = int(now // self.period)
        return number, 1.0 - (now - number * self.period) / self.period


@dataclass(frozen=True)
class Decision:
    status: int  # 1 allowed, 0 over the key's limit, -1 address over its failure budget
    limit: int
    remaining: int
    reset: int  # epoch seconds
    retry_after: int

    @property
    def allowed(self) -> bool:
        return self.status == 1


def _allowed(limit: Limit, number: int, estimate: float) -> Decision:
    """An allowed request in window `number`, the key's estimate counting it being `estimate`."""
    return Decision(1, limit.amount, max(0, int(limit.amount - estimate)),
                    (number + 1) * limit.period, 0)


def _decision(status: int, limit: Limit | None, fail: Limit, now: float, estimate: float,
              current: int, previous: int) -> Decision:
    if status == -1:  # wait for the failure window to turn
        number, _ = fail.window(now)
        retry = max(1, math.ceil((number + 1) * fail.period - now))
        return Decision(-1, fail.amount, 0, int(now) + retry, retry)
    assert limit is not None
    number, weight = limit.window(now)
    if status == 1:
        return _allowed(limit, number, estimate)
    end = (number + 1) * limit.period
    # When does prev·(1−f) + cur + 1 ≤ L hold again?
    if current + 1 <= limit.amount and previous > 0:
        need = 1.0 - (limit.amount - 1 - current) / previous  # the fraction f to reach
        at = number * limit.period + need * limit.period
    else:  # next window: current becomes previous
        need = max(0.0, 1.0 - (limit.amount - 1) / current) if current else 0.0
        at = end + need * limit.period
    retry = max(1, math.ceil(at - now))
    return Decision(0, limit.amount, 0, int(now) + retry, retry)


class MemoryCounters:
    """The same algorithm in this process's memory (no Redis, or Redis unavailable)."""

    def __init__(self):
        self._counts: dict[str, tuple[int, float]] = {}  # key → (count, expires at)
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def _get(self, key: str, now: float) -> int:
        found = self._counts.get(key)
        return found[0] if found and found[1] > now else 0

    def _incr(self, key: str, now: float, ttl: int) -> int:
        count = self._get(key, now) + 1
        expires = self._counts[key][1] if count > 1 else now + ttl
        self._counts[key] = (count, expires)
        return count

    def run(self, keys: list[str], mode: str, fail_amount: int, fail_weight: float, fail_ttl: int,
            key_amount: int, key_weight: float, key_ttl: int,
            now: float) -> tuple[int, float, int, int, int]:
        """As the script, granting one token at a time (no leases in memory)."""
        with self._lock:
            if now >= self._next_prune:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
                self._next_prune = now + 60
            fail = self._get(keys[1], now) * fail_weight + self._get(keys[0], now)
            if fail >= fail_amount:
                return -1, 0.0, 0, 0, 0
            if mode == "fail":
                self._incr(keys[0], now, fail_ttl)
                return 1, 0.0, 0, 0, 0
            current, previous = self._get(keys[2], now), self._get(keys[3], now)
            estimate = previous * key_weight + current
            if estimate + 1 > key_amount:
                return 0, estimate, current, previous, 0
            current = self._incr(keys[2], now, key_ttl)
            return 1, estimate, current, previous, 1


def command(*parts) -> bytes:
    """One Redis command in RESP, as redis-py would pack it (str and numbers as their text)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Lease:
    """Tokens the script granted this process for one key at once, all counted in Redis in
    window `number` before the first was used; handed out one per request while `now` <
    `until` (in the clock of `now`, whose windows the script counts in; never past the
    window's end: `cut` says the end cut it short). `base` is the key's estimate before the
    grant: the i-th token's X-RateLimit-Remaining is L − (base + i), what counting each request
    would have said at the grant's instant (the previous window's weight not decayed since).
    `back`: unused tokens of an earlier lease, (window number, count), for the next script call
    for the key to give back."""

    __slots__ = ("number", "until", "cut", "base", "granted", "used", "back")

    def __init__(self, number: int, until: float, cut: bool, base: float, granted: int,
                 used: int, back: tuple[int, int] | None = None):
        self.number, self.until, self.cut, self.base = number, until, cut, base
        self.granted, self.used, self.back = granted, used, back

    def unused(self) -> tuple[int, int] | None:
        """What this lease has to give back: its own unused tokens and those it carries."""
        return _merge(self.back, (self.number, self.granted - self.used))

    def want(self, now: float) -> int:
        """Tokens to ask for when this lease can serve no more: slow start for a key not seen
        lately, double when it was used up, the tokens used when some were left over (the
        whole grant again when the window's end cut it short)."""
        if now >= self.until + LEASE_SECONDS:
            return 1
        if self.used >= self.granted:
            return min(MAX_LEASE, 2 * self.granted)
        if self.cut and now >= self.until:
            return self.granted
        return max(1, self.used)


def _merge(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    """Two give-backs as one (the script takes one): summed for the same window; else the
    newer window's (the older's tokens stay counted until they slide out: waste, not excess)."""
    if a is None or a[1] <= 0:
        return b if b is not None and b[1] > 0 else None
    if b is None or b[1] <= 0:
        return a
    if a[0] == b[0]:
        return a[0], a[1] + b[1]
    return max(a, b)


class ApiLimiter:
    """One per app: `start`/`hit` for a request with a well-formed key (before the database),
    `fail` for a failed authentication, `refused_lately` to know whether to wait for a verdict.
    With Redis: a hit is one round trip when this process holds no lease for the key, and none
    while it does; a failure is one round trip. Without Redis: no round trip."""

    def __init__(self, storage_uri: str, options: dict, prefix: str, key_limit: str,
                 fail_limit: str):
        self.key_limit, self.fail_limit = Limit.parse(key_limit), Limit.parse(fail_limit)
        self.prefix = prefix
        self.memory = MemoryCounters()
        self._redis = None
        self._sha = hashlib.sha1(LUA.encode(), usedforsecurity=False).hexdigest()
        self._local = threading.local()
        self._down_until = 0.0
        self._refused: dict[tuple[str, str | None], float] = {}  # → monotonic time
        self._leases: dict[str, Lease] = {}  # key digest → this process's lease (Redis only)
        self._leases_lock = threading.Lock()  # gthread workers: requests on several threads
        if storage_uri.startswith(("redis://", "rediss://", "unix://")):
            self._redis = redis.Redis.from_url(
                storage_uri,
                socket_timeout=options.get("socket_timeout", 0.2),
                socket_connect_timeout=options.get("socket_connect_timeout", 0.2),
            )

    def _connection(self):
        """This thread's own connection (redis-py's: it connects, authenticates, selects the
        database, speaks TLS), kept for the process's life; a new one after a fork."""
        local, pid = self._local, os.getpid()
        if getattr(local, "pid", None) != pid:
            local.connection, local.pid = self._redis.connection_pool.make_connection(), pid
        return local.connection

    def _send(self, keys: list[str], args: list):
        """Write EVALSHA straight on the connection (the client's command machinery cost more
        than the round trip); the reply is read by _receive. One round trip."""
        connection = self._connection()
        try:
            connection.send_packed_command(
                [command("EVALSHA", self._sha, len(keys), *keys, *args)], check_health=False)
        except BaseException:
            connection.disconnect()  # whatever state it was left in; reconnects on next use
            raise
        return connection

    def _receive(self, connection, keys: list[str], args: list) -> list:
        """The script's reply; EVAL once when the server does not know the script (a restart,
        SCRIPT FLUSH)."""
        try:
            try:
                return connection.read_response()
            except NoScriptError:
                connection.send_packed_command(
                    [command("EVAL", LUA, len(keys), *keys, *args)], check_health=False)
                return connection.read_response()
        except BaseException:
            connection.disconnect()
            raise

    def _keys(self, ip: str, key_digest: str | None, now: float, back: tuple[int, int] | None):
        fail_number, fail_weight = self.fail_limit.window(now)
        p = self.prefix
        keys = [f"{p}:apifail:{ip}:{fail_number}", f"{p}:apifail:{ip}:{fail_number - 1}"]
        key_weight = 0.0
        if key_digest is not None:
            number, key_weight = self.key_limit.window(now)
            keys += [f"{p}:apikey:{key_digest}:{number}", f"{p}:apikey:{key_digest}:{number - 1}"]
            if back is not None:
                keys.append(f"{p}:apikey:{key_digest}:{back[0]}")
        return keys, fail_weight, key_weight

    def _trip(self, exc: Exception) -> None:
        """Redis is down, stalled, or refusing: serve, and count in memory for a while."""
        self._down_until = time.monotonic() + BREAKER_SECONDS
        log.warning("rate-limit storage unavailable (%s: %s); counting in process memory "
                    "for %.0f s", type(exc).__name__, exc, BREAKER_SECONDS)

    def _start(self, mode: str, ip: str, key_digest: str | None, now: float, want: int = 1,
               back: tuple[int, int] | None = None):
        """The script sent (or run in memory), asking for `want` tokens and giving `back`
        tokens back: a function returning its result (status, estimate before, current,
        previous, tokens granted). Tokens due back when Redis is not reached are not given
        back: they stay counted (waste, never excess)."""
        keys, fail_weight, key_weight = self._keys(ip, key_digest, now, back)
        fail_ttl, key_ttl = 2 * self.fail_limit.period, 2 * self.key_limit.period
        args = [mode, self.fail_limit.amount, fail_weight, fail_ttl,
                self.key_limit.amount, key_weight, key_ttl, want, SHARE, back[1] if back else 0]

        def in_memory():
            return self.memory.run(keys, mode, self.fail_limit.amount, fail_weight, fail_ttl,
                                   self.key_limit.amount, key_weight, key_ttl, now)

        if self._redis is not None and time.monotonic() >= self._down_until:
            try:
                connection = self._send(keys, args)
            except Exception as exc:
                self._trip(exc)
            else:
                def received():
                    try:
                        status, milli, current, previous, granted = self._receive(
                            connection, keys, args)
                    except Exception as exc:
                        self._trip(exc)
                        return in_memory()
                    return (int(status), int(milli) / 1000, int(current), int(previous),
                            int(granted))

                return received
        result = in_memory()
        return lambda: result

    def start(self, ip: str, key_digest: str, now: float | None = None) -> Callable[[], Decision]:
        """hit() in two halves, so that a database read can overlap its round trip: the script
        is sent now, unless a token of this process's lease for the key decides at once; the
        function returned reads the reply (once; later calls return the same Decision). Call
        it before anything else uses the limiter on this thread.

        A lease serves while it has tokens, before its `until`, and unless this process refused
        the address lately (then the script checks its failure budget). Otherwise the lease is
        retired: its unused tokens are given back by this very call, which asks for as many
        tokens as the key's recent rate here suggests (Lease.want)."""
        now = time.time() if now is None else now
        want, back = 1, None
        if self._redis is not None:
            number = int(now // self.key_limit.period)
            with self._leases_lock:
                lease = self._leases.get(key_digest)
                if lease is not None:
                    if (lease.used < lease.granted and now < lease.until
                            and lease.number == number and not self._refused_ip(ip)):
                        lease.used += 1
                        local = _allowed(self.key_limit, number, lease.base + lease.used)
                        return lambda: local
                    del self._leases[key_digest]
                    want, back = lease.want(now), lease.unused()
        received = self._start("hit", ip, key_digest, now, want, back)
        found: list[Decision] = []

        def decision() -> Decision:
            if not found:
                status, estimate, current, previous, granted = received()
                if status == 1:
                    number = int(now // self.key_limit.period)
                    found.append(_allowed(self.key_limit, number, estimate + 1))
                    if self._redis is not None:
                        end = (number + 1) * self.key_limit.period
                        self._keep(key_digest, now, Lease(
                            number, min(now + LEASE_SECONDS, end), now + LEASE_SECONDS >= end,
                            estimate, granted, 1))
                else:
                    found.append(self._note(ip, key_digest, _decision(
                        status, self.key_limit, self.fail_limit, now, estimate, current,
                        previous)))
                    if self._redis is not None:  # no tokens; slow start again
                        self._keep(key_digest, now, Lease(0, -math.inf, False, 0.0, 0, 0))
            return found[0]

        return decision

    def hit(self, ip: str, key_digest: str, now: float | None = None) -> Decision:
        """The address's failure budget (read) and one request against the key's limit."""
        return self.start(ip, key_digest, now)()

    def fail(self, ip: str, now: float | None = None) -> Decision:
        """Count a failed authentication against the address (unless already over budget)."""
        now = time.time() if now is None else now
        status, *_rest = self._start("fail", ip, None, now)()
        return self._note(ip, None, _decision(status, self.key_limit, self.fail_limit, now,
                                              0.0, 0, 0))

    # -- leases: this process's tokens, per key -----------------------------------------------

    def _keep(self, key_digest: str, now: float, lease: Lease) -> None:
        """`lease` becomes the key's. Another thread's lease for the key, made meanwhile, is
        replaced; its unused tokens are carried, to be given back."""
        with self._leases_lock:
            leases = self._leases
            old = leases.get(key_digest)
            if old is not None:
                lease.back = _merge(lease.back, old.unused())
            elif len(leases) >= LEASES_KEPT:  # a flood of distinct keys: keep the live ones
                live = {digest: kept for digest, kept in leases.items() if kept.until > now}
                self._leases = leases = live if len(live) < LEASES_KEPT // 2 else {}
            leases[key_digest] = lease

    # -- refused lately: this process's memory of its own refusals --------------------------

    def _note(self, ip: str, key_digest: str | None, decision: Decision) -> Decision:
        if not decision.allowed:
            refused = self._refused
            if len(refused) >= REFUSALS_KEPT:
                refused.clear()  # a flood of distinct keys: start over (costs one read each)
            until = time.monotonic() + decision.retry_after
            refused[("ip", ip) if decision.status == -1 else ("key", key_digest)] = until
        return decision

    def _refused_ip(self, ip: str) -> bool:
        refused = self._refused
        return bool(refused) and refused.get(("ip", ip), 0.0) > time.monotonic()

    def refused_lately(self, ip: str, key_digest: str) -> bool:
        """Whether this process refused the address or the key less than its Retry-After ago:
        then the caller waits for the limiter's verdict before any database work, so a refused
        flood costs the database nothing. Only ever makes a request wait for the verdict; never
        decides one (Redis does)."""
        refused = self._refused
        if not refused:
            return False
        now = time.monotonic()
        return any(refused.get(what, 0.0) > now for what in (("ip", ip), ("key", key_digest)))
