"""Two instances behind nginx (tests/support/cluster.py, as in tests/ops/test_several_instances.py) under load,
one cluster for the module: a short soak (benchmarks/soak.py for 45 s; `make soak` runs it for 10
minutes): no 5xx, no error in any log, flat worker memory. Then HUP to one instance, TERM to the
other and a fresh start, while thousands of GET /api/v1/me run through nginx: no request fails.
PostgreSQL and Redis only, as there.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from benchmarks import soak
from fvapp.cli import DEMO_PASSWORD
from fvapp.services import keys
from tests.support.cluster import cluster, cluster_env, require_nginx
from tests.support.marks import ON_POSTGRESQL_AND_REDIS, REDIS_URL

pytestmark = ON_POSTGRESQL_AND_REDIS


@pytest.fixture(scope="module")
def stack(database_url, tmp_path_factory):
    """One cluster for both tests (the soak reads only the log lines written during it)."""
    require_nginx()
    with cluster(tmp_path_factory.mktemp("cluster"), cluster_env(database_url, REDIS_URL, "fvapp-test")) as running:
        yield running


@pytest.fixture
def key(app, demo):
    with app.app_context():
        return keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "Load").clear


def test_a_short_soak_is_clean(stack, key):
    """benchmarks/soak.py for 45 s (make soak runs it for 10 minutes)."""
    report = soak.run(stack, key, "ava@acme.test", DEMO_PASSWORD, duration=45, warmup=15)
    print("\n" + "\n".join(report.lines()))
    assert report.total > 100
    assert report.server_errors == 0
    assert report.unexpected == [] and report.exceptions == 0
    assert report.error_lines == {"appA": [], "appB": [], "nginx": []}
    assert not report.workers_replaced and len(report.rss) == 4
    assert all(report.growth(pid) < soak.RSS_GROWTH_LIMIT for pid in report.rss), report.lines()


class Load:
    """GET /api/v1/me through nginx from several keep-alive connections until stopped (or
    `limit` requests): every answer's status and the instance that served it, in order."""

    def __init__(self, url: str, key: str, connections: int = 8, limit: int = 30000):
        self.url, self.key, self.limit = url + "/api/v1/me", key, limit
        self.answers: list[tuple[int, str]] = []  # (status, X-Upstream); status 0: an exception
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(connections)]

    def _client(self):
        http = requests.Session()
        headers = {"Authorization": f"Bearer {self.key}"}
        while not self.stopping.is_set() and len(self.answers) < self.limit:
            try:
                # nginx, not the client, decides when an instance is too slow (proxy_read_timeout,
                # then the other instance): on a crowded machine a HUP's new workers may take a
                # while to import the app, and requests wait for them in the listen queue.
                response = http.get(self.url, headers=headers, timeout=180)
                self.answers.append((response.status_code, response.headers.get("X-Upstream", "")))
            except requests.RequestException as err:
                self.answers.append((0, ""))
                self.errors.append(repr(err))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=200)

    def wait_for(self, more: int, served_by: str | None = None, seconds: float = 300) -> None:
        """Until `more` further answers have come (from `served_by`, if given); bounded."""
        def count():
            return sum(1 for _, up in self.answers if served_by is None or served_by in up.split(", ")[-1:])
        target, deadline = count() + more, time.monotonic() + seconds
        while count() < target:
            assert time.monotonic() < deadline, f"the load stalled: {len(self.answers)} answers"
            assert any(t.is_alive() for t in self.threads), "every load client stopped"
            time.sleep(0.05)

    def mark(self) -> int:
        return len(self.answers)


def test_hup_and_term_under_load_fail_no_request(stack, key):
    with Load(stack.url, key) as load:
        first, second = stack.instances
        load.wait_for(200)
        hup_at = load.mark()
        old, new = first.reload()  # HUP: fresh workers, the old ones finish and leave
        load.wait_for(200, served_by=first.address)
        term_at = load.mark()
        assert second.stop() == 0  # TERM: graceful, exit status 0
        stopped_at = load.mark()
        load.wait_for(200)
        restart_at = load.mark()
        second.start(port=second.port)
        load.wait_for(100, served_by=second.address)  # nginx sends it traffic again
        load.wait_for(max(0, 2000 - load.mark()))  # a few thousand in all
    statuses = Counter(status for status, _ in load.answers)
    retried = sum(1 for _, up in load.answers if "," in up)
    phases = {"before HUP": load.answers[:hup_at], "HUP → TERM": load.answers[hup_at:term_at],
              "TERM → exit": load.answers[term_at:stopped_at], "exit → start": load.answers[stopped_at:restart_at],
              "after start": load.answers[restart_at:]}
    print(f"\nGET /api/v1/me under HUP and TERM: {len(load.answers):,} requests, statuses {dict(statuses)}, "
          f"failed {len(load.answers) - statuses[200]}, retried by nginx on the other instance {retried}")
    for name, answers in phases.items():
        print(f"  {name:<13} {len(answers):>6,} requests, failed {sum(s != 200 for s, _ in answers)}, "
              f"served by {dict(Counter(up.split(', ')[-1] for _, up in answers))}")
    print(f"  HUP replaced workers {sorted(old)} with {sorted(new)}")
    assert load.errors == []
    assert statuses == {200: len(load.answers)}
    assert len(load.answers) >= 2000
    # The stopped instance really was out of the rotation, and back after its start.
    # (Past the first few: a client may record an answer it had before the exit a moment late.)
    assert {up.split(", ")[-1] for _, up in phases["exit → start"][len(load.threads):]} == {first.address}
    assert second.address in {up.split(", ")[-1] for _, up in phases["after start"]}

