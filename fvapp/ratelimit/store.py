"""Where the counters live: Redis (shared by every process, on Redis's clock) or this process's
memory, with one circuit breaker between them.

In Redis a counter is one hash (window number → count) and a request is one Lua script call,
through redis-py's own script support (`Redis.register_script`: EVALSHA, and the script sent
again when the server does not know it). The script reads the time with `TIME`: every process
counts its windows on that one clock, whatever its own says.

When Redis fails or stalls (socket timeouts are short), the request is counted in this
process's memory instead, and the breaker skips Redis for BREAKER_SECONDS so that each request
does not wait out the timeout again. The API limiter (api.py) and the sign-in throttle
(fvapp/auth/throttle.py) share one Store, so one breaker, per app.
"""

from __future__ import annotations

import logging
import time

import redis

from .window import Limit, MemoryCounters, Reply

log = logging.getLogger(__name__)

BREAKER_SECONDS = 5.0

# KEYS[1]: the counter, a hash: window number → count.
# ARGV: limit, period (ms), tokens wanted (0: only give back), share, the window to give back
# to, the tokens to give back (never below 0, only while that window's count exists).
# Allowed when prev·(1−f) + cur + 1 ≤ limit; then g = min(wanted, max(1, ⌊(limit − e)/share⌋))
# tokens are counted at once (e + g ≤ limit). Windows and f come from Redis's TIME.
# Returns {allowed 1/0, estimate before·1000, current, previous, granted, time in ms}.
LUA = """
local key = KEYS[1]
local limit, period = tonumber(ARGV[1]), tonumber(ARGV[2])
local back = tonumber(ARGV[6])
if back > 0 then
  local held = tonumber(redis.call('HGET', key, ARGV[5]) or '0')
  back = math.min(held, back)
  if back > 0 then redis.call('HINCRBY', key, ARGV[5], -back) end
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local number = math.floor(now / period)
local field = string.format('%d', number)
local c = tonumber(redis.call('HGET', key, field) or '0')
local p = tonumber(redis.call('HGET', key, string.format('%d', number - 1)) or '0')
local e = p * (1 - (now - number * period) / period) + c
local want = tonumber(ARGV[3])
if want < 1 or e + 1 > limit then return {0, math.floor(e * 1000), c, p, 0, now} end
local g = math.min(want, math.max(1, math.floor((limit - e) / tonumber(ARGV[4]))))
c = redis.call('HINCRBY', key, field, g)
redis.call('HDEL', key, string.format('%d', number - 2))
redis.call('PEXPIRE', key, 2 * period)
return {1, math.floor(e * 1000), c, p, g, now}
"""


class Breaker:
    """Open for BREAKER_SECONDS after a failure: callers skip the storage meanwhile."""

    def __init__(self):
        self.until = 0.0  # monotonic
        self.trips = 0

    @property
    def open(self) -> bool:
        return time.monotonic() < self.until

    def trip(self, exc: Exception) -> None:
        self.until = time.monotonic() + BREAKER_SECONDS
        self.trips += 1
        log.warning("rate-limit storage unavailable (%s: %s); counting in process memory "
                    "for %.0f s", type(exc).__name__, exc, BREAKER_SECONDS)


class Store:
    """Sliding-window counters by name: in Redis when `storage_uri` is a Redis URL, else in
    process memory (where `now`, this process's clock, numbers the windows)."""

    def __init__(self, storage_uri: str, options: dict, prefix: str):
        self.prefix = prefix
        self.memory = MemoryCounters()
        self.breaker = Breaker()
        self.redis = None
        if storage_uri.startswith(("redis://", "rediss://", "unix://")):
            self.redis = redis.Redis.from_url(
                storage_uri,
                socket_timeout=options.get("socket_timeout", 0.2),
                socket_connect_timeout=options.get("socket_connect_timeout", 0.2),
            )
            self._script = self.redis.register_script(LUA)

    @property
    def shared(self) -> bool:
        """Counted in Redis, for every process (when it answers)."""
        return self.redis is not None

    def close(self) -> None:
        """Close the Redis connections (the app's end; a test's)."""
        if self.redis is not None:
            self.redis.close()

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def take(self, name: str, limit: Limit, now: float | None = None, want: int = 1,
             share: int = 1, back: tuple[int, int] | None = None) -> Reply:
        """One request against `name`'s limit, asking for `want` tokens at once (Redis only;
        memory grants one) and giving back `back` = (window number, tokens) unused of an
        earlier grant. Tokens due back when Redis is not reached stay counted (waste, never
        excess)."""
        if self.redis is not None and not self.breaker.open:
            number, count = back or (0, 0)
            try:
                result = self._script(keys=[self.key(name)],
                                      args=[limit.amount, limit.period * 1000, want, share,
                                            number, count])
            except Exception as exc:  # down, stalled or refusing: this process counts
                self.breaker.trip(exc)
            else:
                allowed, milli, current, previous, granted, ms = result
                return Reply(allowed == 1, int(milli) / 1000, int(current), int(previous),
                             int(granted), int(ms) / 1000, True)
        return self.memory.take(name, limit, time.time() if now is None else now)

    def give_back(self, name: str, limit: Limit, reply: Reply) -> None:
        """The token `reply` granted was not used: uncounted where it was counted."""
        number, _ = limit.window(reply.now)
        if not reply.shared:
            self.memory.give_back(name, number, 1, reply.now)
        elif not self.breaker.open:
            try:
                self._script(keys=[self.key(name)],
                             args=[limit.amount, limit.period * 1000, 0, 1, number, 1])
            except Exception as exc:
                self.breaker.trip(exc)
