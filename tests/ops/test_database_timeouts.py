"""A hung PostgreSQL never hangs a request (SPEC §10): connections that are
accepted but never answered time out (DB_CONNECT_TIMEOUT), so the API answers 503
SERVICE_UNAVAILABLE with Retry-After and pages a friendly 503, within 5 s; a statement running
past DB_STATEMENT_TIMEOUT_MS is cancelled by the server, also a 503; service resumes by itself."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import text

from fvapp.config import from_environment
from fvapp.db_setup import REPLY_TIMEOUT_ARG
from fvapp.extensions import db
from tests.support.api import Api, assert_envelope, mint_key
from tests.support.browser import Browser
from tests.support.marks import on_postgresql
from tests.support.net import SilentServer

PG_URL = os.environ.get("TEST_DATABASE_URL")


def test_postgresql_engines_get_connect_pool_and_statement_timeouts():
    config = from_environment({"FVAPP_ENV": "testing", "DATABASE_URL": "postgres://u@db/app"})
    options = config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_timeout"] == 3 and "pool_pre_ping" not in options  # idle-only ping: fvapp/db_setup.py
    assert options["connect_args"] == {
        "connect_timeout": 3, "options": "-c statement_timeout=3000 -c TimeZone=UTC",
        # a stalled open connection: client-side reply deadline, kernel timeouts (tests/ops/test_stalls.py)
        REPLY_TIMEOUT_ARG: 4.0, "tcp_user_timeout": 4000,
        "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
    custom = from_environment({"FVAPP_ENV": "testing", "DATABASE_URL": "postgres://u@db/app",
                               "DB_CONNECT_TIMEOUT": "1", "DB_STATEMENT_TIMEOUT_MS": "250",
                               "DB_POOL_TIMEOUT": "2"})["SQLALCHEMY_ENGINE_OPTIONS"]
    assert (custom["pool_timeout"], custom["connect_args"]["connect_timeout"]) == (2, 1)
    assert custom["connect_args"]["options"] == "-c statement_timeout=250 -c TimeZone=UTC"
    assert custom["connect_args"][REPLY_TIMEOUT_ARG] == 1.25


def test_a_database_that_accepts_and_never_answers_is_a_fast_503(app_factory, app, demo):
    key = mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))
    silent = SilentServer()
    try:
        hung = app_factory(
            SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://postgres@127.0.0.1:{silent.port}/test",
            DB_CONNECT_TIMEOUT=1)
        api = Api(hung.test_client(), key)
        started = time.monotonic()
        response = api.get("/me")
        took = time.monotonic() - started
        assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
        assert response.headers["Retry-After"]
        assert took < 5, took
        print(f"\nstalled database: API 503 in {took:.2f} s")

        person = Browser(hung.test_client())
        person.refresh_token("/login")  # the login form itself needs no database
        started = time.monotonic()
        page = person.client.post("/login", data={
            "email": "ava@acme.test", "password": "x" * 12, "csrf_token": person.token})
        assert page.status_code == 503 and time.monotonic() - started < 5
        assert "briefly unavailable" in page.text and page.headers["Retry-After"]
    finally:
        silent.close()


@on_postgresql
def test_a_statement_past_the_timeout_is_cancelled_then_service_resumes(app_factory, app, demo,
                                                                        database_url):
    slow = app_factory(DB_STATEMENT_TIMEOUT_MS=300)
    api = Api(slow.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test")))
    with slow.app_context():
        started = time.monotonic()
        with pytest.raises(Exception) as cancelled:
            db.session.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 2
        assert "statement timeout" in str(cancelled.value)
        db.session.rollback()
    assert_envelope(api.get("/me"), 200)
