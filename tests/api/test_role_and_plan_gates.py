"""The seed page's two gates, seen from the API: role (membership) and plan changes made in
Settings take effect on the very next API request."""

from sqlalchemy import select

from fvapp.extensions import db
from fvapp.models import Membership
from fvapp.services import keys, members, plans


def _me(client, clear):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {clear}"})


def _membership(demo, email):
    return db.session.scalar(select(Membership).where(
        Membership.user_id == demo.user(email).id, Membership.workspace_id == demo.acme.id))


def test_removal_makes_the_removed_users_keys_401_and_no_one_elses(app, demo):
    client = app.test_client()
    adam, ava = demo.user("adam@acme.test"), demo.user("ava@acme.test")
    with app.app_context():
        adams = keys.create_key(demo.acme.id, adam.id, "Adam CI").clear
        avas = keys.create_key(demo.acme.id, ava.id, "Ava CI").clear
    assert _me(client, adams).status_code == 200

    with app.app_context():
        members.remove_member(demo.acme.id, ava.id, _membership(demo, "adam@acme.test").id)
    response = _me(client, adams)
    assert response.status_code == 401
    assert response.json["code"] == "UNAUTHORIZED"
    assert _me(client, avas).status_code == 200


def test_demoted_creator_keeps_working_keys_with_member_rights(app, demo):
    client = app.test_client()
    with app.app_context():
        adams = keys.create_key(demo.acme.id, demo.user("adam@acme.test").id, "Adam CI").clear
        members.change_role(demo.acme.id, demo.user("ava@acme.test").id,
                            _membership(demo, "adam@acme.test").id, "member")
    response = _me(client, adams)
    assert response.status_code == 200
    assert response.json["data"]["role"] == "member"
    created = client.post("/api/v1/initiatives", json={"title": "From a member's key"},
                          headers={"Authorization": f"Bearer {adams}"})
    assert created.status_code == 201


def test_plan_change_to_free_is_403_at_once_and_pro_restores(app, browser, demo):
    client = app.test_client()
    ava = demo.user("ava@acme.test")
    with app.app_context():
        clear = keys.create_key(demo.acme.id, ava.id, "CI pipeline").clear
    assert _me(client, clear).status_code == 200

    browser.login("ava@acme.test")
    browser.post("/settings/subscription", {"plan": "free"})
    response = _me(client, clear)
    assert response.status_code == 403
    assert response.json["code"] == "PAID_PLAN_REQUIRED"
    assert browser.get("/settings/api-keys").status_code == 404

    with app.app_context():
        plans.change_plan(demo.acme.id, ava.id, "pro")
    assert _me(client, clear).status_code == 200
    assert browser.get("/settings/api-keys").status_code == 200
