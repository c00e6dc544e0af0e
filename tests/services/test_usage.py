"""Knowing a key's use (SPEC §9): where it was last used from, and its requests per UTC day,
counted in memory (no database write per request) and flushed as one additive upsert.

Tests send requests holding no app context (tests/conftest.py); they read and seed the
database in `with app.app_context():` blocks of their own."""

from __future__ import annotations

import re
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import delete, event, select
from sqlalchemy.exc import DataError, OperationalError

from fvapp.extensions import db
from fvapp.models import ApiKey, KeyUsageDaily, Membership, utcnow
from fvapp.services import key_auth, keys, plans
from fvapp.usage import counting, reading
from tests.support.api import Api, bearer, mint_key
from tests.support.tracing import engine_of, sql_statements

AGENT = "nightly-export/2.3 (+https://acme.test/bots)"
MISSING = "/initiatives/00000000-0000-4000-8000-000000000000"  # a routed 404


@pytest.fixture
def ava(demo):
    return demo.user("ava@acme.test")


def _row(app, clear: str) -> ApiKey:
    """The key's row as it is now (detached: its columns are loaded)."""
    with app.app_context():
        return db.session.scalar(select(ApiKey).where(ApiKey.key_hash == keys.hash_key(clear)))


def _usage_rows(app) -> dict:
    with app.app_context():
        return {(r.key_id, r.day): (r.ok, r.denied, r.limited, r.errors)
                for r in db.session.scalars(select(KeyUsageDaily))}


def _seed(app, key_id, **days):
    """Usage rows as earlier flushes left them: d<age>=(ok, denied, limited, errors)."""
    today = counting.today()
    with app.app_context():
        for age, (ok, denied, limited, errors) in days.items():
            db.session.add(KeyUsageDaily(key_id=key_id, day=today - timedelta(days=int(age[1:])),
                                         ok=ok, denied=denied, limited=limited, errors=errors))
        db.session.commit()


# -- last used, with origin ----------------------------------------------------------------


