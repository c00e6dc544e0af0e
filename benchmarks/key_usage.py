"""What knowing a key's use costs (SPEC §9): statements and PostgreSQL round trips per
authenticated request with last_used_at fresh and stale (the stale one carries the IP and user
agent in its one UPDATE), then the database writes per key per minute under load: gunicorn
with 2 workers drives N requests with one key over S seconds, and every worker counts the
UPDATE/INSERT statements it runs (SQLAlchemy events, written out at the worker's exit, after
its last usage flush). Ends with the usage row: today's total must be exactly N.

    .venv/bin/python -m benchmarks.key_usage --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        --redis-url redis://127.0.0.1:6379/0 --requests 2000 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

from benchmarks.common import bench_app, migrate_and_seed, scratch_database
from fvapp.extensions import db
from fvapp.models import utcnow
from fvapp.services import keys
from fvapp.usage import reading
from tests.support.processes import READY, gunicorn
from tests.support.tracing import PgRoundTrips, sql_statements, trace_connections

HOOKS = '''
import atexit, json, os
from collections import Counter

def post_worker_init(worker):
    worker.log.info("%s %s", READY, worker.pid)  # what tests.support.processes waits for
    from sqlalchemy import event
    from fvapp.extensions import db
    seen = Counter()
    with worker.wsgi.app_context():  # the Flask app gunicorn loaded
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):
        words = statement.split()
        word = words[0].upper()
        table = {"UPDATE": words[1], "INSERT": words[2], "DELETE": words[2]}.get(word, "")
        seen[f"{word} {table}".strip()] += 1

    def dump():  # registered before the usage flusher's atexit: runs after it
        with open(os.path.join(os.environ["BENCH_COUNTS"], f"{os.getpid()}.json"), "w") as out:
            json.dump(seen, out)
    atexit.register(dump)
'''


def per_request(app, clear: str, url: str, n: int, stale: bool) -> tuple[Counter, Counter]:
    """Statements and round trips per request, last_used_at fresh or made stale before each."""
    other = sa.create_engine(url)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {clear}", "User-Agent": "bench/1.0"}
    trace_connections()  # sql_statements on PostgreSQL reads libpq's trace
    with app.app_context():
        trips = PgRoundTrips(db.engine)
        client.get("/api/v1/me", headers=headers)  # the first use: last_used_at written
        before, statements = trips.counts(), Counter()
        for _ in range(n):
            if stale:
                with other.begin() as conn:
                    conn.execute(sa.text("UPDATE api_keys SET last_used_at = :t WHERE key_hash = :h"),
                                 {"t": utcnow() - timedelta(minutes=2), "h": keys.hash_key(clear)})
            with sql_statements(db.engine) as seen:
                assert client.get("/api/v1/me", headers=headers).status_code == 200
            statements.update(s.split(None, 1)[0] for s in seen)
        rounds = trips.counts() - before
        trips.close()
    other.dispose()
    return statements, rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--per-request", type=int, default=200)
    args = parser.parse_args()
    url, drop = scratch_database(args.database_url)
    try:
        loaded = bench_app(url)
        clear = migrate_and_seed(loaded).clear
        n = args.per_request
        for stale in (False, True):  # a new app each: the trace starts with its connections
            statements, rounds = per_request(bench_app(url, args.redis_url), clear, url, n, stale)
            print(f"last_used_at {'stale' if stale else 'fresh'}: "
                  f"{sum(statements.values()) / n:.2f} SQL statements/request {dict(statements)}, "
                  f"{sum(rounds.values()) / n:.2f} PostgreSQL round trips/request {dict(rounds)}")

        counts_dir = Path(tempfile.mkdtemp(prefix="fvapp-bench-counts-"))
        hooks = counts_dir / "hooks.py"
        hooks.write_text(HOOKS.replace("READY", repr(READY)))
        env = {"FVAPP_ENV": "production", "SECRET_KEY": "bench-" + uuid.uuid4().hex,
               "DATABASE_URL": url, "REDIS_URL": args.redis_url,
               "RATELIMIT_KEY_PREFIX": f"fvapp-bench-{uuid.uuid4().hex[:8]}",
               "API_RATE_LIMIT": "100000000 per minute", "BENCH_COUNTS": str(counts_dir)}
        with loaded.app_context():  # stale, so the run's first request writes it, as in life
            key_id = db.session.execute(
                sa.text("UPDATE api_keys SET last_used_at = :t WHERE key_hash = :h RETURNING id"),
                {"t": utcnow() - timedelta(minutes=2), "h": keys.hash_key(clear)}).scalar_one()
            db.session.commit()
        # the last --config wins: these hooks also log READY, as the helper's own would
        with gunicorn("wsgi:app", env, counts_dir, "--config", str(hooks),
                      ready_path="/api/v1/openapi.json") as server:
            answered = Counter()
            lock = threading.Lock()
            gap = args.seconds / args.requests * 4  # 4 clients, evenly paced
            start = time.monotonic()

            def client(offset: int) -> None:
                session = requests.Session()
                for i in range(offset, args.requests, 4):
                    delay = start + i * gap / 4 - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    status = session.get(server + "/api/v1/me",
                                         headers={"Authorization": f"Bearer {clear}"}).status_code
                    with lock:
                        answered[status] += 1

            threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - start
        writes = Counter()
        for path in counts_dir.glob("*.json"):
            writes.update(json.loads(path.read_text()))
        with loaded.app_context():
            total = reading.for_key(key_id).today.total
        minutes = elapsed / 60
        print(f"gunicorn -w 2: {sum(answered.values())} requests in {elapsed:.0f} s {dict(answered)}; "
              f"{len(list(counts_dir.glob('*.json')))} workers reported")
        print(f"writes over the run (incl. each worker's exit flush): {dict(writes)}")
        per_key = sum(v for k, v in writes.items() if k in ("UPDATE api_keys", "INSERT key_usage_daily"))
        print(f"writes for the key per minute (UPDATE api_keys + INSERT key_usage_daily): "
              f"{per_key / minutes:.1f}, at {sum(answered.values()) / minutes:.0f} requests per minute")
        print(f"usage today for the key: {total} (expected {args.requests})")
    finally:
        drop()


if __name__ == "__main__":
    main()
