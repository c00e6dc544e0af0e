"""How much the API's authentication costs: requests/s and p50/p99 of GET /api/v1/me, SQL
statements per request, last_used_at writes, round trips to PostgreSQL per request, and
key_auth.authenticate alone.

    .venv/bin/python benchmarks/api_auth.py                       # SQLite in a temporary dir
    .venv/bin/python benchmarks/api_auth.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
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
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from api_helpers import PgRoundTrips, sql_statements  # noqa: E402

from fvapp import create_app  # noqa: E402
from fvapp.cli import seed_demo  # noqa: E402
from fvapp.extensions import db  # noqa: E402
from fvapp.services import key_auth, keys  # noqa: E402
from fvapp.services.accounts import find_user  # noqa: E402


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def scratch_database(url: str | None):
    if url is None:
        path = Path(tempfile.mkdtemp()) / "bench.sqlite3"
        return f"sqlite:///{path}", lambda: None
    base = make_url(url)
    name = f"fvapp_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop():
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server to use (default: SQLite)")
    parser.add_argument("--redis-url", help="rate-limit storage (default: process memory)")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()

    url, drop = scratch_database(args.database_url)
    try:
        run(url, args)
    finally:
        drop()


def run(url: str, args) -> None:
    app = create_app({
        "ENV_MODE": "testing",
        "SECRET_KEY": "benchmark-" + uuid.uuid4().hex,
        "SQLALCHEMY_DATABASE_URI": url,
        "BCRYPT_ROUNDS": 4,
        "REDIS_URL": args.redis_url,
        "RATELIMIT_STORAGE_URI": args.redis_url or "memory://",
        "RATELIMIT_KEY_PREFIX": f"fvapp-bench-{uuid.uuid4().hex[:8]}",
        "API_RATE_LIMIT": "1000000 per minute",
    })
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        seed_demo()
        ava = find_user("ava@acme.test")
        workspace_id = next(m.workspace_id for m in ava.memberships if m.role == "owner")
        clear = keys.create_key(workspace_id, ava.id, "benchmark").clear
        engine = db.engine

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

    # Counted apart from the timed run: while something listens to the engine's statements,
    # the auth read goes through the session (so that they see it), not straight to psycopg.
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
          f"p50 {statistics.median(latencies) * 1000:.2f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.2f} ms")
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
          f"p50 {statistics.median(auth_times) * 1000:.3f} ms, "
          f"p99 {percentile(auth_times, 0.99) * 1000:.3f} ms")
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