def test_ip_and_agent_are_written_by_the_one_last_used_update(app, demo, ava):
    key = mint_key(app, demo.acme, ava)
    client, engine = app.test_client(), engine_of(app)
    with sql_statements(engine) as seen:
        assert client.get("/api/v1/me", headers={**bearer(key), "User-Agent": AGENT},
                          environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 200
    updates = [s for s in seen if s.startswith("UPDATE")]
    assert len(updates) == 1 and len(seen) == 2, seen  # the lookup and the one UPDATE
    assert "last_used_ip" in updates[0] and "last_used_user_agent" in updates[0]
    row = _row(app, key)
    assert (row.last_used_ip, row.last_used_user_agent) == ("203.0.113.7", AGENT)

    # Fresh: another address within the minute writes nothing (one statement, as before)
    other = {"headers": {**bearer(key), "User-Agent": "other"},
             "environ_base": {"REMOTE_ADDR": "198.51.100.1"}}
    with sql_statements(engine) as seen:
        client.get("/api/v1/me", **other)
    assert len(seen) == 1
    assert _row(app, key).last_used_ip == "203.0.113.7"

    # Stale: the next use records its own origin
    with app.app_context():
        db.session.get(ApiKey, row.id).last_used_at = utcnow() - timedelta(seconds=61)
        db.session.commit()
    client.get("/api/v1/me", **other)
    row = _row(app, key)
    assert (row.last_used_ip, row.last_used_user_agent) == ("198.51.100.1", "other")


def test_a_long_or_odd_user_agent_is_kept_printable_and_cut_to_200():
    long = key_auth.origin("::1", "x" * 500)["last_used_user_agent"]
    assert len(long) == 200 and long.endswith("…")
    assert key_auth.origin(None, "a\tb\x00c  d") == {"last_used_ip": None,
                                                   "last_used_user_agent": "a bc d"}
    assert key_auth.origin("1" * 90, "") == {"last_used_ip": "1" * 45, "last_used_user_agent": None}


def test_origin_behind_a_trusted_proxy_is_the_forwarded_client(app_factory, app, demo, ava):
    proxied = app_factory(TRUSTED_PROXY_HOPS=1)
    key = mint_key(app, demo.acme, ava)
    proxied.test_client().get("/api/v1/me", headers={**bearer(key),
                                                     "X-Forwarded-For": "192.0.2.44"})
    assert _row(app, key).last_used_ip == "192.0.2.44"


# -- usage per key per day -----------------------------------------------------------------


def test_requests_are_counted_in_memory_and_flushed_as_one_upsert(app_factory, app, demo, ava):
    limited = app_factory(API_RATE_LIMIT="8 per minute")
    key, other = mint_key(app, demo.acme, ava), mint_key(app, demo.acme, ava, "Other")
    api, api_other = Api(limited.test_client(), key), Api(limited.test_client(), other)
    engine = engine_of(limited)
    api.get("/me")  # writes last_used_at
    with sql_statements(engine) as seen:
        for _ in range(4):
            assert api.get("/me").status_code == 200
    assert len(seen) == 4  # counting costs no statement: one lookup per request
    assert api.get(MISSING).status_code == 404  # errors
    assert api.post("/initiatives", json={"title": ""}).status_code in (400, 422)  # errors
    assert api.get("/me").status_code == 200
    assert api.get("/me").status_code == 429  # the 9th in the minute: limited
    with app.app_context():
        plans.set_plan(demo.acme.id, "free", ava.id)
    assert api_other.get("/me").status_code == 403  # denied, before the key became a principal
    assert _usage_rows(app) == {}  # nothing written yet

    with sql_statements(engine) as seen:
        assert counting.flush(limited) == 2
    writes = [s for s in seen if s.startswith("INSERT")]
    assert len(writes) == 1 and "ON CONFLICT" in writes[0], seen
    today = counting.today()
    ids = {_row(app, key).id: "key", _row(app, other).id: "other"}
    assert {(ids[k], d): v for (k, d), v in _usage_rows(app).items()} == {
        ("key", today): (6, 0, 1, 2),
        ("other", today): (0, 1, 0, 0),
    }

    # Additive: the next flush adds to the day's row, it does not replace it
    assert api_other.get("/me").status_code == 403
    assert counting.flush(limited) == 1
    assert _usage_rows(app)[(_row(app, other).id, today)] == (0, 2, 0, 0)
    assert counting.flush(limited) == 0  # nothing new: no statement at all


def test_a_revoked_key_still_tried_counts_as_errors_and_unknown_keys_not_at_all(app, demo, ava):
    with app.app_context():
        created = keys.create_key(demo.acme.id, ava.id, "Leaky")
        keys.revoke_key(demo.acme.id, created.key.id, ava.id)
        key_id = created.key.id
    client = app.test_client()
    assert client.get("/api/v1/me", headers=bearer(created.clear)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(keys.generate_key())).status_code == 401
    assert client.get("/api/v1/me", headers=bearer("not-a-key")).status_code == 401
    assert client.get("/api/v1/me").status_code == 401
    counting.flush(app)
    assert _usage_rows(app) == {(key_id, counting.today()): (0, 0, 0, 1)}


def test_mcp_requests_count_for_their_key(app, demo, ava):
    from tests.e2e.conftest import serve
    from tests.support.mcp import post_initialize  # the MCP tests' first call

    key = mint_key(app, demo.acme, ava)
    with serve(app) as base:
        assert post_initialize(base, bearer(key)).status_code == 200
    counting.flush(app)
    assert _usage_rows(app)[(_row(app, key).id, counting.today())] == (1, 0, 0, 0)


@contextmanager
def refused_statements(app, error, refuse=lambda parameters: True, times=None):
    """The database refuses each upsert into key_usage_daily for which `refuse(its parameters)`
    holds (at most `times` of them), with `error`: SQLAlchemy's public before_cursor_execute
    event, as a driver error would surface. Yields the list of refused statements' parameters.
    The flush writes through the pages app's engine (the aggregator is the process's, made there)."""
    with app.app_context():
        engine = db.engine
    refused = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if (statement.startswith("INSERT INTO key_usage_daily") and refuse(parameters)
                and (times is None or len(refused) < times)):
            refused.append(parameters)
            raise error(statement, parameters, Exception("refused by the test"))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield refused
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _holds(parameters, key_id: uuid.UUID) -> bool:
    """Whether a statement's parameters hold this id (a UUID, or its hex on SQLite)."""
    values = parameters.values() if isinstance(parameters, dict) else parameters
    return any(str(value).replace("-", "") == key_id.hex for value in values)


def test_a_flush_that_finds_the_database_unavailable_keeps_its_counts_for_the_next(app, demo,
                                                                                     ava):
    key = mint_key(app, demo.acme, ava)
    api = Api(app.test_client(), key)
    for _ in range(3):
        api.get("/me")
    with refused_statements(app, OperationalError) as refused:
        assert counting.aggregator(app).flush_quietly() == 0
    assert len(refused) == 1 and _usage_rows(app) == {}
    api.get("/me")
    counting.flush(app)
    assert _usage_rows(app)[(_row(app, key).id, counting.today())] == (4, 0, 0, 0)


def test_a_batch_the_database_refuses_is_dropped_and_the_others_are_written(
        app, demo, ava, monkeypatch, caplog):
    monkeypatch.setattr(counting, "KEYS_PER_BATCH", 1)
    clears = [mint_key(app, demo.acme, ava, f"Key {n}") for n in range(3)]
    ids = [_row(app, clear).id for clear in clears]
    client = app.test_client()
    for n, clear in enumerate(clears):
        for _ in range(n + 1):
            assert client.get("/api/v1/me", headers=bearer(clear)).status_code == 200
    poisoned = ids[1]
    with refused_statements(app, DataError, lambda p: _holds(p, poisoned)) as refused:
        assert counting.aggregator(app).flush_quietly() == 2
    assert len(refused) == 1
    today = counting.today()
    assert _usage_rows(app) == {(ids[0], today): (1, 0, 0, 0), (ids[2], today): (3, 0, 0, 0)}
    assert "usage: 1 keys' counts not written" in caplog.text
    assert counting.flush(app) == 0  # dropped, not put back to fail again


def test_unknown_keys_are_not_counted_and_cost_the_flush_nothing(app, demo, ava):
    key = mint_key(app, demo.acme, ava)
    client = app.test_client()
    for _ in range(300):  # distinct, well-formed keys nobody has
        assert client.get("/api/v1/me", headers=bearer(keys.generate_key())).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
    with sql_statements(engine_of(app)) as seen:
        assert counting.flush(app) == 1
    assert [s.split()[0] for s in seen if "api_keys" in s or "key_usage_daily" in s] == [
        "INSERT", "DELETE"], seen  # the one upsert and the prune: no lookup of hashes
    assert _usage_rows(app) == {(_row(app, key).id, counting.today()): (1, 0, 0, 0)}


def test_a_flush_upserts_in_key_order_so_processes_flushing_together_never_deadlock(
        app, demo, ava, monkeypatch):
    """Workers that exit together flush the same keys at once: each locks the rows it upserts
    in (key, day) order, batch after batch, so none waits on another in a cycle."""
    monkeypatch.setattr(counting, "KEYS_PER_BATCH", 2)
    clears = [mint_key(app, demo.acme, ava, f"Key {n}") for n in range(5)]
    ids = sorted((_row(app, clear).id for clear in clears), reverse=True)
    aggregator = counting.aggregator(app)
    for key_id in ids:  # counted in descending order
        aggregator.add(key_id, 200)
    upserted = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO key_usage_daily"):
            if isinstance(parameters, dict):  # PostgreSQL: key_id_m0, key_id_m1, …
                found = {int(name.rsplit("_m", 1)[1]): value
                         for name, value in parameters.items() if name.startswith("key_id_m")}
                values = [found[n] for n in sorted(found)]
            else:  # SQLite: positional, the ids as 32 hex digits
                values = [v for v in parameters if isinstance(v, str)
                          and re.fullmatch("[0-9a-f]{32}", v)]
            upserted.extend(str(value).replace("-", "") for value in values)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        assert counting.flush(app) == 5
    finally:
        event.remove(engine, "before_cursor_execute", before)
    assert upserted == sorted(key_id.hex for key_id in ids)


def test_70000_pending_keys_are_flushed_in_bounded_batches_and_real_counts_are_exact(
        app, demo, ava):
    """As if 70,000 keys had been counted in one interval, none of which exists any more: more
    than PostgreSQL's 65,535 parameters per statement. The real key's counts are written
    exactly, every statement stays small, and nothing is left to fail again."""
    key = mint_key(app, demo.acme, ava)
    api = Api(app.test_client(), key)
    for _ in range(5):
        api.get("/me")
    aggregator = counting.aggregator(app)
    for _ in range(70_000):
        aggregator.add(uuid.uuid4(), 200)
    largest = []

    def before(conn, cursor, statement, parameters, context, executemany):
        largest.append(len(parameters or ()))

    with app.app_context():
        engine = db.engine  # the flush's: the pages app's, where the aggregator was made
    event.listen(engine, "before_cursor_execute", before)
    try:
        assert counting.flush(app) == 1
    finally:
        event.remove(engine, "before_cursor_execute", before)
    assert max(largest) <= counting.KEYS_PER_BATCH * 6
    assert _usage_rows(app) == {(_row(app, key).id, counting.today()): (5, 0, 0, 0)}
    api.get("/me")
    assert counting.flush(app) == 1
    assert _usage_rows(app) == {(_row(app, key).id, counting.today()): (6, 0, 0, 0)}


def test_pending_counts_are_bounded_with_one_warning_per_flush(app, demo, ava, monkeypatch,
                                                                caplog):
    monkeypatch.setattr(counting, "MAX_PENDING", 2)
    clears = [mint_key(app, demo.acme, ava, f"Key {n}") for n in range(3)]
    client = app.test_client()
    for clear in clears:
        for _ in range(2):
            assert client.get("/api/v1/me", headers=bearer(clear)).status_code == 200
    caplog.clear()
    assert counting.flush(app) == 2
    warnings = [r for r in caplog.records if r.name == "fvapp.usage.counting"]
    assert [r.getMessage() for r in warnings] == [
        "usage: 2 requests not counted (more than 2 keys pending)"]


def test_refused_requests_of_a_known_key_count_for_it(app_factory, app, demo, ava):
    """Its creator removed: 401, counted as an error for the key; over its limit: 429."""
    limited = app_factory(API_RATE_LIMIT="2 per minute")
    adam = demo.user("adam@acme.test")  # an admin of Acme
    kept, left = mint_key(app, demo.acme, ava, "Kept"), mint_key(app, demo.acme, adam, "Left")
    client = limited.test_client()
    with app.app_context():  # gone from the workspace; the key's row is still there
        db.session.execute(delete(Membership).where(Membership.user_id == adam.id,
                                                    Membership.workspace_id == demo.acme.id))
        db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(left)).status_code == 401
    assert [client.get("/api/v1/me", headers=bearer(kept)).status_code
            for _ in range(3)] == [200, 200, 429]
    counting.flush(limited)
    today = counting.today()
    assert _usage_rows(app) == {(_row(app, left).id, today): (0, 0, 0, 1),
                                (_row(app, kept).id, today): (2, 0, 1, 0)}


