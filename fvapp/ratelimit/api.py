"""The API's rate limits: each key's own limit (`admit`), and each address's budget of failed
authentications (`fail`), which only requests that do not authenticate ever meet.

With Redis a request is at most one round trip, and most are none: token leases. When this
process has no usable tokens for a key, the script (store.py, the one round trip) reads the
key's estimate e and, if the request is allowed, grants g = min(want, max(1, ⌊(L − e)/SHARE⌋))
tokens at once: counted in the current window, so e + g ≤ L. The request uses the first; the
process keeps the rest and hands them out one per request for the same key, with no round trip,
within LEASE_SECONDS and before the window ends by Redis's clock, whichever is first: the script
says when it counted (Redis's TIME), so the window's remaining time is known, and the lease's
deadline is that much (at most LEASE_SECONDS) after this process *sent* the call, on its
monotonic clock: the script ran after that, so the deadline falls before the window's end
whatever the call's latency, and whatever this process's wall clock says. `want` follows the
key's rate in this process: 1 for a key not seen lately, doubled when a lease was used up, the
tokens actually used when some went unused, at most MAX_LEASE. Near the limit (L − e < 2·SHARE)
g is 1: one count per request. The unused tokens of a lease are given back by this process's
next script call for that key (to the lease's window, never below 0, only while that window's
count exists); a call whose reply is lost gives nothing back twice.

The bound (window.py: L·(1 + d/T) in any interval of length d ≤ T) still holds, on Redis's
clock: (1) every token is counted, in its window, before it is used, and used before that
window ends; a give-back only removes tokens that will never be used, so a window's counter is
never below the tokens used in it once its leases have ended, which is by the window's end;
(2) a counter never exceeds L (each grant checks e + g ≤ L, a give-back only lowers it). Take an
interval [a, a+d], d ≤ T. Inside one window: at most its counter, ≤ L. Across the edge between
windows n−1 and n: x tokens used in n−1, y in n. Every one of the y was granted at some time in
[edge, a+d]; let t* be the last such grant, at fraction f* ≤ d/T of window n. Its check read P,
the counter of n−1 at t* (not final: give-backs may still lower it; but every token used in n−1
was counted before its use and a give-back only removes unused ones, so P ≥ x; and P ≤ L), and
the counter of n, which held every earlier grant's used tokens: P·(1−f*) + y ≤ L. So
x + y ≤ P + L − P·(1−f*) = L + P·f* ≤ L·(1 + d/T).
The cost is waste, not excess: tokens counted but unused (at most one lease per process per
key, each ≤ MAX_LEASE and ≤ (L − e)/SHARE) make the key look busier to the others until they are
given back, or until their window slides out (2T) if the process sees that key no more.

Without Redis, or while its breaker is open, every request is counted in process memory on this
process's clock (no leases: no round trip to save). Tokens already leased stay usable (they
were counted in Redis).
"""

from __future__ import annotations

import math
import threading
import time

from .store import Store
from .window import Decision, Limit, allowed, decide

REFUSALS_KEPT = 10_000  # keys and addresses remembered as refused lately, per process
LEASES_KEPT = 10_000  # keys with a lease (or tokens to give back), per process
LEASE_SECONDS = 1.0  # a lease's tokens are used within this (and within their window)
MAX_LEASE = 64  # tokens granted at once, at most
SHARE = 16  # a grant takes at most 1/SHARE of the key's headroom: processes assumed to lease


class Lease:
    """Tokens the script granted this process for one key at once, all counted in window
    `number` (Redis's) before the first was used; handed out one per request while the
    monotonic clock is before `until` (never past the window's end: `cut` says the end cut it
    short). `base` is the key's estimate before the grant: the i-th token's
    X-RateLimit-Remaining is L − (base + i), what counting each request would have said at the
    grant's instant. `back`: unused tokens of an earlier lease, (window number, count), for the
    next script call for the key to give back."""

    __slots__ = ("number", "until", "cut", "base", "granted", "used", "back")

    def __init__(self, number: int, until: float, cut: bool, base: float, granted: int,
                 used: int, back: tuple[int, int] | None = None):
        self.number, self.until, self.cut, self.base = number, until, cut, base
        self.granted, self.used, self.back = granted, used, back

    def unused(self) -> tuple[int, int] | None:
        """What this lease has to give back: its own unused tokens and those it carries."""
        return merge(self.back, (self.number, self.granted - self.used))

    def want(self, clock: float) -> int:
        """Tokens to ask for when this lease can serve no more (at monotonic `clock`): slow
        start for a key not seen lately, double when it was used up, the tokens used when
        some were left over (the whole grant again when the window's end cut it short)."""
        if clock >= self.until + LEASE_SECONDS:
            return 1
        if self.used >= self.granted:
            return min(MAX_LEASE, 2 * self.granted)
        if self.cut and clock >= self.until:
            return self.granted
        return max(1, self.used)


