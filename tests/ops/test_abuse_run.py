"""The abuse run of SPEC §11 (benchmarks/abuse.py; `make abuse` prints the same figures): eight
valid clients and an attacker sharing client 1's address, 30 s through nginx in front of two
gunicorn instances on PostgreSQL and Redis, production's limits. The valid clients see only 2xx,
nobody sees a 5xx, the attacker gets the answers SPEC §11 names, key_usage_daily holds exactly
what each valid client counted, and no log has an error line. And, on the README's nginx
configuration, large bodies the app refuses unread never make nginx give up on an instance.
PostgreSQL and Redis only, as the other multi-process tests (tests/support/marks.py).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from benchmarks import abuse
from fvapp.services import keys
from tests.support.api import bearer, mint_key
from tests.support.cluster import cluster, cluster_env, require_nginx
from tests.support.marks import ON_POSTGRESQL_AND_REDIS, REDIS_URL

pytestmark = ON_POSTGRESQL_AND_REDIS


def test_thirty_seconds_of_abuse_leave_the_valid_clients_and_their_counts_untouched(
        database_url, app, demo, tmp_path):
    require_nginx()
    run_keys = abuse.mint_keys(app, demo.acme.id, demo.user("ava@acme.test").id)

    report = abuse.run(database_url, REDIS_URL, tmp_path, run_keys, duration=30)

    figures = "\n".join(report.lines())
    print("\n" + figures)
    assert report.total("flood") > 1000, figures  # the attacker did flood
    assert all(report.total(f"client {n}") >= 20 for n in range(1, abuse.CLIENTS + 1)), figures
    assert report.valid_not_2xx == 0, figures
    assert report.server_errors == 0, figures
    assert not report.unexpected, figures
    assert report.usage_exact, figures
    assert report.error_lines == {"appA": [], "appB": [], "nginx": []}, figures
    assert report.exit_codes == {"appA": 0, "appB": 0} and report.stuck_threads == 0, figures


def test_large_bodies_refused_unread_never_take_an_instance_out_of_nginx(database_url, app, demo, tmp_path):
    """A 1 MiB body (under nginx's client_max_body_size and the app's limit) with a key nobody
    has: the app answers 401 from the headers, without reading the body. nginx, buffering as the
    README configures it, is still writing that body to the instance: the instance must read it
    to the end before closing, or nginx gets a broken pipe, answers 502 and takes the instance
    out for its fail_timeout — with two such requests, both, for every client."""
    require_nginx()
    key = mint_key(app, demo.acme, demo.user("ava@acme.test"))
    body = b'{"title": "Large"}' + b" " * (abuse.MIB - 100)
    env = cluster_env(database_url, REDIS_URL, "fvapp-test")  # every unknown key a 401, not a 429

    def large(_):
        return requests.post(stack.url + "/api/v1/initiatives", data=body, timeout=30, headers={
            **bearer(keys.generate_key()), "Content-Type": "application/json"}).status_code

    def small(_):
        return requests.get(stack.url + "/api/v1/me", headers=bearer(key), timeout=30).status_code

    with cluster(tmp_path, env) as stack, ThreadPoolExecutor(max_workers=4) as pool:
        unknown = pool.map(large, range(120))
        valid = Counter(pool.map(small, range(40)))
        unknown = Counter(unknown)
        errors = stack.error_lines()
    print(f"1 MiB bodies with unknown keys: {dict(unknown)}; a valid key meanwhile: {dict(valid)}")
    assert unknown == {401: 120}
    assert valid == {200: 40}
    assert errors == {"appA": [], "appB": [], "nginx": []}
