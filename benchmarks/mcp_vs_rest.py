"""What one MCP tool call costs next to the same REST call: `tools/call get_initiative` on
POST /api/mcp against GET /api/v1/initiatives/<id>, SQL statements per request and p50/p99.

    .venv/bin/python -m benchmarks.mcp_vs_rest                    # SQLite in a temporary dir
    .venv/bin/python -m benchmarks.mcp_vs_rest --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

In-process through the WSGI interface (no sockets), one request at a time. An MCP client in
stateless mode sends the tool call as one POST (after its one-off initialize), which is what is
timed here; the difference to REST is the SDK's per-request work (JSON-RPC parsing, its
single-exchange request kernel on the process's one event loop), not the database: both run the
same service call.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import bench_app, migrate_and_seed, p50_p99, scratch_database
from fvapp.services import initiatives
from tests.support.tracing import engine_of, sql_statements, trace_connections


def measure(client, send, count, engine):
    for _ in range(100):
        send()
    latencies = []
    with sql_statements(engine) as seen:
        for _ in range(count):
            t0 = time.perf_counter()
            response = send()
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise SystemExit(f"unexpected {response.status_code}: {response.get_data()}")
    return latencies, len(seen) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server to use (default: SQLite)")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    url, drop = scratch_database(args.database_url)
    try:
        run(url, args.requests)
    finally:
        drop()


def run(url: str, count: int) -> None:
    trace_connections()  # sql_statements on PostgreSQL reads libpq's trace (both sides alike)
    app = bench_app(url)
    seeded = migrate_and_seed(app)
    clear = seeded.clear
    with app.app_context():
        item_id = str(initiatives.create_initiative(seeded.workspace_id, seeded.user_id, "Bench", None).id)
    engine = engine_of(app)

    client = app.test_client()
    auth = {"Authorization": f"Bearer {clear}"}
    mcp_headers = {**auth, "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": "2025-06-18"}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "get_initiative", "arguments": {"id": item_id}}}

    rest = measure(client, lambda: client.get(f"/api/v1/initiatives/{item_id}", headers=auth),
                   count, engine)
    mcp = measure(client, lambda: client.post("/api/mcp", json=call, headers=mcp_headers),
                  count, engine)
    print(f"backend: {engine.url.get_backend_name()}, {count} sequential requests each, "
          "in-process WSGI")
    for label, (latencies, statements) in (("REST GET /api/v1/initiatives/<id>", rest),
                                           ("MCP tools/call get_initiative", mcp)):
        print(f"{label}: {p50_p99(latencies)}, "
              f"{len(latencies) / sum(latencies):,.0f} req/s, "
              f"SQL statements/request {statements:.2f}")
    engine.dispose()


if __name__ == "__main__":
    main()
