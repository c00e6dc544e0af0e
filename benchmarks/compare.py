"""`make bench`: fvapp's GET /api/v1/me against benchmarks/reference_app.py, side by side.

Both run under gunicorn (2 workers) on PostgreSQL, each in a throwaway database holding
--keys keys (default 100,000); fvapp with its Redis rate limiter on (limit raised so nothing is
refused). The same load generator (wrk -t2 -c16 --latency if /usr/bin/wrk exists, else a small
Python one) drives them alternately, --rounds times (--skip-http: not at all). Then
key_auth.authenticate()'s latency with 1,000 keys vs --big-keys (default 1,000,000; two
databases, measured alternately; generate_series, so it takes a minute or so), then round trips
per request (benchmarks/api_auth.py for the details). Stops what it started and
drops its databases.

    .venv/bin/python -m benchmarks.compare [--keys N] [--big-keys N] [--duration S] [--rounds N]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from benchmarks.common import bench_app, migrate_and_seed, percentile, scratch_database
from fvapp.extensions import db
from fvapp.request_log import LOGGER
from fvapp.services import key_auth
from tests.support.net import RedisCommands
from tests.support.processes import gunicorn
from tests.support.tracing import PgRoundTrips, engine_of

WRK = shutil.which("wrk") or ("/usr/bin/wrk" if os.path.exists("/usr/bin/wrk") else None)
BULK = """
INSERT INTO api_keys (id, workspace_id, created_by_id, name, prefix, key_hash, created_at)
SELECT gen_random_uuid(), :workspace, :user, 'bulk', 'fv_bulk', encode(sha256(
  convert_to(:salt || g::text, 'UTF8')), 'hex'), now()
