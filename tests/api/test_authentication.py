"""Who may call /api/v1: the Bearer key and nothing else, the plan gate, membership checked at
request time, the cost of authentication (statements, last_used_at writes), rate limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from fvapp.extensions import db
from fvapp.models import ApiKey, Membership, utcnow
from fvapp.services import keys, plans, workspaces
from tests.support.api import Api, assert_envelope, bearer, mint_key
from tests.support.tracing import engine_of, sql_statements


@pytest.fixture
def ava(demo):
    return demo.user("ava@acme.test")


@pytest.fixture
def key(demo, ava):
    return mint_key(demo.app, demo.acme, ava)


@pytest.fixture
def api(app, key):
    return Api(app.test_client(), key)


def _key_row(demo, clear: str) -> ApiKey:
    return demo.scalar(select(ApiKey).where(ApiKey.key_hash == keys.hash_key(clear)))


def assert_unauthorized(response):
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == "Bearer"


# -- the matrix ---------------------------------------------------------------------------


def test_a_valid_key_authenticates_as_its_creator_in_its_workspace(api, demo, ava):
    body = assert_envelope(api.get("/me"), 200)
    data = body["data"]
    assert data["user"] == {"id": str(ava.id), "email": "ava@acme.test", "name": "Ava Owner"}
    assert data["role"] == "owner"
    assert data["workspace"] == {"id": str(demo.acme.id), "name": "Acme Analytics", "plan": "pro"}
    assert data["api_key"]["name"] == "CI pipeline"
    assert data["api_key"]["prefix"] == api.key[:13] + "…"
    assert data["api_key"]["last_used_at"] is not None


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_case_insensitive(app, key, scheme):
    response = app.test_client().get("/api/v1/me", headers={"Authorization": f"{scheme} {key}"})
    assert response.status_code == 200


def _altered(key: str) -> str:
    last = key[-1]
    return key[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda key: {}, id="no-header"),
        pytest.param(lambda key: {"Authorization": f"Basic {key}"}, id="basic"),
        pytest.param(lambda key: {"Authorization": "Basic YXZhOnNlY3JldA=="}, id="basic-userpass"),
        pytest.param(lambda key: {"Authorization": "Bearer"}, id="bearer-nothing"),
        pytest.param(lambda key: {"Authorization": "Bearer "}, id="bearer-space"),
        pytest.param(lambda key: {"Authorization": key}, id="no-scheme"),
        pytest.param(lambda key: {"Authorization": f"Token {key}"}, id="other-scheme"),
        pytest.param(lambda key: {"Authorization": "Bearer " + key.replace("fvk_live_", "fvk_test_")},
                     id="wrong-prefix"),
        pytest.param(lambda key: {"Authorization": f"Bearer {_altered(key)}"}, id="bad-checksum"),
        pytest.param(lambda key: {"Authorization": f"Bearer {key[:-1]}"}, id="truncated"),
        pytest.param(lambda key: {"Authorization": f"Bearer {key} {key}"}, id="two-keys"),
        pytest.param(lambda key: {"Authorization": f"Bearer {keys.generate_key()}"}, id="unknown"),
        pytest.param(lambda key: {"X-API-Key": key}, id="x-api-key-alone"),
    ],
)
def test_anything_but_a_valid_bearer_key_is_401(app, key, headers):
    assert_unauthorized(app.test_client().get("/api/v1/me", headers=headers(key)))


@pytest.mark.parametrize("param", ["api_key", "key", "access_token", "token"])
def test_a_key_in_the_query_string_is_ignored(app, key, param):
    assert_unauthorized(app.test_client().get(f"/api/v1/me?{param}={key}"))


def test_malformed_keys_are_refused_without_touching_the_database(app, key):
    client = app.test_client()
    with sql_statements(engine_of(app)) as seen:
        for value in ["Bearer " + _altered(key), "Bearer fvk_live_short", "Basic x", "Bearer"]:
            assert client.get("/api/v1/me", headers={"Authorization": value}).status_code == 401
    assert seen == []


def test_a_revoked_key_is_401_on_the_very_next_request(api, demo, ava):
    assert api.get("/me").status_code == 200
    with demo.app.app_context():
        keys.revoke_key(demo.acme.id, _key_row(demo, api.key).id, ava.id)
    assert_unauthorized(api.get("/me"))
    assert_unauthorized(api.get("/initiatives"))


def test_a_browser_session_alone_never_authenticates_the_api(browser, demo, key):
    assert browser.login("ava@acme.test").status_code == 303
    assert browser.get("/").status_code == 200  # signed in, as far as the app is concerned
    for path in ["/api/v1/me", "/api/v1/initiatives"]:
        response = browser.get(path)
        assert_unauthorized(response)
        assert "Set-Cookie" not in response.headers
    posted = browser.client.post("/api/v1/initiatives", json={"title": "From a cookie"})
    assert_unauthorized(posted)


def test_with_a_session_and_a_key_the_key_alone_decides(browser, demo):
    adam_key = mint_key(demo.app, demo.acme, demo.user("adam@acme.test"))
    browser.login("ava@acme.test")
    response = browser.get("/api/v1/me", headers=bearer(adam_key))
    assert response.get_json()["data"]["user"]["email"] == "adam@acme.test"
    assert "Set-Cookie" not in response.headers


def test_the_api_needs_no_csrf_token(api):
    # The app's CSRF protection is on (testing keeps it); the API is exempt.
    assert api.client.application.config.get("WTF_CSRF_ENABLED", True)
    assert api.post("/initiatives", json={"title": "No token needed"}).status_code == 201


# -- plan and membership, checked at request time -----------------------------------------


def test_a_free_workspace_answers_403_paid_plan_required_and_an_upgrade_restores_access(
    api, demo, ava
):
    with demo.app.app_context():
        plans.set_plan(demo.acme.id, "free", ava.id)
    body = assert_envelope(api.get("/me"), 403, "PAID_PLAN_REQUIRED")
    assert "paid plan" in body["error"]
    assert_envelope(api.post("/initiatives", json={"title": "x"}), 403, "PAID_PLAN_REQUIRED")
    assert _key_row(demo, api.key).revoked_at is None  # a downgrade revokes nothing

    with demo.app.app_context():
        plans.set_plan(demo.acme.id, "team", ava.id)
    assert api.get("/me").status_code == 200


@pytest.mark.parametrize("plan", ["pro", "team", "consultant", "internal"])
def test_paid_and_internal_plans_have_api_access(api, demo, ava, plan):
    with demo.app.app_context():
        plans.set_plan(demo.acme.id, plan, ava.id)
    assert assert_envelope(api.get("/me"), 200)["data"]["workspace"]["plan"] == plan


def test_401_is_checked_before_the_plan(api, demo, ava):
    with demo.app.app_context():
        plans.set_plan(demo.acme.id, "free", ava.id)
        _key_row(demo, api.key).revoked_at = utcnow()
        db.session.commit()
    assert_unauthorized(api.get("/me"))


def test_a_creator_no_longer_in_the_workspace_is_401(api, demo, ava):
    # The row goes, the key is left as it was (not revoked): the join decides.
    with demo.app.app_context():
        db.session.delete(workspaces.membership(ava.id, demo.acme.id))
        db.session.commit()
    assert _key_row(demo, api.key).revoked_at is None
    assert_unauthorized(api.get("/me"))


def test_a_creator_demoted_to_member_keeps_a_working_key_with_member_rights(app, demo):
    adam = demo.user("adam@acme.test")
    api = Api(app.test_client(), mint_key(demo.app, demo.acme, adam))
    with app.app_context():
        member = db.session.scalar(
            select(Membership).where(Membership.user_id == adam.id,
                                     Membership.workspace_id == demo.acme.id)
        )
        member.role = "member"
        db.session.commit()
    assert api.get("/me").get_json()["data"]["role"] == "member"
    assert api.post("/initiatives", json={"title": "Members use initiatives"}).status_code == 201


def test_a_key_only_ever_sees_its_own_workspace(app, demo):
    adam = demo.user("adam@acme.test")  # admin of both workspaces
    acme = Api(app.test_client(), mint_key(demo.app, demo.acme, adam))
    with app.app_context():
        plans.set_plan(demo.fox.id, "pro", demo.user("fred@fox.test").id)
    fox = Api(app.test_client(), mint_key(demo.app, demo.fox, adam))
    acme.post("/initiatives", json={"title": "Acme only"})
    titles = [i["title"] for i in fox.get("/initiatives").get_json()["data"]["items"]]
    assert titles == []
    assert fox.get("/me").get_json()["data"]["workspace"]["name"] == "Fox Free"


# -- the cost of authentication ----------------------------------------------------------


def test_one_sql_statement_authenticates_when_last_used_at_is_fresh(app, api):
    api.get("/me")  # the first use writes last_used_at
    with sql_statements(engine_of(app)) as seen:
        assert api.get("/me").status_code == 200
    assert len(seen) == 1, seen
    statement = seen[0]
    assert statement.startswith("SELECT") and "FROM api_keys" in statement
    assert "api_keys.key_hash =" in statement and "memberships" in statement


def test_a_listing_adds_only_its_own_query(app, api):
    api.get("/me")
    with sql_statements(engine_of(app)) as seen:
        assert api.get("/initiatives").status_code == 200
    assert len(seen) == 2 and "FROM initiatives" in seen[1], seen


def _updates(seen):
    return [s for s in seen if s.startswith("UPDATE api_keys")]


def test_last_used_at_is_written_at_most_once_per_key_per_minute(app, demo, api, key):
    engine = engine_of(app)
    assert _key_row(demo, key).last_used_at is None
    with sql_statements(engine) as seen:
        for _ in range(30):
            assert api.get("/me").status_code == 200
    assert len(_updates(seen)) == 1  # the first call: last_used_at was never set
    first_use = _key_row(demo, key).last_used_at
    assert first_use is not None

    def last_used(ago: timedelta):
        with app.app_context():
            _key_row(demo, key).last_used_at = utcnow() - ago
            db.session.commit()

    last_used(timedelta(seconds=59))
    with sql_statements(engine) as seen:
        for _ in range(10):
            api.get("/initiatives")
    assert _updates(seen) == []  # not even a no-op UPDATE

    last_used(timedelta(seconds=61))
    with sql_statements(engine) as seen:
        for _ in range(10):
            api.get("/me")
    assert len(_updates(seen)) == 1
    assert utcnow() - _key_row(demo, key).last_used_at < timedelta(seconds=5)


def test_each_key_has_its_own_last_used_at(app, demo, ava, key):
    other = mint_key(demo.app, demo.acme, ava, "Nightly export")
    api, api_other = Api(app.test_client(), key), Api(app.test_client(), other)
    with sql_statements(engine_of(app)) as seen:
        for _ in range(5):
            api.get("/me")
            api_other.get("/me")
    assert len(_updates(seen)) == 2
    assert _key_row(demo, key).last_used_at and _key_row(demo, other).last_used_at


def test_a_refused_request_does_not_touch_last_used_at(api, demo, ava, key):
    with demo.app.app_context():
        plans.set_plan(demo.acme.id, "free", ava.id)
    assert api.get("/me").status_code == 403
    assert _key_row(demo, key).last_used_at is None


# -- rate limits ---------------------------------------------------------------------------


def test_the_per_key_limit_answers_429_in_the_envelope_with_its_headers(app_factory, app, demo, ava):
    limited = app_factory(API_RATE_LIMIT="5 per minute")
    key, other = mint_key(demo.app, demo.acme, ava), mint_key(demo.app, demo.acme, ava, "Other")
    client = limited.test_client()
    for n in range(5):
        response = client.get("/api/v1/me", headers=bearer(key))
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "5"
        assert response.headers["X-RateLimit-Remaining"] == str(4 - n)
    refused = client.get("/api/v1/initiatives", headers=bearer(key))  # shared by all endpoints
    assert_envelope(refused, 429, "RATE_LIMITED")
    # Sliding-window counter: the budget frees up within T·(1 + 1/L) = 72 s (fvapp/ratelimit/)
    assert 1 <= int(refused.headers["Retry-After"]) <= 73
    assert refused.headers["X-RateLimit-Limit"] == "5"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) > 0
    assert client.get("/api/v1/me", headers=bearer(other)).status_code == 200  # per key


def test_failed_authentications_are_limited_per_ip_and_successes_do_not_count(
    app_factory, app, demo, ava
):
    limited = app_factory(API_AUTH_FAILURE_LIMIT="3 per minute")
    key = mint_key(demo.app, demo.acme, ava)
    client = limited.test_client()
    for _ in range(10):
        assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
    for _ in range(3):
        assert client.get("/api/v1/me", headers=bearer(keys.generate_key())).status_code == 401
    engine = engine_of(limited)  # the engine of the app that serves
    with sql_statements(engine) as seen:
        sprayed = client.get("/api/v1/me", headers=bearer(keys.generate_key()))
    assert_envelope(sprayed, 429, "RATE_LIMITED")
    assert "Retry-After" in sprayed.headers
    assert len(seen) == 1  # the key's read (only a read tells a valid key from an unknown one)
    with sql_statements(engine) as seen:
        for _ in range(5):
            assert client.get("/api/v1/me", headers=bearer(keys.generate_key())).status_code == 429
    assert len(seen) == 5  # one read each, no write
    # A valid key from that address is judged by its own limit alone (SPEC §11).
    assert_envelope(client.get("/api/v1/me", headers=bearer(key)), 200)
    elsewhere = client.get("/api/v1/me", headers=bearer(key),
                           environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert elsewhere.status_code == 200


def test_a_plan_refusal_is_not_a_failed_authentication(app_factory, app, demo, ava):
    limited = app_factory(API_AUTH_FAILURE_LIMIT="2 per minute")
    key = mint_key(demo.app, demo.acme, ava)
    with app.app_context():
        plans.set_plan(demo.acme.id, "free", ava.id)
    client = limited.test_client()
    for _ in range(5):
        assert client.get("/api/v1/me", headers=bearer(key)).status_code == 403
