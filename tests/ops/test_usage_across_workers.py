"""Usage per key per day across gunicorn workers (SPEC §9): each worker counts in its own memory
and flushes on its own; the day's total is every request exactly once, after the flush interval
and after a graceful stop. PostgreSQL and Redis, like tests/ops/test_api_across_workers.py."""

from __future__ import annotations

import re
import time

from fvapp.services import keys
from fvapp.usage import reading
from tests.support.api import bearer
from tests.support.marks import ON_POSTGRESQL_AND_REDIS
from tests.support.processes import fvapp_server

pytestmark = ON_POSTGRESQL_AND_REDIS
N = 60
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _today_total(app, key_id) -> int:
    with app.app_context():  # a fresh session: the workers write on their own connections
        return reading.for_key(key_id).today.total


def _detail_today(server, demo, key_id) -> int:
    """Today's count as the key's detail view shows it to a signed-in owner."""
    import requests

    with requests.Session() as browser:
        token = CSRF.search(browser.get(server.url + "/login", timeout=10).text).group(1)
        signed_in = browser.post(server.url + "/login", timeout=10, data={
            "email": "ava@acme.test", "password": demo.password, "csrf_token": token})
        assert signed_in.status_code == 200, signed_in.status_code  # after the 303
        page = browser.get(f"{server.url}/settings/api-keys/{key_id}", timeout=10).text
    return int(re.search(r"data-usage-today>([\d,]+)<", page).group(1).replace(",", ""))


def _n_requests_from_both_workers(server, clear: str) -> None:
    answers = server.burst("/api/v1/me", N, bearer(clear))
    assert [r.status_code for r in answers] == [200] * N
    assert len(set(server.pids())) == 2  # both workers counted some


def _key(app, demo, name) -> tuple[str, object]:
    """(the clear key, its id), made in a context of its own."""
    with app.app_context():
        created = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, name)
        return created.clear, created.key.id


def test_n_requests_across_two_workers_are_n_after_the_flush_interval(
        app, database_url, demo, tmp_path):
    clear, key_id = _key(app, demo, "Across workers")
    with fvapp_server(database_url, tmp_path, USAGE_FLUSH_IN_BACKGROUND="1",
                  USAGE_FLUSH_INTERVAL="0.5") as server:
        _n_requests_from_both_workers(server, clear)
        deadline = time.monotonic() + 30
        while _today_total(app, key_id) < N and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # three more intervals: nothing is written twice
        assert _today_total(app, key_id) == N
        assert _detail_today(server, demo, key_id) == N


def test_a_graceful_stop_flushes_what_each_worker_still_holds(app, database_url, demo, tmp_path):
    clear, key_id = _key(app, demo, "Usage at exit")
    with fvapp_server(database_url, tmp_path, USAGE_FLUSH_IN_BACKGROUND="1",
                  USAGE_FLUSH_INTERVAL="3600") as server:
        _n_requests_from_both_workers(server, clear)
        assert _today_total(app, key_id) == 0  # an hour's interval: nothing written yet
    assert _today_total(app, key_id) == N  # the workers' exit wrote it