FROM generate_series(1, :n) AS g
"""


def load(url: str, n: int) -> tuple[str, object, object]:
    """Migrate, seed the demo, mint one key, add n bulk keys: the clear key, the app, the seed."""
    app = bench_app(url)
    seeded = migrate_and_seed(app)
    with app.app_context():
        add_keys(seeded.workspace_id, seeded.user_id, n)
    return seeded.clear, app, seeded


def add_keys(workspace_id, user_id, n: int) -> None:
    if n > 0:
        # One INSERT … SELECT generate_series (a million keys in well under a minute): no
        # statement timeout for it, and no per-row foreign-key trigger (the references are the
        # seeded workspace and user; a throwaway database, loaded as its superuser).
        db.session.execute(sa.text("SET LOCAL statement_timeout = 0"))
        db.session.execute(sa.text("SET LOCAL session_replication_role = replica"))
        # …nor the client-side reply deadline (fvapp/db_setup.py: statement_timeout + 1 s), which
        # a million rows outlast; given back to the connection afterwards.
        raw = db.session.connection().connection.driver_connection
        deadline, raw.reply_timeout = raw.reply_timeout, None
        try:
            db.session.execute(sa.text(BULK), {"workspace": workspace_id, "user": user_id,
                                               "salt": uuid.uuid4().hex, "n": n})
            db.session.commit()
        finally:
            raw.reply_timeout = deadline
    db.session.execute(sa.text("ANALYZE api_keys"))
    db.session.commit()


def drive(url: str, key: str, seconds: float) -> tuple[float, float, float]:
    """req/s, p50 ms, p99 ms of GET /api/v1/me with the key."""
    header = f"Authorization: Bearer {key}"
    if WRK:
        out = subprocess.run(  # noqa: S603 (our own command line)
            [WRK, "-t2", "-c16", f"-d{int(seconds)}s", "--latency", "-H", header,
             url + "/api/v1/me"], capture_output=True, text=True, check=True).stdout
        if re.search(r"Non-2xx", out):
            raise RuntimeError("non-2xx answers:\n" + out)
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        return rate, _wrk_ms(out, "50%"), _wrk_ms(out, "99%")
    return _python_load(url, key, seconds)


def _wrk_ms(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _python_load(url: str, key: str, seconds: float):
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    def worker():
        session = requests.Session()
        while time.monotonic() < stop:
            start = time.perf_counter()
            response = session.get(url + "/api/v1/me", headers={"Authorization": f"Bearer {key}"})
            latencies.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / seconds, percentile(latencies, 0.5), percentile(latencies, 0.99)


def authenticate_latency(app, clear: str, n: int = 3000) -> list[float]:
    """µs of key_auth.authenticate alone, n calls (the SELECT; last_used_at is fresh)."""
    header = f"Bearer {clear}"
    samples = []
    with app.app_context():
        for i in range(n + 100):
            with app.test_request_context():
                start = time.perf_counter()
                key_auth.authenticate(header, timedelta(minutes=5))
                if i >= 100:
                    samples.append((time.perf_counter() - start) * 1e6)
                db.session.remove()
    return samples


# The same gunicorn settings for both apps: 2 sync workers (the default worker class).
WORKER_CLASS = ("--worker-class", "sync")


def http_comparison(args, drops: list) -> None:
    """Both apps under gunicorn, driven alternately: the table of req/s, p50, p99 and ratios."""
    app_url, drop = scratch_database(args.database_url)
    drops.append(drop)
    ref_url, drop = scratch_database(args.database_url)
    drops.append(drop)
    print(f"loading {args.keys:,} keys into each database …", flush=True)
    app_key, _, _ = load(app_url, args.keys)
    ref_key, _, _ = load(ref_url, args.keys)
    results: dict[str, list] = {"reference": [], "fvapp": []}
    fv_env = {"FVAPP_ENV": "testing", "SECRET_KEY": "bench-" + uuid.uuid4().hex,
              "DATABASE_URL": app_url, "REDIS_URL": args.redis_url,
              "RATELIMIT_KEY_PREFIX": f"fvapp-bench-{uuid.uuid4().hex[:8]}",
              "API_RATE_LIMIT": "100000000 per minute"}
    ref_env = {"REFERENCE_DATABASE_URL": make_url(ref_url).set(
        drivername="postgresql").render_as_string(hide_password=False)}
    with tempfile.TemporaryDirectory() as ref_dir, tempfile.TemporaryDirectory() as fv_dir:
        with gunicorn("benchmarks.reference_app:app", ref_env, Path(ref_dir), *WORKER_CLASS,
                      ready_path="/api/v1/me") as ref, \
                gunicorn("wsgi:app", fv_env, Path(fv_dir), *WORKER_CLASS,
                         ready_path="/api/v1/me") as fv:
            for url, key in ((ref, ref_key), (fv, app_key)):
                drive(url, key, 2)  # warm up
            for _ in range(args.rounds):
                for name, url, key in (("reference", ref, ref_key), ("fvapp", fv, app_key)):
                    results[name].append(drive(url, key, args.duration))
        fallbacks = (Path(fv_dir) / "gunicorn.log").read_text().count(
            "rate-limit storage unavailable")
    print(f"\nGET /api/v1/me, gunicorn --workers 2 {' '.join(WORKER_CLASS)} (both), "
          f"{args.keys:,} keys, {'wrk -t2 -c16' if WRK else 'python load, 16 threads'}, "
          f"{args.rounds}×{args.duration:g} s each, alternating\n")
    print("| run | req/s | p50 ms | p99 ms |\n|---|---|---|---|")
    best = {}
    for name, rows in results.items():
        rate = statistics.median(r[0] for r in rows)
        p50 = statistics.median(r[1] for r in rows)
        p99 = statistics.median(r[2] for r in rows)
        best[name] = (rate, p50, p99)
        print(f"| {name} | {rate:,.0f} | {p50:.1f} | {p99:.1f} |")
    (rr, r50, r99), (fr, f50, f99) = best["reference"], best["fvapp"]
    print(f"| **ratio fvapp/reference** | **{fr / rr:.2f}×** (target ≥ 0.7) | "
          f"{f50 / r50:.2f}× | **{f99 / r99:.2f}×** (target ≤ 2) |")
    if fallbacks:  # Redis stalled past its 0.2 s timeout: fvapp counted in memory a while
        print(f"WARNING: fvapp's limiter fell back to memory {fallbacks} time(s) during the run "
              "(Redis too slow to answer: an overloaded machine); these figures flatter fvapp, "
              "run again on a quieter machine.")


def redis_round_trips(redis_url: str, database_url: str, key: str, requests: int = 500) -> None:
    """Redis commands per authenticated request, counted on the wire (a proxy in front of Redis),
    over `requests` requests with one key, the limit raised as in the HTTP run."""
    target = make_url(redis_url)
    wire = RedisCommands(target.host or "127.0.0.1", target.port or 6379).start()
    try:
        app = bench_app(database_url, wire.url())
        client = app.test_client()
        header = {"Authorization": f"Bearer {key}"}
        client.get("/api/v1/me", headers=header)  # connects; loads the script
        with wire._lock:
            wire.commands.clear()
        for _ in range(requests):
            client.get("/api/v1/me", headers=header)
        with wire._lock:
            sent = Counter(wire.commands)
        print(f"Redis round trips per authenticated request: {sum(sent.values()) / requests:g} "
              f"({dict(sent)} over {requests} requests)")
        engine_of(app).dispose()
    finally:
        wire.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--big-keys", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-http", action="store_true",
                        help="only the 1k-vs-big-keys ratio and the round trips")
    args = parser.parse_args()
    if args.big_keys <= 1000:
        parser.error("--big-keys must be more than 1,000 (it is compared with a 1,000-key table)")

    drops = []
    try:
        if not args.skip_http:
            http_comparison(args, drops)

        print(f"\nkey_auth.authenticate() median, 1,000 vs {args.big_keys:,} keys "
              "(two databases, measured alternately):", flush=True)
        apps = {}
        for n in (1000, args.big_keys):
            url, drop = scratch_database(args.database_url)
            drops.append(drop)
            clear, app, _ = load(url, n - 1)  # the benchmark key, and n - 1 more
            apps[n] = (clear, app)
        samples: dict[int, list[float]] = {n: [] for n in apps}
        for _ in range(6):
            for n, (clear, app) in apps.items():
                samples[n] += authenticate_latency(app, clear, 500)
        small, large = (statistics.median(samples[n]) for n in apps)
        print(f"  1,000 keys: {small:.0f} µs; {args.big_keys:,} keys: {large:.0f} µs; "
              f"ratio {large / small:.2f}× (target ≤ 1.3)")
        key, app = apps[args.big_keys]

        engine = engine_of(app)
        logging.getLogger(LOGGER).disabled = True  # no request log lines in this output
        trips = PgRoundTrips(engine)
        engine.dispose()
        client = app.test_client()
        for _ in range(20):
            client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        before = trips.counts()
        for _ in range(100):
            client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        found: Counter = trips.counts() - before
        print(f"\nPostgreSQL round trips per authenticated request: {sum(found.values()) / 100:g} "
              f"({dict(found)})")
        trips.close()
        engine.dispose()
        redis_round_trips(args.redis_url, app.config["SQLALCHEMY_DATABASE_URI"], key)
    finally:
        for drop in reversed(drops):
            drop()


if __name__ == "__main__":
    main()
