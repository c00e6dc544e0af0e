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

import logging
import math
import threading
import time
from dataclasses import dataclass

from limits import parse

log = logging.getLogger(__name__)

BREAKER_SECONDS = 5.0

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


class ApiLimiter:
    """One per app: `hit` for a request with a well-formed key (before the database), `fail` for
    a failed authentication. Each is one Redis round trip, or none without Redis."""

    def __init__(self, storage_uri: str, options: dict, prefix: str, key_limit: str,
                 fail_limit: str):
        self.key_limit, self.fail_limit = Limit.parse(key_limit), Limit.parse(fail_limit)
        self.prefix = prefix
        self.memory = MemoryCounters()
        self._redis = self._script = None
        self._down_until = 0.0
        if storage_uri.startswith(("redis://", "rediss://", "unix://")):
            import redis

            self._redis = redis.Redis.from_url(
                storage_uri,
                socket_timeout=options.get("socket_timeout", 0.2),
                socket_connect_timeout=options.get("socket_connect_timeout", 0.2),
            )
            self._script = self._redis.register_script(LUA)  # EVALSHA; EVAL once if unknown

    def _keys(self, ip: str, key_digest: str | None, now: float):
        fail_number, fail_weight = self.fail_limit.window(now)
        p = self.prefix
        keys = [f"{p}:apifail:{ip}:{fail_number}", f"{p}:apifail:{ip}:{fail_number - 1}"]
        key_weight = 0.0
        if key_digest is not None:
            number, key_weight = self.key_limit.window(now)
            keys += [f"{p}:apikey:{key_digest}:{number}", f"{p}:apikey:{key_digest}:{number - 1}"]
        return keys, fail_weight, key_weight

    def _run(self, mode: str, ip: str, key_digest: str | None, now: float | None):
        now = time.time() if now is None else now
        keys, fail_weight, key_weight = self._keys(ip, key_digest, now)
        fail_ttl, key_ttl = 2 * self.fail_limit.period, 2 * self.key_limit.period
        args = [mode, self.fail_limit.amount, fail_weight, fail_ttl,
                self.key_limit.amount, key_weight, key_ttl]
        if self._script is not None and time.monotonic() >= self._down_until:
            try:
                status, milli, current, previous = self._script(keys=keys, args=args)
                return now, (int(status), int(milli) / 1000, int(current), int(previous))
            except Exception as exc:  # down, stalled, or refusing: serve, count in memory a while
                self._down_until = time.monotonic() + BREAKER_SECONDS
                log.warning("rate-limit storage unavailable (%s: %s); counting in process memory "
                            "for %.0f s", type(exc).__name__, exc, BREAKER_SECONDS)
        return now, self.memory.run(keys, mode, self.fail_limit.amount, fail_weight, fail_ttl,
                                    self.key_limit.amount, key_weight, key_ttl, now)

    def hit(self, ip: str, key_digest: str, now: float | None = None) -> Decision:
        """The address's failure budget (read) and one request against the key's limit."""
        now, (status, estimate, current, previous) = self._run("hit", ip, key_digest, now)
        return _decision(status, self.key_limit, self.fail_limit, now, estimate, current, previous)

    def fail(self, ip: str, now: float | None = None) -> Decision:
        """Count a failed authentication against the address (unless already over budget)."""
        now, (status, *_rest) = self._run("fail", ip, None, now)
        return _decision(status, self.key_limit, self.fail_limit, now, 0.0, 0, 0)
