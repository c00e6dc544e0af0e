"""The API's rate limits: one sliding-window counter per key, one per caller IP for failed
authentications, in one Redis round trip per request (a Lua script, EVALSHA), or in process
memory without Redis.

The algorithm (the same in Lua and in Python): a limit of L per period T keeps two counters,
the current fixed window's and the previous one's; a request at fraction f of the current window
is allowed when prev·(1−f) + cur + 1 ≤ L, and only allowed requests are counted. The bound:
requests allowed in any interval of length d ≤ T are at most L·(1 + d/T) — an instant burst
never exceeds L, and a burst straddling a window edge gets L, not the 2L of fixed windows
(tests/test_ratelimit.py checks it). Memory is O(1) per key: two integers with a TTL.

When Redis fails or stalls (socket timeouts are short), the request is served and counted in
process memory; a circuit breaker then skips Redis for a few seconds so that each request does
not pay the timeout again.
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

# KEYS: failures current, failures previous, key current, key previous (key ones absent for
# mode "fail"). ARGV: mode, fail limit, fail weight, fail ttl, key limit, key weight, key ttl.
# Returns {status, estimate·1000, current}: status 1 allowed, 0 over the key's limit,
# -1 the address is over its failed-authentication budget.
LUA = """
local function est(cur, prev, w)
  local c = tonumber(redis.call('GET', cur) or '0')
  local p = tonumber(redis.call('GET', prev) or '0')
  return p * w + c, c, p
end
local fail = est(KEYS[1], KEYS[2], tonumber(ARGV[3]))
if fail >= tonumber(ARGV[2]) then return {-1, 0, 0, 0} end
if ARGV[1] == 'fail' then
  if redis.call('INCR', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
  return {1, 0, 0, 0}
end
local e, c, p = est(KEYS[3], KEYS[4], tonumber(ARGV[6]))
if e + 1 > tonumber(ARGV[5]) then return {0, math.floor(e * 1000), c, p} end
c = redis.call('INCR', KEYS[3])
if c == 1 then redis.call('EXPIRE', KEYS[3], ARGV[7]) end
return {1, math.floor((e + 1) * 1000), c, p}
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


def _decision(status: int, limit: Limit | None, fail: Limit, now: float, estimate: float,
              current: int, previous: int) -> Decision:
    if status == -1:  # wait for the failure window to turn
        number, _ = fail.window(now)
        retry = max(1, math.ceil((number + 1) * fail.period - now))
        return Decision(-1, fail.amount, 0, int(now) + retry, retry)
    assert limit is not None
    number, weight = limit.window(now)
    end = (number + 1) * limit.period
    if status == 1:
        remaining = max(0, int(limit.amount - estimate))
        return Decision(1, limit.amount, remaining, math.ceil(end), 0)
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
            key_amount: int, key_weight: float, key_ttl: int, now: float) -> tuple[int, float, int, int]:
        with self._lock:
            if now >= self._next_prune:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
                self._next_prune = now + 60
            fail = self._get(keys[1], now) * fail_weight + self._get(keys[0], now)
            if fail >= fail_amount:
                return -1, 0.0, 0, 0
            if mode == "fail":
                self._incr(keys[0], now, fail_ttl)
                return 1, 0.0, 0, 0
            current, previous = self._get(keys[2], now), self._get(keys[3], now)
            estimate = previous * key_weight + current
            if estimate + 1 > key_amount:
                return 0, estimate, current, previous
            current = self._incr(keys[2], now, key_ttl)
            return 1, estimate + 1, current, previous


def command(*parts) -> bytes:
    """One Redis command in RESP, as redis-py would pack it (str and numbers as their text)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class ApiLimiter:
    """One per app: `hit` for a request with a well-formed key (before the database), `fail` for
    a failed authentication. Each is one Redis round trip, or none without Redis."""

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

    def _eval(self, keys: list[str], args: list) -> list:
        return self._receive(self._send(keys, args), keys, args)

    def _keys(self, ip: str, key_digest: str | None, now: float):
        fail_number, fail_weight = self.fail_limit.window(now)
        p = self.prefix
        keys = [f"{p}:apifail:{ip}:{fail_number}", f"{p}:apifail:{ip}:{fail_number - 1}"]
        key_weight = 0.0
        if key_digest is not None:
            number, key_weight = self.key_limit.window(now)
            keys += [f"{p}:apikey:{key_digest}:{number}", f"{p}:apikey:{key_digest}:{number - 1}"]
        return keys, fail_weight, key_weight

    def _trip(self, exc: Exception) -> None:
        """Redis is down, stalled, or refusing: serve, and count in memory for a while."""
        self._down_until = time.monotonic() + BREAKER_SECONDS
        log.warning("rate-limit storage unavailable (%s: %s); counting in process memory "
                    "for %.0f s", type(exc).__name__, exc, BREAKER_SECONDS)

    def _start(self, mode: str, ip: str, key_digest: str | None, now: float | None):
        """The script sent (or run in memory): (now, a function returning its result)."""
        now = time.time() if now is None else now
        keys, fail_weight, key_weight = self._keys(ip, key_digest, now)
        fail_ttl, key_ttl = 2 * self.fail_limit.period, 2 * self.key_limit.period
        args = [mode, self.fail_limit.amount, fail_weight, fail_ttl,
                self.key_limit.amount, key_weight, key_ttl]

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
                        status, milli, current, previous = self._receive(connection, keys, args)
                    except Exception as exc:
                        self._trip(exc)
                        return in_memory()
                    return int(status), int(milli) / 1000, int(current), int(previous)

                return now, received
        result = in_memory()
        return now, lambda: result

    def start(self, ip: str, key_digest: str, now: float | None = None) -> Callable[[], Decision]:
        """hit() in two halves, so that a database read can overlap its round trip: the script
        is sent now; the function returned reads the reply (once; later calls return the same
        Decision). Call it before anything else uses the limiter on this thread."""
        now, received = self._start("hit", ip, key_digest, now)
        found: list[Decision] = []

        def decision() -> Decision:
            if not found:
                status, estimate, current, previous = received()
                found.append(self._note(ip, key_digest, _decision(
                    status, self.key_limit, self.fail_limit, now, estimate, current, previous)))
            return found[0]

        return decision

    def hit(self, ip: str, key_digest: str, now: float | None = None) -> Decision:
        """The address's failure budget (read) and one request against the key's limit."""
        return self.start(ip, key_digest, now)()

    def fail(self, ip: str, now: float | None = None) -> Decision:
        """Count a failed authentication against the address (unless already over budget)."""
        now, received = self._start("fail", ip, None, now)
        status, *_rest = received()
        return self._note(ip, None, _decision(status, self.key_limit, self.fail_limit, now,
                                              0.0, 0, 0))

    # -- refused lately: this process's memory of its own refusals --------------------------

    def _note(self, ip: str, key_digest: str | None, decision: Decision) -> Decision:
        if not decision.allowed:
            refused = self._refused
            if len(refused) >= REFUSALS_KEPT:
                refused.clear()  # a flood of distinct keys: start over (costs one read each)
            until = time.monotonic() + decision.retry_after
            refused[("ip", ip) if decision.status == -1 else ("key", key_digest)] = until
        return decision

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
