"""Fixtures: every test runs on SQLite, and again on PostgreSQL when TEST_DATABASE_URL is set.

Each backend gets a database of its own for the session, built by the Alembic migrations
(so `db upgrade` from empty is exercised on both). Tables are emptied after every test.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.globals import _cv_app
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from fvapp import create_app
from fvapp.cli import DEMO_PASSWORD, seed_demo
from fvapp.extensions import db

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


class FreshClient(FlaskClient):
    """Tests keep an app context pushed (to use services and db.session); Flask then reuses it
    for requests, so `g` would leak from one request into the next. Give each request a fresh
    `g`, as a real server would."""

    def open(self, *args, **kwargs):
        ctx = _cv_app.get(None)
        if ctx is not None and ctx.app is self.application:
            ctx.g = self.application.app_ctx_globals_class()
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
        application.test_client_class = FreshClient
        apps.append(application)
        return application

    yield factory
    for application in apps:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(app_factory, database_url):
    application = app_factory()
    with application.app_context():
        yield application
        db.session.rollback()
        db.session.remove()
        with db.engine.begin() as conn:
            for table in TABLES:
                conn.exec_driver_sql(f"DELETE FROM {table}")


@pytest.fixture
def demo(app):
    """The demo table of SPEC §6."""
    seed_demo()
    return Demo()


class Demo:
    password = DEMO_PASSWORD

    def user(self, email):
        from fvapp.services.accounts import find_user

        return find_user(email)

    def workspace(self, name):
        from fvapp.models import Workspace

        return db.session.scalar(sa.select(Workspace).where(Workspace.name == name))

    @property
    def acme(self):
        return self.workspace("Acme Analytics")

    @property
    def fox(self):
        return self.workspace("Fox Free")


CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CSRF_HEADER = re.compile(r'"X-CSRFToken": "([^"]+)"')


class Browser:
    """A test client that behaves like a person's browser: it carries the CSRF token."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def refresh_token(self, path="/login"):
        page = self.client.get(path)
        found = CSRF_HEADER.search(page.text) or CSRF_INPUT.search(page.text)
        self.token = found.group(1) if found else None
        return self.token

    def login(self, email, password=DEMO_PASSWORD):
        self.refresh_token("/login")
        response = self.client.post(
            "/login", data={"email": email, "password": password, "csrf_token": self.token}
        )
        if response.status_code == 303:
            self.refresh_token("/")
        return response

    def get(self, path, htmx=False, **kw):
        headers = kw.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.get(path, headers=headers, **kw)

    def post(self, path, data=None, htmx=False, csrf=True, **kw):
        headers = kw.pop("headers", {})
        data = dict(data or {})
        if htmx:
            headers["HX-Request"] = "true"
            if csrf:
                headers["X-CSRFToken"] = self.token
        elif csrf:
            data.setdefault("csrf_token", self.token)
        return self.client.post(path, data=data, headers=headers, **kw)

    def switch(self, workspace_id):
        return self.post("/workspace", {"workspace_id": str(workspace_id)})


@pytest.fixture
def browser(app):
    return Browser(app.test_client())


@pytest.fixture
def browser_factory(app):
    return lambda: Browser(app.test_client())


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
