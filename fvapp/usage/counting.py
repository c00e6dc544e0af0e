"""Requests per key per UTC day (SPEC §9), counted without a database write per request.

Each process keeps its own counts in memory: the API's after_request hook (fvapp/api/auth.py,
one call) adds 1 under a lock, nothing else. A daemon thread, started lazily in each process
(so after gunicorn forks), writes them at most once per USAGE_FLUSH_INTERVAL seconds (default
60) as additive upserts, one per KEYS_PER_BATCH keys (`INSERT … ON CONFLICT (key_id, day) DO
UPDATE SET ok = ok + excluded.ok, …`, the same on SQLite and PostgreSQL; one statement for any
usual flush), and once more when the process exits
(atexit: gunicorn's graceful worker exit runs it). Rows older than 90 days are pruned at most
once an hour per process.

What a crash can lose: a process killed without a graceful exit (SIGKILL, OOM, a worker timeout)
loses the counts it has not flushed yet, at most one flush interval of its own requests. A flush
that finds the database unavailable keeps its counts and retries with the next one.

Who a request counts for: the key it authenticated as; a request refused once its key's row was
read (429 by the key's limit, 403 for its plan, 401 for a revoked key or a removed creator)
counts for that key's id. A key nobody has counts for nobody: a flood of made-up keys adds
nothing here.

Bounded, so nothing a caller sends can stop the writes: at most MAX_PENDING (key, day) counts
wait between flushes (past it, requests are not counted, with one warning line per flush); a
flush writes KEYS_PER_BATCH keys per statement, each batch in its own transaction. A batch the
database refuses because a key was deleted meanwhile is written again without it; a batch that
fails otherwise is dropped with a log line, so it cannot block the others; while the database is
unavailable, the batch and those after it are put back for the next flush.

In tests (FVAPP_ENV=testing) no thread is started unless USAGE_FLUSH_IN_BACKGROUND=1: tests call
`flush()` themselves, so statement counts are never disturbed by a background write.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..errors import database_unavailable
from ..extensions import db
from ..models import ApiKey, KeyUsageDaily

EXTENSION = "fvapp_usage"
COLUMNS = ("ok", "denied", "limited", "errors")
KEPT_DAYS = 90
PRUNE_EVERY = 3600.0  # seconds, per process
MAX_PENDING = 100_000  # distinct (key, day) counts held between flushes: bounds the memory
KEYS_PER_BATCH = 500  # rows per upsert (6 parameters a row: under SQLite's and PostgreSQL's caps)

log = logging.getLogger(__name__)


def column_for(status: int) -> int:
    """The index in COLUMNS a response status counts under."""
    if status == 403:
        return 1
    if status == 429:
        return 2
    return 3 if status >= 400 else 0


def today() -> date:
    return datetime.now(UTC).date()


class Aggregator:
    """One per app per process. `add` is the per-request part; everything else runs per flush."""

    def __init__(self, app: Flask, interval: float, background: bool):
        self.app, self.interval, self.background = app, interval, background
        self._lock = threading.Lock()
        self._counts: dict[tuple[uuid.UUID, date], list[int]] = {}
        self._day_second, self._day = -1, today()
        self._pid: int | None = None  # the process whose flusher thread is running
        self._wake = threading.Event()
        self._last_prune: float | None = None  # monotonic time of this process's last prune
        self.dropped = 0  # counts refused because MAX_PENDING was reached (logged at flush)

    # -- per request ---------------------------------------------------------------------
    def add(self, key: uuid.UUID, status: int) -> None:
        """Count one answer for a key (its id)."""
        second = int(time.time())
        if second != self._day_second:  # the date, recomputed at most once a second
            self._day_second, self._day = second, today()
        entry = (key, self._day)
        with self._lock:
            counts = self._counts.get(entry)
            if counts is None:
                if len(self._counts) >= MAX_PENDING:
                    self.dropped += 1
                    return
                counts = self._counts[entry] = [0, 0, 0, 0]
            counts[column_for(status)] += 1
        if self.background and self._pid != os.getpid():
            self._start()

    # -- flushing ------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()  # after a fork the parent's thread does not exist here
            self._wake = threading.Event()
        threading.Thread(target=self._run, name="fvapp-usage-flush", daemon=True).start()
        atexit.register(self.flush_quietly)

    def stop(self) -> None:
        """End this process's flusher thread (tests); what is pending stays for flush()."""
        self._wake.set()
        atexit.unregister(self.flush_quietly)

    def _run(self) -> None:
        while not self._wake.wait(self.interval):
            self.flush_quietly()

    def flush_quietly(self) -> int:
        try:
            return self.flush()
        except Exception:  # the thread must live on; the counts were put back for next time
            log.exception("usage flush failed; its counts are kept for the next one")
            return 0

    def take(self) -> dict:
        with self._lock:
            counts, self._counts = self._counts, {}
            dropped, self.dropped = self.dropped, 0
        if dropped:
            log.warning("usage: %d requests not counted (more than %d keys pending)",
                        dropped, MAX_PENDING)
        return counts

    def put_back(self, counts: dict) -> None:
        with self._lock:
            for entry, values in counts.items():
                mine = self._counts.setdefault(entry, [0, 0, 0, 0])
                for i, value in enumerate(values):
                    mine[i] += value

    def flush(self) -> int:
        """Write what was counted since the last flush, batch by batch; returns the rows
        upserted. Raises the database's error, after putting back what was not written, when
        it is unavailable."""
        counts = self.take()
        prune = self._last_prune is None or time.monotonic() - self._last_prune >= PRUNE_EVERY
        if not counts and not prune:
            return 0
        # In (key, day) order: every process locks the rows it upserts in the same order, so
        # two processes flushing the same keys at once (workers exiting together) wait for
        # each other instead of deadlocking.
        items = sorted(counts.items())
        written = 0
        with self.app.app_context():
            for start in range(0, len(items), KEYS_PER_BATCH):
                batch = dict(items[start:start + KEYS_PER_BATCH])
                try:
                    written += _write_batch(batch)
                except SQLAlchemyError as exc:
                    if database_unavailable(exc):  # the next flush tries them all again
                        self.put_back(dict(items[start:]))
                        raise
                    log.exception("usage: %d keys' counts not written (the database refused "
                                  "the batch)", len(batch))
            if prune:
                self._last_prune = time.monotonic()
                with db.engine.begin() as connection:
                    connection.execute(delete(KeyUsageDaily).where(
                        KeyUsageDaily.day < today() - timedelta(days=KEPT_DAYS - 1)))
            return written


