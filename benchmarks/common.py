"""What the benchmarks share: a scratch database, fvapp built for a benchmark and seeded with a
key, and the percentiles they print."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from fvapp import create_app
from fvapp.cli import seed_demo
from fvapp.services import keys
from fvapp.services.accounts import find_user


def percentile(samples, fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def p50_p99(samples, scale: float = 1000, digits: int = 2, unit: str = "ms") -> str:
    """"p50 … ms, p99 … ms" of samples in seconds (scale and unit for another unit)."""
    return (f"p50 {percentile(samples, 0.5) * scale:.{digits}f} {unit}, "
            f"p99 {percentile(samples, 0.99) * scale:.{digits}f} {unit}")


def scratch_database(url: str | None):
    """(URL of a new empty database, a function that drops it): next to the PostgreSQL database
    named, or SQLite in a temporary directory when url is None."""
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


def in_scratch_database(url: str | None, run) -> None:
    """run(URL of a new empty database) (scratch_database), and the database dropped after."""
    scratch, drop = scratch_database(url)
    try:
        run(scratch)
    finally:
        drop()


def bench_app(url: str, redis_url: str | None = None, rate_limit: str = "100000000 per minute"):
    """fvapp on that database; rate-limit counters in Redis (or process memory), limit raised
    so that nothing is refused."""
    return create_app({
        "ENV_MODE": "testing", "SECRET_KEY": "benchmark-" + uuid.uuid4().hex,
        "SQLALCHEMY_DATABASE_URI": url, "BCRYPT_ROUNDS": 4, "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_KEY_PREFIX": f"fvapp-bench-{uuid.uuid4().hex[:8]}",
        "API_RATE_LIMIT": rate_limit,
    })


@dataclass
class Seeded:
    clear: str  # a key of Ava's in her workspace
    workspace_id: uuid.UUID
    user_id: uuid.UUID


def migrate_and_seed(app) -> Seeded:
    """Migrate the empty database, seed the demo and mint one key for Ava in Acme (the owner)."""
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        seed_demo()
        ava = find_user("ava@acme.test")
        workspace_id = next(m.workspace_id for m in ava.memberships if m.role == "owner")
        clear = keys.create_key(workspace_id, ava.id, "benchmark").clear
        return Seeded(clear, workspace_id, ava.id)