def test_counts_of_a_key_deleted_before_the_flush_do_not_block_the_others(app, demo, ava):
    gone, kept = mint_key(app, demo.acme, ava, "Gone"), mint_key(app, demo.acme, ava, "Kept")
    client = app.test_client()
    for clear in (gone, kept):
        assert client.get("/api/v1/me", headers=bearer(clear)).status_code == 200
    kept_id = _row(app, kept).id
    with app.app_context():  # as when its workspace is deleted (ON DELETE CASCADE)
        db.session.delete(db.session.get(ApiKey, _row(app, gone).id))
        db.session.commit()
    assert counting.flush(app) == 1
    assert _usage_rows(app) == {(kept_id, counting.today()): (1, 0, 0, 0)}
    assert counting.flush(app) == 0  # nothing was put back to fail again


def test_days_older_than_90_are_pruned(app, demo, ava):
    key_id = _row(app, mint_key(app, demo.acme, ava)).id
    _seed(app, key_id, d0=(1, 0, 0, 0), d89=(90, 0, 0, 0), d90=(91, 0, 0, 0), d200=(201, 0, 0, 0))
    counting.flush(app)  # the first flush of a process prunes
    today = counting.today()
    assert sorted(d for _, d in _usage_rows(app)) == [today - timedelta(days=89), today]
    with app.app_context():
        shown = reading.for_key(key_id)
    assert len(shown.days) == 90 and shown.total == 1 + 90 and shown.today.ok == 1