def _write_batch(counts: dict) -> int:
    """One batch, one transaction: its upsert; if a key was deleted since it was counted (its
    workspace was: the foreign key refuses the row), the ids still there are read (one SELECT)
    and the rest upserted."""
    try:
        return _upsert(counts)
    except IntegrityError:
        pass
    with db.engine.connect() as connection:
        present = set(connection.scalars(
            select(ApiKey.id).where(ApiKey.id.in_({key for key, _ in counts}))))
    return _upsert({entry: values for entry, values in counts.items() if entry[0] in present})


def _upsert(counts: dict) -> int:
    """The additive upsert of up to KEYS_PER_BATCH (key, day) counts, in one transaction."""
    if not counts:
        return 0
    items = [{"key_id": key_id, "day": day, **dict(zip(COLUMNS, values, strict=True))}
             for (key_id, day), values in counts.items()]
    with db.engine.begin() as connection:
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        statement = insert(KeyUsageDaily).values(items)
        connection.execute(statement.on_conflict_do_update(
            index_elements=["key_id", "day"],
            set_={name: getattr(KeyUsageDaily, name) + statement.excluded[name]
                  for name in COLUMNS},
        ))
    return len(items)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Aggregator(
        app, app.config["USAGE_FLUSH_INTERVAL"], app.config["USAGE_FLUSH_IN_BACKGROUND"])


def aggregator(app: Flask | None = None) -> Aggregator:
    return (app or current_app).extensions[EXTENSION]


def flush(app: Flask | None = None) -> int:
    """Write this process's pending counts now (tests; the thread does it otherwise)."""
    return aggregator(app).flush()
