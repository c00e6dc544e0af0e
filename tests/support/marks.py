"""Marks shared by the test modules that start servers of their own (gunicorn, nginx) on the real
PostgreSQL and Redis: CI sets both URLs, so these run there; a local run without them skips."""

from __future__ import annotations

import os

import pytest

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")

ON_POSTGRESQL_AND_REDIS = [
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_URL and REDIS_URL),
                       reason="needs TEST_DATABASE_URL and TEST_REDIS_URL (CI sets both)"),
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


def on_postgresql(test):
    """Run `test` on PostgreSQL only: CI sets TEST_DATABASE_URL; a local run without it skips."""
    test = pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (CI sets it)")(test)
    return pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)(test)
