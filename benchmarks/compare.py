"""`make bench`: every API operation of fvapp side by side with benchmarks/reference_app.py's
implementation of the same operation, then the round trips per request and the key check's
cost with 1,000 vs --big-keys keys. docs/performance.md explains the method.

    .venv/bin/python -m benchmarks.compare [--keys N] [--big-keys N] [--duration S] [--rounds N]
        [--only OP[,OP]] [--app-dir PATH] [--skip-http]

HTTP: fvapp and the reference each in a fresh PostgreSQL database migrated by the checkout under
test, holding --keys keys (INSERT … SELECT generate_series), a list workspace (the key of every
read and PATCH; 300 active initiatives) and a writes workspace (the key of POST: its rows never
reach the list measured). Both under gunicorn with the same settings (gunicorn.conf.py, 2 sync
workers), fvapp with its Redis rate limiter on and the limit raised so nothing is refused. wrk
-t2 -c16 --latency drives them alternately, operation by operation, --rounds times; any non-2xx
answer stops the run. PATCH renames the same 16 initiatives (a new title each request, so every
request really writes). MCP `tools/call get_initiative` is compared with fvapp's own REST GET of
the same initiative on the same server. --app-dir runs the fvapp of another checkout (its cwd
and PYTHONPATH; its migrations for both databases) for a before/after table.

Round trips: the same operations again, one request at a time, through TCP proxies in front of
PostgreSQL and Redis that count what crosses the wire (benchmarks/wire.py). Then
key_auth.authenticate()'s latency with 1,000 keys vs --big-keys (two databases, alternately).
Stops what it started and drops its databases.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import requests
from sqlalchemy.engine import make_url

from benchmarks import wire
from benchmarks.common import scratch_database
from fvapp.services import keys

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "gunicorn.conf.py"
WRK = shutil.which("wrk") or ("/usr/bin/wrk" if os.path.exists("/usr/bin/wrk") else None)
GUNICORN = ("--workers", "2", "--worker-class", "sync")  # the same for both apps
LIST_SIZE, PATCHED = 300, 16
BULK = """
INSERT INTO api_keys (id, workspace_id, created_by_id, name, prefix, key_hash, created_at)
SELECT gen_random_uuid(), %(workspace)s, %(user)s, 'bulk', 'fv_bulk', encode(sha256(
  convert_to(%(salt)s || g::text, 'UTF8')), 'hex'), now()
