"""The sliding-window counter: its arithmetic, and the counter itself in process memory.

A limit of L per period T keeps two counters, the current fixed window's and the previous
one's; a request at fraction f of the current window is allowed when prev·(1−f) + cur + 1 ≤ L,
and only allowed requests are counted. Requests allowed in any interval of length d ≤ T are at
most L·(1 + d/T): an instant burst never exceeds L, and a burst straddling a window edge gets L,
not the 2L of fixed windows. Memory is O(1) per name: two integers with a TTL. The Redis store
(store.py) runs the same arithmetic in Lua, on Redis's clock.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import NamedTuple

from limits import parse, parse_many


@dataclass(frozen=True)
class Limit:
    amount: int
    period: int  # seconds

    @classmethod
    def parse(cls, text: str) -> Limit:
        item = parse(text)
        return cls(item.amount, item.get_expiry())

    @classmethod
    def parse_many(cls, text: str) -> list[Limit]:
        """"5 per minute; 20 per hour" → two limits."""
        return [cls(item.amount, item.get_expiry()) for item in parse_many(text)]

    def window(self, now: float) -> tuple[int, float]:
        """The current window's number and the previous window's weight at `now`."""
        number = int(now // self.period)
        return number, 1.0 - (now - number * self.period) / self.period

    def end(self, number: int) -> int:
        """When window `number` ends (and the next begins), in the clock that numbered it."""
        return (number + 1) * self.period


class Reply(NamedTuple):
    """A counter's answer: `allowed`; the estimate before this request (prev·(1−f) + cur); the
    two counters after it; the tokens counted for it (`granted` ≥ 1 when allowed); `now`, the
    time it was counted at, on the clock that counted it (Redis's, or this process's); and
    `shared`: counted in Redis (else in this process's memory)."""

    allowed: bool
    estimate: float
    current: int
    previous: int
    granted: int
    now: float
    shared: bool = False


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds
    retry_after: int  # seconds; 0 when allowed


def allowed(limit: Limit, number: int, estimate: float) -> Decision:
    """An allowed request in window `number`, the estimate counting it being `estimate`."""
    return Decision(True, limit.amount, max(0, int(limit.amount - estimate)), limit.end(number), 0)


def decide(limit: Limit, reply: Reply) -> Decision:
    """The Decision for one request the counter answered (the first token, when allowed)."""
    number, _ = limit.window(reply.now)
    if reply.allowed:
        return allowed(limit, number, reply.estimate + 1)
    return refused(limit, reply.now, reply.current, reply.previous)


def refused(limit: Limit, now: float, current: int, previous: int) -> Decision:
    """A refusal at `now`, with Retry-After: when prev·(1−f) + cur + 1 ≤ L holds again (at the
    latest T·(1 + 1/L) after the window began)."""
    number, _ = limit.window(now)
    if current + 1 <= limit.amount and previous > 0:
        need = 1.0 - (limit.amount - 1 - current) / previous  # the fraction f to reach
        at = number * limit.period + need * limit.period
    else:  # next window: current becomes previous
        need = max(0.0, 1.0 - (limit.amount - 1) / current) if current else 0.0
        at = limit.end(number) + need * limit.period
    retry = max(1, math.ceil(at - now))
    return Decision(False, limit.amount, 0, int(now) + retry, retry)


class MemoryCounters:
    """The counter in this process's memory (no Redis, or Redis unavailable): one token per
    request (no leases: there is no round trip to save), on the clock of the `now` given."""

    def __init__(self):
        self._counts: dict[tuple[str, int], tuple[int, float]] = {}  # → (count, expires at)
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def _get(self, key: tuple[str, int], now: float) -> int:
        found = self._counts.get(key)
        return found[0] if found and found[1] > now else 0

    def take(self, name: str, limit: Limit, now: float) -> Reply:
        """One request against `name`'s limit at `now`: counted if allowed."""
        number, weight = limit.window(now)
        current_key = (name, number)
        with self._lock:
            if now >= self._next_prune:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
                self._next_prune = now + 60
            current, previous = self._get(current_key, now), self._get((name, number - 1), now)
            estimate = previous * weight + current
            if estimate + 1 > limit.amount:
                return Reply(False, estimate, current, previous, 0, now)
            expires = limit.end(number) + limit.period
            self._counts[current_key] = (current + 1, expires)
            return Reply(True, estimate, current + 1, previous, 1, now)

    def give_back(self, name: str, number: int, count: int, now: float) -> None:
        """`count` tokens counted in window `number` that were not used (never below 0)."""
        key = (name, number)
        with self._lock:
            found = self._counts.get(key)
            if found and found[1] > now:
                self._counts[key] = (max(0, found[0] - count), found[1])
