"""Settings → Subscription and Activity: plans that change, and what that does to keys."""

import pytest
from sqlalchemy import select

from fvapp.extensions import db
from fvapp.models import ApiKey, AuditEvent
from fvapp.services import audit, keys, plans
from fvapp.services.errors import DomainError


def test_owner_changes_the_plan_and_it_is_recorded(app_context, demo):
    ava = demo.user("ava@acme.test")
    plans.change_plan(demo.acme.id, ava.id, "team", ip="10.0.0.1")
    db.session.expire_all()
    assert demo.acme.plan == "team"
    event = audit.last_plan_change(demo.acme.id)
    assert event.actor_id == ava.id and event.detail == "pro → team" and event.ip == "10.0.0.1"


@pytest.mark.parametrize("email", ["adam@acme.test", "mia@acme.test"])
def test_only_the_owner_changes_the_plan(app_context, demo, email):
    with pytest.raises(DomainError, match="Only the workspace owner"):
        plans.change_plan(demo.acme.id, demo.user(email).id, "free")
    db.session.expire_all()
    assert demo.acme.plan == "pro"


@pytest.mark.parametrize("plan", ["internal", "gold", ""])
def test_owners_cannot_pick_internal_or_unknown_plans(app_context, demo, plan):
    with pytest.raises(DomainError):
        plans.change_plan(demo.acme.id, demo.user("ava@acme.test").id, plan)
    db.session.expire_all()
    assert demo.acme.plan == "pro"


def test_subscription_page_read_only_for_admins_and_members(browser_factory, demo):
    for email in ("adam@acme.test", "mia@acme.test"):
        person = browser_factory()
        person.login(email)
        page = person.get("/settings/subscription").text
        assert "Switch to" not in page and "Only the workspace owner can change the plan" in page
        assert person.get("/settings/subscription/change?plan=free").status_code == 404
        assert person.post("/settings/subscription", {"plan": "free"}, htmx=True).status_code == 404
    assert demo.acme.plan == "pro"


def test_internal_is_listed_only_when_an_operator_set_it(app, browser, demo):
    browser.login("ava@acme.test")
    assert "Internal" not in browser.get("/settings/subscription").text
    with app.app_context():
        plans.set_plan(demo.acme.id, "internal", None)
    page = browser.get("/settings/subscription").text
    assert "Internal" in page and "a ForceVue operator" in page


def test_downgrade_confirmation_counts_the_keys_that_will_answer_403(app, browser, demo):
    with app.app_context():
        ava = demo.user("ava@acme.test")
        keys.create_key(demo.acme.id, ava.id, "One")
        keys.create_key(demo.acme.id, ava.id, "Two")
        revoked = keys.create_key(demo.acme.id, ava.id, "Old").key
        keys.revoke_key(demo.acme.id, revoked.id, ava.id)
    browser.login("ava@acme.test")
    dialog = browser.get("/settings/subscription/change?plan=free", htmx=True)
    assert dialog.status_code == 200 and "<dialog" in dialog.text
    assert "2 active API keys will answer" in dialog.text and "PAID_PLAN_REQUIRED" in dialog.text
    assert "API Keys section will be hidden" in dialog.text
    assert browser.get("/settings/subscription/change?plan=internal").status_code == 404


def test_downgrade_hides_api_keys_and_upgrade_brings_the_same_keys_back(app, browser, demo):
    with app.app_context():
        key_id = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "CI pipeline").key.id
    browser.login("ava@acme.test")
    assert "API Keys" in browser.get("/settings/general").text

    response = browser.post("/settings/subscription", {"plan": "free"}, htmx=True)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/settings/subscription"
    assert "API Keys" not in browser.get("/settings/general").text
    assert browser.get("/settings/api-keys").status_code == 404

    upgrade = browser.get("/settings/subscription/change?plan=pro", htmx=True).text
    assert "1 existing API key will work again" in upgrade
    response = browser.post("/settings/subscription", {"plan": "pro"})  # without JavaScript
    assert response.status_code == 303
    page = browser.get("/settings/api-keys")
    assert page.status_code == 200 and "CI pipeline" in page.text
    with app.app_context():
        assert db.session.get(ApiKey, key_id).revoked_at is None


def test_activity_lists_changes_newest_first_with_actor_and_ip(app, browser, demo):
    with app.app_context():
        ava = demo.user("ava@acme.test")
        keys.create_key(demo.acme.id, ava.id, "Zapier")
        plans.change_plan(demo.acme.id, ava.id, "team", ip="198.51.100.7")
    browser.login("adam@acme.test")
    page = browser.get("/settings/activity").text
    assert page.index("Changed the plan (pro → team)") < page.index("Created API key Zapier")
    assert "198.51.100.7" in page and "Ava Owner" in page


def test_activity_is_paginated_and_never_shows_a_secret(app, browser, demo):
    secrets = []
    with app.app_context():
        ava = demo.user("ava@acme.test")
        for i in range(10):
            created = keys.create_key(demo.acme.id, ava.id, f"Key {i}")
            secrets.append(created.clear)
            keys.revoke_key(demo.acme.id, created.key.id, ava.id)
        for i in range(8):
            plans.change_plan(demo.acme.id, ava.id, "team" if i % 2 == 0 else "pro")
        assert db.session.scalar(select(db.func.count()).select_from(AuditEvent)) == 28
    browser.login("ava@acme.test")
    first = browser.get("/settings/activity").text
    second = browser.get("/settings/activity?page=2").text
    assert "Older" in first and "Newer" in second and "Older" not in second
    assert first.count("<tr>") - 1 == 25 and second.count("<tr>") - 1 == 3
    for secret in secrets:
        assert secret not in first and secret not in second
    assert browser.get("/settings/activity?page=abc").status_code == 200
