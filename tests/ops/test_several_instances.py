"""Two instances behind nginx, as production runs them (SPEC §10): Debian's nginx in front of two
gunicorn instances (gunicorn.conf.py, two workers and a database pool each) sharing one
PostgreSQL database and one Redis, all on loopback, started here and stopped at the end
(tests/support/cluster.py). Revocation, a plan downgrade and a sign-out done through one instance hold on
the very next request the other serves; the per-key limit is one count across both.
(tests/ops/test_several_instances_under_load.py: HUP and TERM under load, and a short soak.)

nginx adds X-Upstream ($upstream_addr) to every answer here, so each check knows which instance
served it. These need PostgreSQL and Redis, so they run on the postgresql backend when
TEST_DATABASE_URL and TEST_REDIS_URL are set (CI sets both, and FVAPP_REQUIRE_BROWSER, which
makes a missing nginx a failure rather than a skip).
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from fvapp.cli import DEMO_PASSWORD
from fvapp.services import keys
from tests.support.browser import WebUser
from tests.support.cluster import cluster, cluster_env, require_nginx
from tests.support.marks import ON_POSTGRESQL_AND_REDIS, REDIS_URL

pytestmark = ON_POSTGRESQL_AND_REDIS


@pytest.fixture(scope="module")
def stack(database_url, tmp_path_factory):
    """One cluster for the module, with a limit of 20 requests an hour per key."""
    require_nginx()
    env = cluster_env(database_url, REDIS_URL, "fvapp-test", API_RATE_LIMIT="20 per hour")
    with cluster(tmp_path_factory.mktemp("cluster"), env) as running:
        yield running


@pytest.fixture
def ava(app_context, demo):
    """Ava, in a context held for the test (its service calls; its requests go over HTTP)."""
    return demo.user("ava@acme.test")


def served_by(response: requests.Response) -> str:
    return response.headers["X-Upstream"]


def api_get(stack, key: str, path: str = "/me") -> requests.Response:
    return requests.get(stack.url + "/api/v1" + path, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def until_the_other_serves(stack, first: str, request, tries: int = 40) -> list[requests.Response]:
    """Send `request` (a callable) through nginx until the instance that is not `first` has
    served one; all the answers, in order. (nginx takes turns, so the first one normally does;
    an instance nginx saw fail sits out for 10 s.)"""
    answers = []
    for _ in range(tries):
        answers.append(request())
        if served_by(answers[-1]) != first:
            return answers
        time.sleep(0.5)
    raise AssertionError(f"nginx sent {tries} requests in a row to {first}")


def test_a_key_revoked_through_one_instance_is_refused_by_the_other(stack, demo, ava):
    created = keys.create_key(demo.acme.id, ava.id, "CI pipeline")
    assert {served_by(api_get(stack, created.clear)) for _ in range(4)} == {
        i.address for i in stack.instances}  # both instances have served it (and said 200)
    owner = WebUser(stack.url)
    assert owner.login("ava@acme.test", DEMO_PASSWORD).status_code == 303

    revoked = owner.revoke_key(str(created.key.id))
    assert revoked.status_code == 303
    via = served_by(revoked)
    after = until_the_other_serves(stack, via, lambda: api_get(stack, created.clear))
    assert [(r.status_code, r.json()["code"]) for r in after] == [(401, "UNAUTHORIZED")] * len(after)
    print(f"revoked via {via}; next request served by {served_by(after[-1])}: {after[-1].status_code}")


def test_a_downgrade_through_one_instance_is_refused_by_the_other(stack, demo, ava):
    key = keys.create_key(demo.acme.id, ava.id, "CI pipeline").clear
    assert api_get(stack, key).status_code == 200
    owner = WebUser(stack.url)
    assert owner.login("ava@acme.test", DEMO_PASSWORD).status_code == 303
    owner.get("/settings/subscription")

    downgraded = owner.post("/settings/subscription", {"plan": "free"})
    assert downgraded.status_code == 303
    after = until_the_other_serves(stack, served_by(downgraded), lambda: api_get(stack, key))
    assert [(r.status_code, r.json()["code"]) for r in after] == [(403, "PAID_PLAN_REQUIRED")] * len(after)


def test_the_per_key_limit_is_one_count_across_both_instances(stack, demo, ava):
    key = keys.create_key(demo.acme.id, ava.id, "CI pipeline").clear
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: api_get(stack, key), range(40)))
    statuses = Counter(r.status_code for r in answers)
    by_instance = Counter((served_by(r), r.status_code) for r in answers)
    print(f"burst of 40, limit 20 per hour: {dict(statuses)}; per instance: {dict(by_instance)}")
    assert statuses == {200: 20, 429: 20}
    assert {served_by(r) for r in answers if r.status_code == 200} == {i.address for i in stack.instances}
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["code"] == "RATE_LIMITED"
    assert refused.headers["X-RateLimit-Limit"] == "20"


def test_a_session_signed_out_on_one_instance_is_dead_on_the_other(stack, demo):
    person = WebUser(stack.url)
    assert person.login("ava@acme.test", DEMO_PASSWORD).status_code == 303
    assert person.get("/settings/api-keys").status_code == 200
    copied = person.http.cookies.copy()  # what a thief would have kept

    signed_out = person.logout()
    assert signed_out.status_code == 303
    after = until_the_other_serves(stack, served_by(signed_out), lambda: requests.get(
        stack.url + "/settings/api-keys", cookies=copied, allow_redirects=False, timeout=30))
    assert [r.status_code for r in after] == [302] * len(after)
    assert all(r.headers["Location"].startswith("/login") for r in after)
