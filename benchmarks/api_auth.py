"""How much the API's authentication costs: requests/s and p50/p99 of GET /api/v1/me, SQL
statements per request, last_used_at writes, round trips to PostgreSQL per request, and
key_auth.authenticate alone.

    .venv/bin/python -m benchmarks.api_auth                       # SQLite in a temporary dir
    .venv/bin/python -m benchmarks.api_auth --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        --redis-url redis://127.0.0.1:6379/0 --requests 5000

With a PostgreSQL URL it creates a scratch database next to the one named and drops it after.
The app is called in-process through its WSGI interface (no sockets), one request at a time, so
the figures are the app's own cost: the auth hook, the rate-limit storage, the view, the envelope.
Each request gets its own app context, as in production, so its session checks a connection out
of the pool (pinged only after 10 s idle, fvapp/db_setup.py) and hands it back at the end.

"SQL statements" counts what SQLAlchemy executes (before_cursor_execute); "round trips" counts
what libpq exchanges with the server (PQtrace: one per ReadyForQuery), which adds the ping and
BEGIN/ROLLBACK. Speed targets live here, not in the test suite.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

from sqlalchemy.engine import make_url

from benchmarks.common import bench_app, in_scratch_database, migrate_and_seed, p50_p99
from fvapp.extensions import db
from fvapp.services import key_auth
from tests.support.tracing import PgRoundTrips, engine_of, sql_statements, trace_connections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server to use (default: SQLite)")
    parser.add_argument("--redis-url", help="rate-limit storage (default: process memory)")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    in_scratch_database(args.database_url, lambda url: run(url, args))


def run(url: str, args) -> None:
    app = bench_app(url, args.redis_url)
    clear = migrate_and_seed(app).clear
    engine = engine_of(app)

    client = app.test_client()
    headers = {"Authorization": f"Bearer {clear}"}
    for _ in range(200):  # warm up: pools, caches, the first last_used_at write
        client.get("/api/v1/me", headers=headers)

    latencies = []
    started = time.perf_counter()
    for _ in range(args.requests):
        t0 = time.perf_counter()
        response = client.get("/api/v1/me", headers=headers)
        latencies.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise SystemExit(
                f"unexpected {response.status_code}: {response.get_data(as_text=True)}")
    elapsed = time.perf_counter() - started

    # Counted apart from the timed run, whose speed the tracing would change: on PostgreSQL the
    # statements are read from libpq's trace (tests/support/tracing.py) of connections opened
    # from here on (the pool is emptied).
    engine.dispose()
    trace_connections()
    counted = min(args.requests, 1000)
    with sql_statements(engine) as seen:
        for _ in range(counted):
            client.get("/api/v1/me", headers=headers)
    statements = [statement.split()[0].upper() for statement in seen]
    per_request = len(statements) / counted
    selects, updates = statements.count("SELECT"), statements.count("UPDATE")

    backend = make_url(url).get_backend_name()
    trips = round_trips(client, headers, engine, min(args.requests, 1000)) if backend == "postgresql" else None

    with app.app_context():
        every = timedelta(seconds=app.config["API_KEY_TOUCH_SECONDS"])
        authorization = headers["Authorization"]
        auth_times = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            key_auth.authenticate(authorization, every)
            auth_times.append(time.perf_counter() - t0)
            db.session.rollback()
        db.session.remove()

    print(f"backend: {backend}, rate-limit storage: {args.redis_url or 'memory'}, "
          f"{args.requests} sequential requests, in-process WSGI")
    print(f"GET /api/v1/me: {args.requests / elapsed:,.0f} requests/s, "
          f"{p50_p99(latencies)}")
    print(f"SQL statements per request: {per_request:.2f} "
          f"({selects} SELECT, {updates} UPDATE over {counted} requests; "
          "transaction control not counted)")
    if trips is not None:
        sample, spent = trips
        kinds = ", ".join(f"{kind} {count / sample:.2f}" for kind, count in spent.most_common())
        print(f"PostgreSQL round trips per request: {spent.total() / sample:.2f} ({kinds}; "
              f"libpq trace of {sample} more requests)")
    else:
        print("PostgreSQL round trips per request: n/a on SQLite (in-process, no server)")
    print(f"key_auth.authenticate alone: {len(auth_times) / sum(auth_times):,.0f} calls/s, "
          f"{p50_p99(auth_times, digits=3)}")
    engine.dispose()


def round_trips(client, headers: dict, engine, requests: int):
    """(requests, Counter of round trips by kind) for that many more GET /me, traced by libpq.
    Apart from the timed run, whose speed the tracing would change: the pool is emptied so the
    tracer sees every connection from its start."""
    engine.dispose()
    trips = PgRoundTrips(engine)
    try:
        client.get("/api/v1/me", headers=headers)  # a fresh connection, traced from its start
        before = trips.counts()
        for _ in range(requests):
            client.get("/api/v1/me", headers=headers)
        return requests, trips.counts() - before
    finally:
        trips.close()


if __name__ == "__main__":
    main()
