"""The abuse run of SPEC §11 (benchmarks/abuse.py; `make abuse` prints the same figures): eight
valid clients and an attacker sharing client 1's address, 30 s through nginx in front of two
gunicorn instances on PostgreSQL and Redis, production's limits. The valid clients see only 2xx,
nobody sees a 5xx, the attacker gets the answers SPEC §11 names, key_usage_daily holds exactly
what each valid client counted, and no log has an error line. PostgreSQL and Redis only, as the
other multi-process tests (tests/support/marks.py).
"""

from __future__ import annotations

from benchmarks import abuse
from tests.support.cluster import require_nginx
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