def test_the_background_flusher_writes_within_the_interval(app_factory, app, demo, ava):
    background = app_factory(USAGE_FLUSH_IN_BACKGROUND=True, USAGE_FLUSH_INTERVAL=0.2)
    key = mint_key(app, demo.acme, ava)
    Api(background.test_client(), key).get("/me")
    aggregator = counting.aggregator(background)
    try:
        deadline = time.monotonic() + 20
        while not _usage_rows(app) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _usage_rows(app) == {(_row(app, key).id, counting.today()): (1, 0, 0, 0)}
        assert any(t.name == "fvapp-usage-flush" for t in threading.enumerate())
    finally:
        aggregator.stop()


# -- shown on the page ---------------------------------------------------------------------


def test_rows_read_no_usage_the_detail_view_draws_it(app, demo, ava, browser):
    with app.app_context():
        made = [keys.create_key(demo.acme.id, ava.id, f"Key {n}").key.id for n in range(4)]
    _seed(app, made[0], d0=(5, 1, 0, 0), d3=(10, 0, 0, 0), d40=(99, 0, 0, 0))
    browser.login("ava@acme.test")
    with sql_statements(engine_of(app)) as seen:
        page = browser.get("/settings/api-keys")
    assert page.status_code == 200
    assert [s for s in seen if "key_usage_daily" in s] == []  # charts live in the key's detail
    assert "<svg" not in page.text[page.text.index('<table class="table keys-table">'):]
    detail = browser.get(f"/settings/api-keys/{made[0]}", htmx=True).text
    assert "Last 30 days</dt><dd>16<" in detail  # day 40 is outside the 30
    assert " style=" not in page.text and "<script>" not in page.text  # the CSP allows neither