FROM generate_series(1, %(n)s) AS g
"""


@dataclass(frozen=True)
class Operation:
    name: str  # for --only
    label: str
    # statements the operation may send besides the key read (SELECT/INSERT/UPDATE: not BEGIN,
    # COMMIT, a ping); the round-trip table flags more
    own_statements: int


OPERATIONS = [
    Operation("me", "GET /api/v1/me", 0),
    Operation("list", "GET /api/v1/initiatives?limit=50", 1),
    Operation("get", "GET /api/v1/initiatives/{id}", 1),
    Operation("create", "POST /api/v1/initiatives", 1),
    Operation("update", "PATCH /api/v1/initiatives/{id}", 1),
    Operation("mcp", "MCP tools/call get_initiative", 1),
]
BY_NAME = {op.name: op for op in OPERATIONS}


# --- the data ------------------------------------------------------------------------------

@dataclass
class Dataset:
    url: str  # SQLAlchemy URL (postgresql+psycopg://…)
    list_key: str  # a key of the list workspace
    write_key: str  # a key of the writes workspace (POST only)
    item: str  # the initiative GET and MCP read
    patched: list[str]  # the initiatives PATCH renames

    @property
    def libpq(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)


def app_env(app_dir: Path, extra: dict) -> dict:
    """os.environ with the checkout at app_dir first on the path (and nothing else of ours)."""
    return {**os.environ, "PYTHONPATH": str(app_dir), **extra}


def reference_env(libpq_url: str) -> dict:
    """The reference's environment. gunicorn.conf.py checks fvapp's settings before any worker
    boots, whatever it serves: a testing mode and a secret satisfy it."""
    return app_env(ROOT, {"REFERENCE_DATABASE_URL": libpq_url, "FVAPP_ENV": "testing",
                          "SECRET_KEY": "bench-" + uuid.uuid4().hex})


def fvapp_env(app_dir: Path, database_url: str, redis_url: str) -> dict:
    return app_env(app_dir, {
        "FVAPP_ENV": "testing", "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "RATELIMIT_KEY_PREFIX": f"fvapp-bench-{uuid.uuid4().hex[:8]}",
        "API_RATE_LIMIT": "100000000 per minute"})


def migrate(app_dir: Path, url: str, redis_url: str) -> None:
    """`flask db upgrade` of the checkout at app_dir: its schema, its indexes."""
    subprocess.run(  # noqa: S603 (our own command line)
        [sys.executable, "-m", "flask", "--app", "wsgi:app", "db", "upgrade"], cwd=app_dir,
        env=fvapp_env(app_dir, url, redis_url), check=True, capture_output=True)


def prepare(base_url: str, redis_url: str, app_dir: Path, n_keys: int, drops: list) -> Dataset:
    """A fresh database, migrated, with a user owning two workspaces on the pro plan, a key in
    each, n_keys keys in all, and the initiatives the operations read and rename."""
    url, drop = scratch_database(base_url)
    drops.append(drop)
    migrate(app_dir, url, redis_url)
    user, lists, writes = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    clear = {ws: keys.generate_key() for ws in (lists, writes)}
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id, email, name, password_hash, session_generation,"
                     " created_at) VALUES (%s, 'bench@bench.test', 'Bench User', %s, 0, now())",
                     (user, "x" * 60))
        for ws, name in ((lists, "Bench Reads"), (writes, "Bench Writes")):
            conn.execute("INSERT INTO workspaces (id, name, plan, created_at)"
                         " VALUES (%s, %s, 'pro', now())", (ws, name))
            conn.execute("INSERT INTO memberships (id, user_id, workspace_id, role, created_at)"
                         " VALUES (%s, %s, %s, 'owner', now())", (uuid.uuid4(), user, ws))
            conn.execute("INSERT INTO api_keys (id, workspace_id, created_by_id, name, prefix,"
                         " key_hash, created_at) VALUES (%s, %s, %s, 'benchmark', %s, %s, now())",
                         (uuid.uuid4(), ws, user, keys.display_prefix(clear[ws]),
                          keys.hash_key(clear[ws])))
        # Initiatives a few milliseconds apart, newest first in the list; some archived.
        conn.execute(
            "INSERT INTO initiatives (id, workspace_id, created_by_id, title, description,"
            " archived_at, created_at, updated_at) SELECT gen_random_uuid(), %s, %s,"
            " 'Initiative ' || g, 'What initiative ' || g || ' is for, in a sentence or two.',"
            " CASE WHEN g %% 10 = 0 THEN now() END, now() - g * interval '1 minute',"
            " now() - g * interval '1 minute' FROM generate_series(1, %s) AS g",
            (lists, user, LIST_SIZE * 10 // 9 + 1))
        ids = [str(row[0]) for row in conn.execute(
            "SELECT id FROM initiatives WHERE archived_at IS NULL ORDER BY created_at DESC")]
        if n_keys > 2:
            # No statement timeout, no per-row foreign-key trigger (a throwaway database,
            # loaded as its superuser; the references are the rows above).
            with conn.transaction():
                conn.execute("SET LOCAL statement_timeout = 0")
                conn.execute("SET LOCAL session_replication_role = replica")
                conn.execute(BULK, {"workspace": lists, "user": user, "salt": uuid.uuid4().hex,
                                    "n": n_keys - 2})
        conn.execute("ANALYZE")
    # GET reads one from the middle of the list; PATCH renames the oldest, past the page listed.
    return Dataset(url, clear[lists], clear[writes], ids[LIST_SIZE // 2], ids[-PATCHED:])


# --- the servers ---------------------------------------------------------------------------

@contextmanager
def serve(target: str, cwd: Path, env: dict, workdir: Path, name: str, *args: str):
    """gunicorn -c gunicorn.conf.py (the one of the checkout it serves, `cwd`: with --app-dir,
    that checkout's hooks match its code) on a free port of 127.0.0.1; yields (base URL, log
    path)."""
    own = cwd / "gunicorn.conf.py"
    log = workdir / f"{name}.log"
    with log.open("ab") as stderr:
        process = subprocess.Popen(  # noqa: S603 (our own command line)
            [sys.executable, "-m", "gunicorn", "--config", str(own if own.exists() else CONF), *GUNICORN,
             "--bind", "127.0.0.1:0", *args, target],
            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        workers = int(dict(zip(GUNICORN[::2], GUNICORN[1::2], strict=True))["--workers"])
        for arg, value in zip(args, args[1:], strict=False):
            if arg == "--workers":
                workers = int(value)
        deadline = time.monotonic() + 90
        while True:
            text = log.read_text(errors="replace")
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
            if found and text.count("worker ready") >= workers:
                url = f"http://127.0.0.1:{found.group(1)}"
                try:
                    requests.get(url + "/api/v1/me", timeout=2)
                    break
                except requests.RequestException:
                    pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn {name} did not start:\n{text[-4000:]}")
            time.sleep(0.2)
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the requests --------------------------------------------------------------------------

def mcp_headers(url: str, key: str) -> dict:
    """The headers an MCP client sends on a tools/call in stateless JSON mode, with the protocol
    version the server agreed to in `initialize`."""
    from mcp.types import LATEST_PROTOCOL_VERSION

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    answer = requests.post(url + "/api/mcp", headers=headers, timeout=10, json={
        "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": LATEST_PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": "fvapp-bench", "version": "1"}}})
    answer.raise_for_status()
    return {**headers, "MCP-Protocol-Version": answer.json()["result"]["protocolVersion"]}


def check_mcp(url: str, data: Dataset, mcp: dict) -> None:
    """The tool call answers the initiative (a tool error would be a 200 too)."""
    method, path, headers, body = requests_of("mcp", data, mcp)[0]
    result = requests.post(url + path, headers=headers, data=body, timeout=10).json()["result"]
    if result.get("isError") or result["structuredContent"]["id"] != data.item:
        raise SystemExit(f"MCP tools/call get_initiative did not answer the initiative: {result}")


def requests_of(op: str, data: Dataset, mcp: dict | None) -> list[tuple[str, str, dict, str | None]]:
    """(method, path, headers, body) of the op's requests, in the order they are sent (cycled)."""
    read = {"Authorization": f"Bearer {data.list_key}"}
    sent = {**read, "Content-Type": "application/json"}
    if op == "me":
        return [("GET", "/api/v1/me", read, None)]
    if op == "list":
        return [("GET", "/api/v1/initiatives?limit=50", read, None)]
    if op == "get":
        return [("GET", f"/api/v1/initiatives/{data.item}", read, None)]
    if op == "create":
        return [("POST", "/api/v1/initiatives",
                 {"Authorization": f"Bearer {data.write_key}", "Content-Type": "application/json"},
                 json.dumps({"title": "Bench initiative", "description": "Made by make bench."}))]
    if op == "update":
        return [("PATCH", f"/api/v1/initiatives/{item}", sent, None) for item in data.patched]
    if op == "mcp":
        return [("POST", "/api/mcp", mcp, json.dumps({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "get_initiative", "arguments": {"id": data.item}}}))]
    raise ValueError(op)


