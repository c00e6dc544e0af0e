"""Two instances behind nginx, as production runs them (SPEC §10): Debian's nginx in front of two
gunicorn instances (gunicorn.conf.py, two workers and a database pool each) sharing one
PostgreSQL database and one Redis, everything on loopback, started here and stopped at the end
(tests/cluster.py).

- Revocation, a plan downgrade and a sign-out done through one instance hold on the very next
  request the other serves; the per-key limit is one count across both.
- HUP to one instance, then TERM to the other and a fresh start, under load: no request fails.
- A short soak (benchmarks/soak.py, 45 s): no 5xx, no error in any log, flat worker memory.

nginx adds X-Upstream ($upstream_addr) to every answer here, so each check knows which instance
served it. They need PostgreSQL and Redis, so they run on the postgresql backend when
TEST_DATABASE_URL and TEST_REDIS_URL are set (CI sets both, and FVAPP_REQUIRE_BROWSER, which
makes a missing nginx a failure rather than a skip).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cluster import NGINX, WebUser, cluster

from fvapp.cli import DEMO_PASSWORD
from fvapp.services import keys

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import soak  # noqa: E402

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_URL and REDIS_URL),
                       reason="needs TEST_DATABASE_URL and TEST_REDIS_URL (CI sets both)"),
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


@pytest.fixture(scope="module")
def nginx_installed():
    if NGINX is None:
        message = "nginx is not installed (apt-get install nginx)"
        if os.environ.get("FVAPP_REQUIRE_BROWSER"):
            pytest.fail(message + "; CI needs it (FVAPP_REQUIRE_BROWSER is set)")
        pytest.skip(message)


def instance_env(database_url: str, **extra) -> dict:
    return {**soak.cluster_env(database_url, REDIS_URL),
            "RATELIMIT_KEY_PREFIX": f"fvapp-test-{uuid.uuid4().hex}", **extra}


@pytest.fixture
def ava(demo):
    return demo.user("ava@acme.test")


def served_by(response: requests.Response) -> str:
    return response.headers["X-Upstream"]


def api_get(stack, key: str, path: str = "/me") -> requests.Response:
    return requests.get(stack.url + "/api/v1" + path, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def until_the_other_serves(stack, first: str, request, tries: int = 6) -> list[requests.Response]:
    """Send `request` (a callable) through nginx until the instance that is not `first` has
    served one; all the answers, in order."""
    answers = []
    for _ in range(tries):
        answers.append(request())
        if served_by(answers[-1]) != first:
            return answers
    raise AssertionError(f"nginx sent {tries} requests in a row to {first}")


class TestAcrossInstances:
    """One cluster for these four (stopped before the load tests start theirs): a limit of 20
    requests an hour per key."""

    @pytest.fixture(scope="class")
    def strict(self, nginx_installed, database_url, tmp_path_factory):
        with cluster(tmp_path_factory.mktemp("cluster"),
                     instance_env(database_url, API_RATE_LIMIT="20 per hour")) as stack:
            yield stack

    def test_a_key_revoked_through_one_instance_is_refused_by_the_other(self, strict, demo, ava):
        created = keys.create_key(demo.acme.id, ava.id, "CI pipeline")
        assert {served_by(api_get(strict, created.clear)) for _ in range(4)} == {
            i.address for i in strict.instances}  # both instances have served it (and said 200)
        owner = WebUser(strict.url)
        assert owner.login("ava@acme.test", DEMO_PASSWORD).status_code == 303

        revoked = owner.revoke_key(str(created.key.id))
        assert revoked.status_code == 303
        via = served_by(revoked)
        after = until_the_other_serves(strict, via, lambda: api_get(strict, created.clear))
        assert [(r.status_code, r.json()["code"]) for r in after] == [(401, "UNAUTHORIZED")] * len(after)
        print(f"revoked via {via}; next request served by {served_by(after[-1])}: {after[-1].status_code}")

    def test_a_downgrade_through_one_instance_is_refused_by_the_other(self, strict, demo, ava):
        key = keys.create_key(demo.acme.id, ava.id, "CI pipeline").clear
        assert api_get(strict, key).status_code == 200
        owner = WebUser(strict.url)
        assert owner.login("ava@acme.test", DEMO_PASSWORD).status_code == 303
        owner.get("/settings/subscription")

        downgraded = owner.post("/settings/subscription", {"plan": "free"})
        assert downgraded.status_code == 303
        after = until_the_other_serves(strict, served_by(downgraded), lambda: api_get(strict, key))
        assert [(r.status_code, r.json()["code"]) for r in after] == [(403, "PAID_PLAN_REQUIRED")] * len(after)

    def test_the_per_key_limit_is_one_count_across_both_instances(self, strict, demo, ava):
        key = keys.create_key(demo.acme.id, ava.id, "CI pipeline").clear
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: api_get(strict, key), range(40)))
        statuses = Counter(r.status_code for r in answers)
        by_instance = Counter((served_by(r), r.status_code) for r in answers)
        print(f"burst of 40, limit 20 per hour: {dict(statuses)}; per instance: {dict(by_instance)}")
        assert statuses == {200: 20, 429: 20}
        assert {served_by(r) for r in answers if r.status_code == 200} == {i.address for i in strict.instances}
        refused = next(r for r in answers if r.status_code == 429)
        assert refused.json()["code"] == "RATE_LIMITED"
        assert refused.headers["X-RateLimit-Limit"] == "20"

    def test_a_session_signed_out_on_one_instance_is_dead_on_the_other(self, strict, demo):
        person = WebUser(strict.url)
        assert person.login("ava@acme.test", DEMO_PASSWORD).status_code == 303
        assert person.get("/settings/api-keys").status_code == 200
        copied = person.http.cookies.copy()  # what a thief would have kept

        signed_out = person.logout()
        assert signed_out.status_code == 303
        after = until_the_other_serves(strict, served_by(signed_out), lambda: requests.get(
            strict.url + "/settings/api-keys", cookies=copied, allow_redirects=False, timeout=30))
        assert [r.status_code for r in after] == [302] * len(after)
        assert all(r.headers["Location"].startswith("/login") for r in after)


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


def test_hup_and_term_under_load_fail_no_request(nginx_installed, database_url, demo, ava, tmp_path):
    key = keys.create_key(demo.acme.id, ava.id, "Load").clear
    with cluster(tmp_path, instance_env(database_url)) as stack, Load(stack.url, key) as load:
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


def test_a_short_soak_is_clean(nginx_installed, database_url, demo, ava, tmp_path):
    """benchmarks/soak.py for 45 s (make soak runs it for 10 minutes)."""
    key = keys.create_key(demo.acme.id, ava.id, "Soak").clear
    with cluster(tmp_path, instance_env(database_url)) as stack:
        report = soak.run(stack, key, "ava@acme.test", DEMO_PASSWORD, duration=45, warmup=15)
    print("\n" + "\n".join(report.lines()))
    assert report.total > 100
    assert report.server_errors == 0
    assert report.unexpected == [] and report.exceptions == 0
    assert report.error_lines == {"appA": [], "appB": [], "nginx": []}
    assert not report.workers_replaced and len(report.rss) == 4
    assert all(report.growth(pid) < soak.RSS_GROWTH_LIMIT for pid in report.rss), report.lines()
