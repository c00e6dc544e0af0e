"""`make soak`: mixed traffic through nginx in front of two gunicorn instances for --duration
seconds (default 600), then the verdict: no 5xx, no unexpected answer, no error line in any log,
no worker replaced, and each worker's resident memory (VmRSS) grown by less than 10% between the
end of the warm-up and the end.

The traffic, all through nginx, each actor a thread of its own:
- two API readers: GET /api/v1/me, the initiatives list, one initiative;
- an API writer: POST and PATCH /api/v1/initiatives;
- a person in the browser pages: sign in, Settings → API Keys, create a key (CSRF), call the
  API with it, revoke it, see it refused, sign out, see the old session refused;
- a load balancer's probe: GET /healthz and /readyz.

Standalone it makes a scratch PostgreSQL database (migrated, the demo seeded, one key) and the
cluster (tests/support/cluster.py), and drops both at the end; tests/ops/test_several_instances_under_load.py
runs the same run() for 45 s against its own.

    .venv/bin/python -m benchmarks.soak [--duration S] [--warmup S] [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from benchmarks.common import bench_app, migrate_and_seed, scratch_database
from fvapp.cli import DEMO_PASSWORD
from tests.support.browser import WebUser
from tests.support.cluster import Cluster, cluster, cluster_env

RSS_GROWTH_LIMIT = 0.10


@dataclass
class Report:
    seconds: float = 0.0
    answers: Counter = field(default_factory=Counter)  # (what, status) → count
    unexpected: list[str] = field(default_factory=list)  # the first few, for the message
    unexpected_count: int = 0
    exceptions: int = 0
    rss: dict[int, tuple[str, int, int]] = field(default_factory=dict)  # pid → (instance, warm kB, end kB)
    workers_replaced: bool = False
    error_lines: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.answers.values())

    @property
    def server_errors(self) -> int:
        return sum(count for (_, status), count in self.answers.items() if status >= 500)

    def growth(self, pid: int) -> float:
        _, warm, end = self.rss[pid]
        return (end - warm) / warm

    @property
    def log_errors(self) -> int:
        return sum(len(lines) for lines in self.error_lines.values())

    @property
    def ok(self) -> bool:
        return (self.total > 0 and not self.server_errors and not self.unexpected_count
                and not self.exceptions and not self.log_errors and not self.workers_replaced
                and bool(self.rss) and all(self.growth(pid) < RSS_GROWTH_LIMIT for pid in self.rss))

    def lines(self) -> list[str]:
        out = [f"soak: {self.total:,} requests in {self.seconds:.0f} s ({self.total / max(self.seconds, 1):.0f}/s), "
               f"5xx: {self.server_errors}, unexpected: {self.unexpected_count}, "
               f"exceptions: {self.exceptions}, error lines in logs: {self.log_errors}, "
               f"workers replaced: {'yes' if self.workers_replaced else 'no'}"]
        out += [f"  {what:<32} {status}: {count:,}" for (what, status), count in sorted(self.answers.items())]
        for pid, (instance, warm, end) in sorted(self.rss.items()):
            out.append(f"  worker {pid} ({instance}): RSS {warm / 1024:.1f} → {end / 1024:.1f} MiB "
                       f"after warm-up ({self.growth(pid):+.1%}, limit +{RSS_GROWTH_LIMIT:.0%})")
        out += [f"  unexpected: {line}" for line in self.unexpected[:10]]
        out += [f"  {name} log: {line}" for name, lines in self.error_lines.items() for line in lines[:10]]
        return out


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Traffic:
    """The actors share a deadline, the report and its lock."""

    def __init__(self, base: str, api_key: str, email: str, password: str, deadline: float):
        self.base, self.key, self.email, self.password = base, api_key, email, password
        self.deadline = deadline
        self.report = Report()
        self.lock = threading.Lock()
        self.initiative_ids: list[str] = []

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def check(self, what: str, response: requests.Response, *expected: int) -> bool:
        with self.lock:
            self.report.answers[(what, response.status_code)] += 1
            if response.status_code in expected:
                return True
            self.report.unexpected_count += 1
            self.report.unexpected.append(f"{what}: {response.status_code} (expected {expected}) "
                                          f"{response.text[:200]!r}")
            return False

    def guarded(self, actor):
        def run():
            while self.running():
                try:
                    actor()
                except (requests.RequestException, ValueError, KeyError) as err:
                    with self.lock:
                        self.report.exceptions += 1
                        self.report.unexpected.append(f"{actor.__name__}: {err!r}")
                    time.sleep(0.5)
        return threading.Thread(target=run, name=actor.__name__, daemon=True)

    def _api(self, http: requests.Session, method: str, path: str, key: str | None = None, **kw):
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return http.request(method, self.base + "/api/v1" + path, headers=headers, timeout=30, **kw)

    # The actors: one cycle each.

    def api_reader(self):
        http = requests.Session()
        while self.running():
            self.check("GET /api/v1/me", self._api(http, "GET", "/me"), 200)
            self.check("GET /api/v1/initiatives", self._api(http, "GET", "/initiatives?limit=20"), 200)
            if self.initiative_ids:
                one = self.initiative_ids[-1]
                self.check("GET /api/v1/initiatives/<id>", self._api(http, "GET", f"/initiatives/{one}"), 200)

    def api_writer(self):
        http = requests.Session()
        while self.running():
            created = self._api(http, "POST", "/initiatives",
                                json={"title": f"Soak {uuid.uuid4().hex[:8]}", "description": "From the soak."})
            if self.check("POST /api/v1/initiatives", created, 201):
                ident = created.json()["data"]["id"]
                self.initiative_ids = [*self.initiative_ids[-50:], ident]
                changed = self._api(http, "PATCH", f"/initiatives/{ident}", json={"title": "Soaked"})
                self.check("PATCH /api/v1/initiatives/<id>", changed, 200)
            time.sleep(0.05)  # a steady writer, not a flood of rows

    def person(self):
        user = WebUser(self.base)
        self.check("POST /login", user.login(self.email, self.password), 303)
        self.check("GET /settings/api-keys", user.get("/settings/api-keys"), 200)
        answer, key_id, clear = user.create_key(f"Soak {uuid.uuid4().hex[:6]}")
        if self.check("POST /settings/api-keys", answer, 200) and key_id and clear:
            http = requests.Session()
            self.check("GET /api/v1/me (new key)", self._api(http, "GET", "/me", clear), 200)
            self.check("POST …/revoke", user.revoke_key(key_id), 303)
            self.check("GET /api/v1/me (revoked)", self._api(http, "GET", "/me", clear), 401)
        elif not (key_id and clear):
            self.check("key revealed", answer, -1)  # a 200 without the key in it
        cookies = user.http.cookies.copy()
        self.check("POST /logout", user.logout(), 303)
        after = requests.get(self.base + "/settings/api-keys", cookies=cookies, allow_redirects=False, timeout=30)
        self.check("GET /settings (signed out)", after, 302)

    def probe(self):
        http = requests.Session()
        while self.running():
            self.check("GET /healthz", http.get(self.base + "/healthz", timeout=30), 200)
            self.check("GET /readyz", http.get(self.base + "/readyz", timeout=30), 200)
            time.sleep(0.5)


def run(stack: Cluster, api_key: str, email: str, password: str, duration: float,
        warmup: float | None = None, out=print) -> Report:
    """Drive the traffic for `duration` seconds through the cluster's nginx; measure each
    worker's RSS at the end of the warm-up (default: a quarter of the run, at most 60 s) and at
    the end. Returns the report (report.ok: the verdict)."""
    warmup = min(duration / 4, 60) if warmup is None else warmup
    logs = stack.log_ends()
    start = time.monotonic()
    traffic = Traffic(stack.url, api_key, email, password, start + duration)
    actors = [traffic.api_reader, traffic.api_reader, traffic.api_writer, traffic.person, traffic.probe]
    threads = [traffic.guarded(actor) for actor in actors]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, start + warmup - time.monotonic()))
    workers = stack.worker_pids()
    warm = {pid: rss_kb(pid) for pid in workers}
    out(f"soak: warm-up over after {warmup:.0f} s, {traffic.report.total:,} requests; "
        f"{len(warm)} workers at {sum(warm.values()) / 1024:.0f} MiB in all")
    for thread in threads:
        thread.join(timeout=max(0.0, start + duration - time.monotonic()) + 60)
    report = traffic.report
    report.seconds = time.monotonic() - start
    if any(thread.is_alive() for thread in threads):
        report.exceptions += 1
        report.unexpected.append("an actor was still running 60 s after the end")
    now = stack.worker_pids()
    report.workers_replaced = set(now) != set(workers)
    report.rss = {pid: (workers[pid], warm[pid], rss_kb(pid)) for pid in workers if pid in now}
    report.error_lines = stack.error_lines(since=logs)
    return report


def prepare(database_url: str) -> tuple[str, str, str]:
    """Migrate the scratch database, seed the demo, mint a key: (clear key, owner email, password)."""
    seeded = migrate_and_seed(bench_app(database_url))
    return seeded.clear, "ava@acme.test", DEMO_PASSWORD


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of traffic (default 600)")
    parser.add_argument("--warmup", type=float, help="seconds before the RSS baseline (default: duration/4, ≤ 60)")
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server; the soak makes and drops a database of its own there")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    url, drop = scratch_database(args.database_url)
    try:
        clear, email, password = prepare(url)
        with tempfile.TemporaryDirectory(prefix="fvapp-soak-") as work, \
                cluster(Path(work), cluster_env(url, args.redis_url, "fvapp-soak")) as stack:
            print(f"soak: nginx {stack.url} → {', '.join(i.url for i in stack.instances)}, "
                  f"{args.duration:.0f} s", flush=True)
            report = run(stack, clear, email, password, args.duration, args.warmup,
                         out=lambda line: print(line, flush=True))
    finally:
        drop()
    print("\n".join(report.lines()))
    print("soak: " + ("PASS" if report.ok else "FAIL"))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