def lua(op: str, data: Dataset, mcp: dict | None) -> str:
    """A wrk script sending the op's requests. PATCH: each thread renames its own half of the
    initiatives in turn, a title of the same length that no request has sent before."""
    sent = requests_of(op, data, mcp)
    method, path, headers, body = sent[0]
    lines = [f"wrk.method = {json.dumps(method)}", f"wrk.path = {json.dumps(path)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    if op != "update":
        if body is not None:
            lines.append(f"wrk.body = {json.dumps(body)}")
        return "\n".join(lines) + "\n"
    paths = ", ".join(json.dumps(p) for _, p, _, _ in sent)
    return "\n".join(lines) + f"""
local paths = {{{paths}}}
local half = #paths / 2
local next_id = 0
setup = function(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end
local n = 0
request = function()
  n = n + 1
  local title = string.format('{{"title":"Bench title %d-%09d"}}', tid, n)
  return wrk.format(nil, paths[tid * half + (n % half) + 1], nil, title)
end
"""


@dataclass
class Run:
    rate: float
    p50: float
    p99: float


def drive(url: str, script: Path, seconds: float) -> Run:
    """wrk -t2 -c16 --latency: req/s, p50 ms, p99 ms; any non-2xx answer or timeout stops all."""
    out = subprocess.run(  # noqa: S603 (our own command line)
        [WRK, "-t2", "-c16", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    timeouts = re.search(r"Socket errors:.*timeout (\d+)", out)
    if bad or (timeouts and int(timeouts.group(1))):
        raise SystemExit(f"{script.stem} on {url}: not every answer was a 2xx:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return Run(rate, _wrk_ms(out, "50%"), _wrk_ms(out, "99%"))


def _wrk_ms(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def median_run(runs: list[Run]) -> Run:
    return Run(*(statistics.median(getattr(r, f) for r in runs) for f in ("rate", "p50", "p99")))


# --- the parts of the report ---------------------------------------------------------------

def http_comparison(args, ops: list[str], drops: list) -> None:
    print(f"loading {args.keys:,} keys into each of two databases …", flush=True)
    fv_data = prepare(args.database_url, args.redis_url, args.app_dir, args.keys, drops)
    ref_data = prepare(args.database_url, args.redis_url, args.app_dir, args.keys, drops)
    ref_env = reference_env(ref_data.libpq)
    fv_env = fvapp_env(args.app_dir, fv_data.url, args.redis_url)
    results: dict[tuple[str, str], list[Run]] = {}
    with tempfile.TemporaryDirectory() as workdir, \
            serve("benchmarks.reference_app:app", ROOT, ref_env, Path(workdir), "reference") as (ref, _), \
            serve("wsgi:app", args.app_dir, fv_env, Path(workdir), "fvapp") as (fv, fv_log):
        mcp = mcp_headers(fv, fv_data.list_key) if "mcp" in ops else None
        if mcp:
            check_mcp(fv, fv_data, mcp)
        # (op, who, URL, script): the reference, then fvapp, then MCP right after fvapp's GET
        plan = []
        for op in ops:
            if op == "mcp":
                continue
            for who, url, data in (("reference", ref, ref_data), ("fvapp", fv, fv_data)):
                script = Path(workdir) / f"{op}-{who}.lua"
                script.write_text(lua(op, data, None))
                plan.append((op, who, url, script))
            if op == "get" and "mcp" in ops:
                script = Path(workdir) / "mcp-fvapp.lua"
                script.write_text(lua("mcp", fv_data, mcp))
                plan.append(("mcp", "fvapp", fv, script))
        for _, _, url, script in plan:
            drive(url, script, 1)  # warm up: connections, prepared statements, code paths
        for _ in range(args.rounds):
            for op, who, url, script in plan:
                results.setdefault((op, who), []).append(drive(url, script, args.duration))
        fallbacks = fv_log.read_text(errors="replace").count("rate-limit storage unavailable")

    print(f"\nfvapp ({args.app_dir}) vs benchmarks/reference_app.py: gunicorn "
          f"{' '.join(GUNICORN)} (both), PostgreSQL with {args.keys:,} keys, Redis, "
          f"wrk -t2 -c16, {args.rounds}×{args.duration:g} s each, alternating; medians of the "
          "rounds. MCP: against fvapp's own REST GET of the same initiative.\n")
    print("| operation | fvapp req/s | reference req/s | req/s ratio | p50 ratio | p99 ratio | target |")
    print("|---|---|---|---|---|---|---|")
    for op in ops:
        label = BY_NAME[op].label
        if op == "mcp":
            mine, theirs = median_run(results[("mcp", "fvapp")]), median_run(results[("get", "fvapp")])
            label += " vs REST GET"
            target = "p50 ≤ 1.5×"
        else:
            mine, theirs = median_run(results[(op, "fvapp")]), median_run(results[(op, "reference")])
            target = f"≥ {0.8 if op == 'me' else 0.7}×, p99 ≤ 2×"
        print(f"| {label} | {mine.rate:,.0f} | {theirs.rate:,.0f} | **{mine.rate / theirs.rate:.2f}×** "
              f"| {mine.p50 / theirs.p50:.2f}× | {mine.p99 / theirs.p99:.2f}× | {target} |")
    if fallbacks:  # Redis stalled past its timeout: fvapp counted in memory a while
        print(f"WARNING: fvapp's limiter fell back to memory {fallbacks} time(s) during the run "
              "(Redis too slow to answer: an overloaded machine); these figures flatter fvapp, "
              "run again on a quieter machine.")


def round_trips(args, ops: list[str], drops: list, count: int = 50) -> bool:
    """Per request, one at a time, through counting proxies: fvapp's PostgreSQL round trips (by
    what started them) and Redis commands, and the reference's. False if fvapp sends more
    statements than the key read and the operation's own, or more than 1 Redis command."""
    pg, rd = make_url(args.database_url), make_url(args.redis_url)
    fv_data = prepare(args.database_url, args.redis_url, args.app_dir, 1000, drops)
    ref_data = prepare(args.database_url, args.redis_url, args.app_dir, 1000, drops)
    pg_wire = wire.WireCounter(pg.host or "127.0.0.1", pg.port or 5432, wire.postgres)
    redis_wire = wire.WireCounter(rd.host or "127.0.0.1", rd.port or 6379, wire.redis)

    def via_proxy(url: str, driver: str) -> str:
        return (make_url(url).set(drivername=driver, host="127.0.0.1", port=pg_wire.port)
                .update_query_dict({"sslmode": "disable", "gssencmode": "disable"})
                .render_as_string(hide_password=False))

    fv_env = fvapp_env(args.app_dir, via_proxy(fv_data.url, "postgresql+psycopg"),
                       make_url(args.redis_url).set(host="127.0.0.1", port=redis_wire.port)
                       .render_as_string(hide_password=False))
    ref_env = reference_env(via_proxy(ref_data.url, "postgresql"))
    found: dict[tuple[str, str], tuple[Counter, Counter]] = {}
    try:
        with tempfile.TemporaryDirectory() as workdir, \
                serve("benchmarks.reference_app:app", ROOT, ref_env, Path(workdir), "reference",
                      "--workers", "1") as (ref, _), \
                serve("wsgi:app", args.app_dir, fv_env, Path(workdir), "fvapp",
                      "--workers", "1") as (fv, _):
            mcp = mcp_headers(fv, fv_data.list_key) if "mcp" in ops else None
            session = requests.Session()
            for op in ops:
                for who, url, data in (("reference", ref, ref_data), ("fvapp", fv, fv_data)):
                    if op == "mcp" and who == "reference":
                        continue
                    sent = requests_of(op, data, mcp)

                    def send(i, url=url, sent=sent, what=f"{op} on {who}"):
                        method, path, headers, body = sent[i % len(sent)]
                        if method == "PATCH":
                            body = json.dumps({"title": f"Counted title {i:06d}"})
                        answer = session.request(method, url + path, headers=headers, data=body,
                                                 timeout=10)
                        if not 200 <= answer.status_code < 300:
                            raise SystemExit(f"{what}: {answer.status_code} {answer.text}")

                    for i in range(10):
                        send(i)
                    before = pg_wire.counts(), redis_wire.counts()
                    for i in range(10, 10 + count):
                        send(i)
                    found[(op, who)] = (pg_wire.counts() - before[0], redis_wire.counts() - before[1])
    finally:
        pg_wire.close()
        redis_wire.close()

    print(f"\nRound trips per request, counted on the wire (PostgreSQL protocol, Redis RESP), "
          f"{count} requests one at a time after 10 to warm up; budget: 1 key read + the "
          "operation's own statements, ≤ 1 Redis command.\n")
    print("| operation | fvapp PostgreSQL | fvapp statements (budget) | fvapp Redis | reference PostgreSQL |")
    print("|---|---|---|---|---|")
    within = True
    for op in ops:
        pg_found, redis_found = found[(op, "fvapp")]
        statements = sum(n for word, n in pg_found.items()
                         if word not in ("BEGIN", "COMMIT", "ROLLBACK", "ping", "sync")) / count
        budget = 1 + BY_NAME[op].own_statements
        redis_per = sum(redis_found.values()) / count
        over = statements > budget or redis_per > 1
        within &= not over
        ref_pg = found.get((op, "reference"), (Counter(), Counter()))[0]
        print(f"| {BY_NAME[op].label} | {_per(pg_found, count)} | {statements:g} ({budget})"
              f"{' **over**' if over else ''} | {_per(redis_found, count)} | "
              f"{_per(ref_pg, count) if (op, 'reference') in found else '—'} |")
    return within


def _per(found: Counter, count: int) -> str:
    total = sum(found.values()) / count
    parts = ", ".join(f"{word} {n / count:g}" for word, n in sorted(found.items()))
    return f"{total:g}" + (f" ({parts})" if parts else "")


def key_check_scaling(args, drops: list) -> None:
    """key_auth.authenticate()'s median with 1,000 keys vs --big-keys (in-process, this
    checkout's fvapp; two databases, measured alternately)."""
    from benchmarks.common import bench_app
    from fvapp.extensions import db
    from fvapp.services import key_auth

    print(f"\nkey_auth.authenticate() median, 1,000 vs {args.big_keys:,} keys "
          "(two databases, measured alternately):", flush=True)
    apps = {}
    for n in (1000, args.big_keys):
        data = prepare(args.database_url, args.redis_url, ROOT, n, drops)
        apps[n] = (data.list_key, bench_app(data.url))

    def latency(app, clear: str, n: int) -> list[float]:
        header, samples = f"Bearer {clear}", []
        with app.app_context():
            for i in range(n + 100):
                with app.test_request_context():
                    start = time.perf_counter()
                    key_auth.authenticate(header, timedelta(minutes=5))
                    if i >= 100:
                        samples.append((time.perf_counter() - start) * 1e6)
                    db.session.remove()
        return samples

    samples: dict[int, list[float]] = {n: [] for n in apps}
    for _ in range(6):
        for n, (clear, app) in apps.items():
            samples[n] += latency(app, clear, 500)
    small, large = (statistics.median(samples[n]) for n in apps)
    print(f"  1,000 keys: {small:.0f} µs; {args.big_keys:,} keys: {large:.0f} µs; "
          f"ratio {large / small:.2f}× (target ≤ 1.1)")
    for _, app in apps.values():
        with app.app_context():
            db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--big-keys", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default=",".join(op.name for op in OPERATIONS),
                        help=f"operations to measure, comma-separated: {', '.join(BY_NAME)}")
    parser.add_argument("--app-dir", type=Path, default=ROOT,
                        help="the checkout whose fvapp is measured (default: this one)")
    parser.add_argument("--skip-http", action="store_true",
                        help="only the round trips and the 1k-vs-big-keys ratio")
    args = parser.parse_args()
    if args.big_keys <= 1000:
        parser.error("--big-keys must be more than 1,000 (it is compared with a 1,000-key table)")
    chosen = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = chosen - set(BY_NAME)
    if unknown or not chosen:
        parser.error(f"--only takes {', '.join(BY_NAME)}; not {', '.join(sorted(unknown)) or 'nothing'}")
    if "mcp" in chosen:
        chosen.add("get")  # MCP's figures are relative to the REST GET
    ops = [op.name for op in OPERATIONS if op.name in chosen]  # the table's order, always
    args.app_dir = args.app_dir.resolve()
    if not (args.app_dir / "wsgi.py").is_file():
        parser.error(f"--app-dir {args.app_dir}: no wsgi.py there (not an fvapp checkout)")
    if not args.skip_http and WRK is None:
        parser.error("wrk is not installed (apt-get install wrk), or use --skip-http")

    started, drops = time.monotonic(), []
    try:
        if not args.skip_http:
            http_comparison(args, ops, drops)
        within = round_trips(args, ops, drops)
        key_check_scaling(args, drops)
    finally:
        for drop in reversed(drops):
            drop()
    if not within:
        print("\nWARNING: fvapp sends more round trips than the budget for the operations marked "
              "**over** in the round-trip table.")
    print(f"\n({time.monotonic() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