def test_detail_view_shows_origin_totals_chart_and_table(app, demo, ava, browser):
    with app.app_context():
        created = keys.create_key(demo.acme.id, ava.id, "Nightly export")
        key_id = created.key.id
    api = Api(app.test_client(), created.clear)
    for _ in range(3):
        api.get("/me", headers={"User-Agent": AGENT})
    assert api.get(MISSING).status_code == 404
    counting.flush(app)
    _seed(app, key_id, d2=(7, 0, 2, 0))
    browser.login("ava@acme.test")
    page = browser.get(f"/settings/api-keys/{key_id}", htmx=True).text
    assert "127.0.0.1" in page and AGENT in page
    assert re.search(r"data-usage-today>4<", page)
    assert "Last 90 days</dt><dd>13<" in page
    assert page.count('<rect class="bar-ok"') == 2 and page.count('<rect class="bar-limited"') == 1
    # the table alternative: a caption, headers, one row per day with requests
    table = page[page.index('<table class="sr-only">'):page.index("</table>")]
    assert "<caption>Requests per day for Nightly export" in table
    assert '<th scope="col">Rate limited</th>' in table
    today, two_ago = counting.today(), counting.today() - timedelta(days=2)
    assert f'<th scope="row">{today.isoformat()}</th><td>3</td><td>0</td><td>0</td><td>1</td>' in table
    assert f'<th scope="row">{two_ago.isoformat()}</th><td>7</td><td>0</td><td>2</td>' in table
    assert " style=" not in page


def test_bars_stack_without_gaps_and_scale_to_the_busiest_day():
    today = counting.today()
    shown = reading.Usage([reading.Day(today - timedelta(days=2), 1, 0, 0, 0),
                           reading.Day(today - timedelta(days=1)),
                           reading.Day(today, 90, 5, 3, 2)])
    drawn = reading.bars(shown, 100, 8)
    assert [b.x for b in drawn] == [0, 8, 16]
    assert drawn[0].segments == [reading.Segment("ok", 99, 1)]  # tiny but visible
    assert drawn[1].segments == []
    stacked = drawn[2].segments
    assert [s.kind for s in stacked] == ["ok", "denied", "limited", "errors"]
    assert sum(s.height for s in stacked) == 100 and stacked[-1].y == 0
    assert all(a.y == b.y + b.height for a, b in zip(stacked, stacked[1:], strict=False))


@pytest.mark.parametrize("env, message", [
    ({"USAGE_FLUSH_INTERVAL": "soon"}, "USAGE_FLUSH_INTERVAL must be a number of seconds"),
    ({"USAGE_FLUSH_INTERVAL": "0"}, "above 0"),
    ({"USAGE_FLUSH_IN_BACKGROUND": "maybe"}, "must be 1 or 0"),
])
def test_bad_usage_settings_are_clear_config_errors(env, message):
    from fvapp.config import ConfigError, from_environment

    with pytest.raises(ConfigError, match=message):
        from_environment({"FVAPP_ENV": "testing", **env})


def test_usage_settings_defaults():
    from fvapp.config import from_environment

    assert from_environment({"FVAPP_ENV": "development"})["USAGE_FLUSH_IN_BACKGROUND"] is True
    testing = from_environment({"FVAPP_ENV": "testing", "USAGE_FLUSH_INTERVAL": "0.5"})
    assert (testing["USAGE_FLUSH_INTERVAL"], testing["USAGE_FLUSH_IN_BACKGROUND"]) == (0.5, False)
    assert from_environment({"FVAPP_ENV": "testing", "USAGE_FLUSH_IN_BACKGROUND": "1"})[
        "USAGE_FLUSH_IN_BACKGROUND"] is True
