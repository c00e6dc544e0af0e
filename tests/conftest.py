"""Fixtures: every test runs on SQLite, and again on PostgreSQL when TEST_DATABASE_URL is set.

Each backend gets a database of its own for the session, built by the Alembic migrations
(so `db upgrade` from empty is exercised on both). Tables are emptied after every test.

No app context is pushed for a whole test (flaskr's fixtures are the model): each request a test
client sends pushes its own, with a fresh `g` and db.session, as on a real server. A test that
calls services or db.session directly does it inside `with app.app_context():`, or asks for the
`app_context` fixture when it sends no request through a test client. The client refuses a
request while the test holds a context, which would share that context's `g` and session.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from flask import has_app_context
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from fvapp import create_app
from fvapp.cli import seed_demo
from fvapp.extensions import db
from tests.support.browser import Browser, Demo
from tests.support.tracing import trace_connections

# Every PostgreSQL connection is traced by libpq from its start, so that sql_statements() and
# PgRoundTrips count what goes on the wire, by any path (tests/support/tracing.py).
trace_connections()

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
TABLES = ["audit_events", "key_leak_alerts", "key_usage_daily", "api_keys", "initiatives",
          "memberships", "workspaces", "users"]


def _create_pg_database() -> str:
    base = make_url(PG_URL)
    name = f"fvapp_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(url: str) -> None:
    target = make_url(url)
    admin = sa.create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    admin.dispose()


class ContextFreeClient(FlaskClient):
    """A test client that sends a request only when the test holds no app context: Flask would
    run the request inside the test's context, sharing its `g` and db.session."""

    def open(self, *args, **kwargs):
        if has_app_context():
            raise RuntimeError("a request sent inside the test's app context would share its g and "
                               "db.session: leave the `with app.app_context():` block first")
        return super().open(*args, **kwargs)


def make_config(database_url: str, **extra) -> dict:
    config = {
        "ENV_MODE": "testing",
        "SECRET_KEY": "test-secret-" + "x" * 20,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "BCRYPT_ROUNDS": 4,
        "REDIS_URL": None,
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_STORAGE_OPTIONS": {},
        "LOGIN_LIMIT_PER_EMAIL": "1000 per minute",
        "LOGIN_LIMIT_PER_IP": "1000 per minute",
        "LOGIN_LIMIT_PER_DEVICE": "1000 per minute",
        "API_AUTH_FAILURE_LIMIT": "1000 per minute",
        "API_RATE_LIMIT": "10000 per minute",
        "SERVER_NAME": None,
    }
    config.update(extra)
    return config


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    """A migrated, empty database for this backend and session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    else:
        url = _create_pg_database()
    app = create_app(make_config(url))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    yield url
    if request.param == "postgresql":
        _drop_pg_database(url)


@pytest.fixture
def backend(database_url) -> str:
    return make_url(database_url).get_backend_name()


@pytest.fixture
def app_factory(database_url):
    """Build an app on the session's database; extra config overrides the test defaults."""
    apps = []

    def factory(**extra):
        application = create_app(make_config(database_url, **extra))
        application.test_client_class = ContextFreeClient
        apps.append(application)
        return application

    yield factory
    for application in apps:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(app_factory):
    application = app_factory()
    yield application
    with application.app_context(), db.engine.begin() as conn:
        for table in TABLES:
            conn.exec_driver_sql(f"DELETE FROM {table}")


@pytest.fixture
def app_context(app):
    """An app context for the whole test, for tests that call services and db.session directly
    and send no request through a test client (a live server's thread has contexts of its own)."""
    with app.app_context() as context:
        yield context


@pytest.fixture
def demo(app):
    """The demo table of SPEC §6."""
    with app.app_context():
        seed_demo()
    return Demo(app)


@pytest.fixture
def browser(app):
    return Browser(app.test_client())


@pytest.fixture
def browser_factory(app):
    return lambda: Browser(app.test_client())


@pytest.fixture
def runner(app):
    return app.test_cli_runner()

