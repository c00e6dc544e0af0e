"""CPU per request, in process: each API operation of fvapp against benchmarks/reference_app.py's
same operation (MCP tools/call get_initiative against fvapp's own REST GET of that initiative),
both called through their WSGI callables (no sockets to the app, no test client), one request
at a time, on the same scratch PostgreSQL database (fvapp's schema, the demo's initiatives, one
key) and, for fvapp, its Redis rate limiter. Prints µs of this process's CPU per request
(the best of --repeats batches: the machine is shared, the least disturbed batch is the closest to the cost; the
system part, the sockets' system calls, varies most with the load) and Python calls per request
(cProfile, exact), and with --profile the functions that cost most.

    .venv/bin/python -m benchmarks.cpu --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        --redis-url redis://127.0.0.1:6379/0 [--op me list get create update mcp] \\
        [--requests 1000] [--repeats 8] [--profile 30]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
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
    parser.add_argument("--op", nargs="+", choices=OPS, default=["me"],
                        help="the operations measured (default: me)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print fvapp's N costliest functions (tottime, then cumtime)")
    args = parser.parse_args()
    in_scratch_database(args.database_url, lambda url: run(url, args))


OPS = ("me", "list", "get", "create", "update", "mcp")


def run(url: str, args) -> None:
    app = bench_app(url, args.redis_url)
    seeded = migrate_and_seed(app)
    with app.app_context():
        from fvapp.services import initiatives

        for n in range(60):  # more than a page of 50
            item = str(initiatives.create_initiative(seeded.workspace_id, seeded.user_id,
                                                     f"Initiative {n}", "Seeded.").id)
    os.environ["REFERENCE_DATABASE_URL"] = (
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    from benchmarks import reference_app

    key = {"Authorization": f"Bearer {seeded.clear}"}
    # The request log line is written (its cost is fvapp's), to nowhere.
    with open(os.devnull, "w") as devnull, redirect_stderr(devnull):
        mcp = mcp_headers(app, key) if "mcp" in args.op else None
        for op in args.op:
            requests = requests_of(op, item, key, mcp)
            base = reference_app.app if op != "mcp" else app
            for name, wsgi, sent in (("reference" if op != "mcp" else "fvapp REST get", base,
                                      requests_of("get", item, key, mcp) if op == "mcp"
                                      else requests), ("fvapp", app, requests)):
                cpu, user, calls, stats = measure(wsgi, sent, args)
                print(f"{op:6} {name}: {cpu:.0f} µs CPU per request ({user:.0f} µs user; best "
                      f"of {args.repeats} x {args.requests}), {calls:.0f} Python calls per "
                      "request", flush=True)
            if args.profile:
                stats.sort_stats("tottime").print_stats(args.profile)
                stats.sort_stats("cumtime").print_stats(args.profile)


def mcp_headers(app, key: dict) -> dict:
    """The headers of a tools/call in stateless JSON mode, with the protocol version the server
    agreed to in `initialize`."""
    from mcp.types import LATEST_PROTOCOL_VERSION
    from werkzeug.test import Client

    headers = {**key, "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    answer = Client(app).post("/api/mcp", headers=headers, json={
        "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": LATEST_PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": "fvapp-cpu", "version": "1"}}})
    return {**headers, "MCP-Protocol-Version": answer.json["result"]["protocolVersion"]}


def requests_of(op: str, item: str, key: dict, mcp: dict | None):
    """An endless iterator of (WSGI environ, body bytes) for the op's requests. PATCH sends a
    new title each time (every request writes)."""
    sent = {**key, "Content-Type": "application/json"}

    def one(method, path, headers, body=b""):
        return EnvironBuilder(method=method, path=path, headers=headers,
                              data=body).get_environ(), body

    if op == "me":
        return itertools.repeat(one("GET", "/api/v1/me", key))
    if op == "list":
        return itertools.repeat(one("GET", "/api/v1/initiatives?limit=50", key))
    if op == "get":
        return itertools.repeat(one("GET", f"/api/v1/initiatives/{item}", key))
    if op == "create":
        return itertools.repeat(one("POST", "/api/v1/initiatives", sent, json.dumps(
            {"title": "Bench initiative", "description": "Made by the CPU benchmark."}).encode()))
    if op == "update":
        return (one("PATCH", f"/api/v1/initiatives/{item}", sent,
                    json.dumps({"title": f"Renamed {n:09d}"}).encode())
                for n in itertools.count())
    if op == "mcp":
        return itertools.repeat(one("POST", "/api/mcp", mcp, json.dumps({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "get_initiative", "arguments": {"id": item}}}).encode()))
    raise ValueError(op)


def measure(wsgi, requests, args):
    """(best µs of CPU per request, of user CPU alone, Python calls per request, the profile
    of one batch)."""
    def start_response(status, headers, exc_info=None):
        if not status.startswith(("200", "201")):
            raise SystemExit(f"unexpected {status}")

    def batch():
        for environ, body in itertools.islice(requests, args.requests):
            environ = dict(environ)
            environ["wsgi.input"] = io.BytesIO(body)
            b"".join(wsgi(environ, start_response))

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