def merge(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
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
    """One per app. `admit(key_digest)`: a request of a key that authenticated, against the
    key's own limit. `fail(address)`: a failed authentication, against the address's budget.
    `recently_refused(key_digest)`: whether to ask `admit` before reading the database.
    `now` (both): this process's wall clock (default time.time()); it numbers the windows only
    where this process counts (memory): Redis counts on its own clock."""

    def __init__(self, store: Store, key_limit: Limit, fail_limit: Limit):
        self.store, self.key_limit, self.fail_limit = store, key_limit, fail_limit
        self.leases: dict[str, Lease] = {}  # key digest → this process's lease (Redis only)
        self._leases_lock = threading.Lock()  # gthread workers: requests on several threads
        self._refused: dict[str, float] = {}  # key digest or "ip:" + address → monotonic until

    def admit(self, key_digest: str, now: float | None = None) -> Decision:
        """One request against the key's limit: a token of this process's lease for the key
        (no I/O), or else one script call, which also gives back the retired lease's unused
        tokens and asks for as many as the key's recent rate here suggests (Lease.want)."""
        want, back = 1, None
        if self.store.shared:
            with self._leases_lock:
                lease = self.leases.get(key_digest)
                if lease is not None:
                    clock = time.monotonic()
                    if lease.used < lease.granted and clock < lease.until:
                        lease.used += 1
                        return allowed(self.key_limit, lease.number, lease.base + lease.used)
                    del self.leases[key_digest]
                    want, back = lease.want(clock), lease.unused()
        sent = time.monotonic()
        reply = self.store.take(f"apikey:{key_digest}", self.key_limit, now, want, SHARE, back)
        decision = decide(self.key_limit, reply)
        if self.store.shared:
            if reply.allowed:
                number, _ = self.key_limit.window(reply.now)
                left = self.key_limit.end(number) - reply.now  # of the window, Redis's clock
                until = sent + min(LEASE_SECONDS, left) if reply.shared else sent
                self._keep(key_digest, Lease(number, until, left <= LEASE_SECONDS,
                                             reply.estimate, reply.granted, 1))
            else:  # no tokens; slow start again
                self._keep(key_digest, Lease(0, -math.inf, False, 0.0, 0, 0))
        return self._note(key_digest, decision)

    def fail(self, address: str, now: float | None = None) -> Decision:
        """Count one failed authentication against the address; not allowed (429 rather than
        401) when it is over its budget. An address this process refused lately is refused
        again without I/O until its Retry-After."""
        refused_until = self._refused.get("ip:" + address, 0.0)
        wait = refused_until - time.monotonic()
        if wait > 0:
            retry = max(1, math.ceil(wait))
            return Decision(False, self.fail_limit.amount, 0, int(time.time()) + retry, retry)
        reply = self.store.take(f"apifail:{address}", self.fail_limit, now)
        return self._note("ip:" + address, decide(self.fail_limit, reply))

    def recently_refused(self, key_digest: str) -> bool:
        """Whether this process refused the key less than its Retry-After ago (memory, no
        I/O): then the caller asks `admit` before any database work, so a refused flood costs
        the database nothing. Only ever orders the calls; never decides (admit does)."""
        refused = self._refused
        return bool(refused) and refused.get(key_digest, 0.0) > time.monotonic()

    def _note(self, what: str, decision: Decision) -> Decision:
        if not decision.allowed:
            refused = self._refused
            if len(refused) >= REFUSALS_KEPT:
                refused.clear()  # a flood of distinct keys: start over (costs one read each)
            refused[what] = time.monotonic() + decision.retry_after
        return decision

    def _keep(self, key_digest: str, lease: Lease) -> None:
        """`lease` becomes the key's. Another thread's lease for the key, made meanwhile, is
        replaced; its unused tokens are carried, to be given back."""
        with self._leases_lock:
            leases = self.leases
            old = leases.get(key_digest)
            if old is not None:
                lease.back = merge(lease.back, old.unused())
            elif len(leases) >= LEASES_KEPT:  # a flood of distinct keys: keep the live ones
                clock = time.monotonic()
                live = {digest: kept for digest, kept in leases.items() if kept.until > clock}
                self.leases = leases = live if len(live) < LEASES_KEPT // 2 else {}
            leases[key_digest] = lease
