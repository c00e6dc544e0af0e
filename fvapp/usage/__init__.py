"""Requests per key per UTC day (SPEC §9), one home: counting.py counts each API answer in the
process's memory and flushes the counts in bounded batches; reading.py reads the days back for
the API Keys page (sparklines, the detail chart)."""

from .counting import COLUMNS, EXTENSION, KEPT_DAYS, aggregator, flush, init_app, today

__all__ = ["COLUMNS", "EXTENSION", "KEPT_DAYS", "aggregator", "flush", "init_app", "today"]
