"""CPU per request, in process: fvapp's GET /api/v1/me against benchmarks/reference_app.py's,
both called through their WSGI callables (no sockets to the app, no test client), one request
at a time, on the same scratch PostgreSQL database (fvapp's schema, one key) and, for fvapp,
its Redis rate limiter. Prints µs of this process's CPU per request (the best of --repeats
batches: the machine is shared, the least disturbed batch is the closest to the cost; the
system part, the sockets' system calls, varies most with the load) and Python calls per request
(cProfile, exact), and with --profile the functions that cost most.

    .venv/bin/python -m benchmarks.cpu --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        --redis-url redis://127.0.0.1:6379/0 [--requests 1000] [--repeats 8] [--profile 30]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from contextlib import redirect_stderr

from sqlalchemy.engine import make_url
from werkzeug.test import EnvironBuilder

from benchmarks.common import bench_app, in_scratch_database, migrate_and_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL server to use")
    parser.add_argument("--redis-url", help="fvapp's rate-limit storage (default: memory)")
    parser.add_argument("--requests", type=int, default=1000, help="per batch")
    parser.add_argument("--repeats", type=int, default=8, help="batches; the best one counts")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print fvapp's N costliest functions (tottime, then cumtime)")
    args = parser.parse_args()
    in_scratch_database(args.database_url, lambda url: run(url, args))


def run(url: str, args) -> None:
    app = bench_app(url, args.redis_url)
    clear = migrate_and_seed(app).clear
    os.environ["REFERENCE_DATABASE_URL"] = (
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    from benchmarks import reference_app

    environ = EnvironBuilder(path="/api/v1/me",
                             headers={"Authorization": f"Bearer {clear}"}).get_environ()
    # The request log line is written (its cost is fvapp's), to nowhere.
    with open(os.devnull, "w") as devnull, redirect_stderr(devnull):
        for name, wsgi in (("reference", reference_app.app), ("fvapp", app)):
            cpu, user, calls, stats = measure(wsgi, environ, args)
            print(f"{name}: {cpu:.0f} µs CPU per request ({user:.0f} µs user; best of "
                  f"{args.repeats} x {args.requests}), {calls:.0f} Python calls per request")
        if args.profile:
            stats.sort_stats("tottime").print_stats(args.profile)
            stats.sort_stats("cumtime").print_stats(args.profile)


def measure(wsgi, environ: dict, args):
    """(best µs of CPU per request, of user CPU alone, Python calls per request, the profile
    of one batch)."""
    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise SystemExit(f"unexpected {status}")

    def batch():
        for _ in range(args.requests):
            b"".join(wsgi(dict(environ), start_response))

    batch()  # warm up: pools, prepared statement, the first last_used_at write
    best = best_user = float("inf")
    for _ in range(args.repeats):
        started, user = time.process_time(), os.times().user
        batch()
        best = min(best, (time.process_time() - started) / args.requests * 1e6)
        best_user = min(best_user, (os.times().user - user) / args.requests * 1e6)
    profile = cProfile.Profile()
    profile.runcall(batch)
    stats = pstats.Stats(profile)
    return best, best_user, stats.total_calls / args.requests, stats


if __name__ == "__main__":
    main()
