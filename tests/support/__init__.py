"""Tools the test suite and benchmarks/ share, imported by name (run from the repository root):

- tests.support.api: mint_key, bearer, Api, assert_envelope (a client for /api/v1 and its envelope)
- tests.support.browser: Browser (a test client that carries the CSRF token), WebUser (the same
  over HTTP, for a running server), Demo (SPEC §6's table)
- tests.support.tracing: sql_statements (SQL a block runs), PgRoundTrips (libpq round trips)
- tests.support.net: TcpProxy (a forwarder to take PostgreSQL or Redis away), StallingProxy (one
  that stops forwarding bytes, no reset, and resumes), SilentServer, free_port
- tests.support.processes: Gunicorn (one instance: start, HUP, TERM, its workers), gunicorn (a
  server process on a free port, stopped on the way out), fvapp_server (fvapp under gunicorn with
  two workers, its access log's worker pids)
- tests.support.cluster: cluster (nginx in front of several Gunicorn instances), cluster_env
- tests.support.marks: ON_POSTGRESQL_AND_REDIS (the pytestmark of modules that start servers)
- tests.support.mcp: live (a server thread for a real HTTP client), post_initialize (MCP's first call)
- tests.support.leaks: Signer (a GitHub-like ECDSA P-256 signer), report, post (a leak report)
- tests.support.bodies: MIB, INITIALIZE, padded (a body of an exact size), signed (its headers)
"""
