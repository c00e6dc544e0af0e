"""Settings → Members: who may add, change and remove whom (SPEC §2), and what removal does
to API keys."""

import pytest
from sqlalchemy import select

from fvapp.extensions import db
from fvapp.models import ApiKey, AuditEvent, Membership
from fvapp.services import keys, members
from fvapp.services.errors import DomainError, Forbidden


def _member(demo, email, workspace=None):
    workspace = workspace or demo.acme
    return db.session.scalar(
        select(Membership).where(
            Membership.user_id == demo.user(email).id, Membership.workspace_id == workspace.id
        )
    )


def _snapshot():
    db.session.expire_all()
    return sorted(
        (str(m.user_id), str(m.workspace_id), m.role) for m in db.session.scalars(select(Membership))
    )


# -- service rules ------------------------------------------------------------------------


def test_owner_adds_an_existing_user_with_a_role(app_context, demo):
    ava = demo.user("ava@acme.test")
    member = members.add_member(demo.acme.id, ava.id, " FRED@fox.test ", "admin")
    assert member.role == "admin" and member.user.email == "fred@fox.test"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "member.added"))
    assert event.target_label == "fred@fox.test" and event.actor_id == ava.id


@pytest.mark.parametrize(
    ("actor", "email", "role", "message"),
    [
        ("ava@acme.test", "nobody@acme.test", "member", "No ForceVue account uses"),
        ("ava@acme.test", "mia@acme.test", "member", "already a member"),
        ("ava@acme.test", "", "member", "Enter the email"),
        ("ava@acme.test", "fred@fox.test", "boss", "Choose a role"),
        ("adam@acme.test", "fred@fox.test", "owner", "Only an owner can make someone an owner"),
    ],
)
def test_add_member_refusals(app_context, demo, actor, email, role, message):
    before = _snapshot()
    with pytest.raises(DomainError, match=message):
        members.add_member(demo.acme.id, demo.user(actor).id, email, role)
    assert _snapshot() == before


def test_members_cannot_manage_members(app_context, demo):
    before = _snapshot()
    mia = demo.user("mia@acme.test")
    with pytest.raises(Forbidden):
        members.add_member(demo.acme.id, mia.id, "fred@fox.test", "member")
    with pytest.raises(Forbidden):
        members.change_role(demo.acme.id, mia.id, _member(demo, "adam@acme.test").id, "member")
    with pytest.raises(Forbidden):
        members.remove_member(demo.acme.id, mia.id, _member(demo, "adam@acme.test").id)
    assert _snapshot() == before


def _refused(demo, actor_email, *attempts):
    """Each attempt, (message, service function, its arguments after workspace and actor), is
    refused with that message, and no membership changes."""
    before = _snapshot()
    actor = demo.user(actor_email)
    for message, action, *arguments in attempts:
        with pytest.raises(DomainError, match=message):
            action(demo.acme.id, actor.id, *arguments)
    assert _snapshot() == before


def test_admin_cannot_change_or_remove_an_owner(app_context, demo):
    ava_m = _member(demo, "ava@acme.test")
    _refused(demo, "adam@acme.test",
             ("Only an owner can change an owner", members.change_role, ava_m.id, "member"),
             ("Only an owner can remove an owner", members.remove_member, ava_m.id),
             ("Only an owner can make someone an owner", members.change_role,
              _member(demo, "mia@acme.test").id, "owner"))


def test_admin_changes_a_members_role(app_context, demo):
    adam = demo.user("adam@acme.test")
    changed = members.change_role(demo.acme.id, adam.id, _member(demo, "mia@acme.test").id, "admin")
    assert changed.role == "admin"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "member.role_changed"))
    assert event.detail == "member → admin"


def test_the_last_owner_cannot_be_demoted_or_removed_not_even_by_themselves(app_context, demo):
    ava_m = _member(demo, "ava@acme.test")
    _refused(demo, "ava@acme.test",
             ("only owner", members.change_role, ava_m.id, "admin"),
             ("only owner", members.remove_member, ava_m.id))


def test_with_two_owners_one_may_leave(app_context, demo):
    ava = demo.user("ava@acme.test")
    members.change_role(demo.acme.id, ava.id, _member(demo, "adam@acme.test").id, "owner")
    members.remove_member(demo.acme.id, ava.id, _member(demo, "ava@acme.test").id)
    assert _member(demo, "ava@acme.test") is None
    assert members.owner_count(demo.acme.id) == 1


def test_another_workspaces_member_is_not_found(app_context, demo):
    from fvapp.services.errors import NotFound

    fred_m = _member(demo, "fred@fox.test", demo.fox)
    with pytest.raises(NotFound):
        members.remove_member(demo.acme.id, demo.user("ava@acme.test").id, fred_m.id)


def test_removal_revokes_exactly_that_users_keys_in_that_workspace(app_context, demo):
    adam = demo.user("adam@acme.test")
    ava = demo.user("ava@acme.test")
    adams_acme = keys.create_key(demo.acme.id, adam.id, "Adam CI").key
    avas_acme = keys.create_key(demo.acme.id, ava.id, "Ava CI").key
    from fvapp.services import plans

    plans.set_plan(demo.fox.id, "pro", None)
    adams_fox = keys.create_key(demo.fox.id, adam.id, "Adam Fox").key

    preview = keys.active_keys_of_creator(demo.acme.id, adam.id)
    assert [k.id for k in preview] == [adams_acme.id]

    removal = members.remove_member(demo.acme.id, ava.id, _member(demo, "adam@acme.test").id)
    assert [k.id for k in removal.revoked] == [adams_acme.id]
    db.session.expire_all()
    assert db.session.get(ApiKey, adams_acme.id).revoked_reason == "creator removed from workspace"
    assert db.session.get(ApiKey, adams_acme.id).revoked_by_id == ava.id
    assert db.session.get(ApiKey, avas_acme.id).revoked_at is None
    assert db.session.get(ApiKey, adams_fox.id).revoked_at is None
    assert _member(demo, "adam@acme.test") is None
    assert _member(demo, "adam@acme.test", demo.fox) is not None
    actions = [e.action for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.workspace_id == demo.acme.id))]
    assert "member.removed" in actions and actions.count("api_key.revoked") == 1


# -- HTTP ---------------------------------------------------------------------------------


def test_members_page_shows_actions_only_to_managers(browser_factory, demo):
    member = browser_factory()
    member.login("mia@acme.test")
    page = member.get("/settings/members").text
    assert "Add member" not in page and "Change role" not in page
    admin = browser_factory()
    admin.login("adam@acme.test")
    page = admin.get("/settings/members").text
    assert "Add member" in page
    assert "Change role of Mia Member" in page and "Change role of Ava Owner" not in page
    assert "Only owners change owners" in page


def test_member_cannot_reach_any_member_action_by_crafting_requests(app, browser, demo):
    browser.login("mia@acme.test")
    with app.app_context():
        before = _snapshot()
        adam_m = _member(demo, "adam@acme.test")
    assert browser.post("/settings/members", {"email": "fred@fox.test", "role": "member"},
                        htmx=True).status_code == 404
    assert browser.get(f"/settings/members/{adam_m.id}/role", htmx=True).status_code == 404
    assert browser.post(f"/settings/members/{adam_m.id}/role", {"role": "member"},
                        htmx=True).status_code == 404
    assert browser.get(f"/settings/members/{adam_m.id}/remove").status_code == 404
    assert browser.post(f"/settings/members/{adam_m.id}/remove", htmx=True).status_code == 404
    with app.app_context():
        assert _snapshot() == before


def test_add_member_over_htmx_refreshes_the_section_and_422_on_error(browser, demo):
    browser.login("ava@acme.test")
    bad = browser.post("/settings/members", {"email": "ghost@x.test", "role": "member"}, htmx=True)
    assert bad.status_code == 422
    assert "No ForceVue account uses ghost@x.test" in bad.text and "<html" not in bad.text
    ok = browser.post("/settings/members", {"email": "fred@fox.test", "role": "admin"}, htmx=True)
    assert ok.status_code == 200
    assert "fred@fox.test" in ok.text and 'id="members"' in ok.text
    assert "Fred Free was added as admin" in ok.text


def test_remove_confirmation_lists_the_keys_that_will_stop(app, browser, demo):
    with app.app_context():
        keys.create_key(demo.acme.id, demo.user("adam@acme.test").id, "Deploy bot")
        adam_m = _member(demo, "adam@acme.test")
    browser.login("ava@acme.test")
    dialog = browser.get(f"/settings/members/{adam_m.id}/remove", htmx=True)
    assert dialog.status_code == 200
    assert "<dialog" in dialog.text and "Remove Adam Admin from Acme Analytics?" in dialog.text
    assert "1 API key will stop working" in dialog.text and "Deploy bot" in dialog.text
    assert "fvk_live_" in dialog.text  # the display prefix, never more
    page = browser.get(f"/settings/members/{adam_m.id}/remove")  # without JavaScript
    assert "<html" in page.text and "Remove member" in page.text

    done = browser.post(f"/settings/members/{adam_m.id}/remove", htmx=True)
    assert done.status_code == 200
    assert done.headers["HX-Retarget"] == "#members"
    assert "closeDialog" in done.headers["HX-Trigger"]
    assert "adam@acme.test" not in done.text
    assert "1 API key revoked" in done.text


def test_last_owner_refusal_is_shown_and_changes_nothing(app, browser, demo):
    browser.login("ava@acme.test")
    with app.app_context():
        ava_m = _member(demo, "ava@acme.test")
    dialog = browser.get(f"/settings/members/{ava_m.id}/remove", htmx=True).text
    assert "You are the only owner" in dialog and "Leave workspace" not in dialog
    refused = browser.post(f"/settings/members/{ava_m.id}/remove", htmx=True)
    assert refused.status_code == 422 and "only owner" in refused.text
    refused = browser.post(f"/settings/members/{ava_m.id}/role", {"role": "member"}, htmx=True)
    assert refused.status_code == 422 and "only owner" in refused.text
    with app.app_context():
        assert _member(demo, "ava@acme.test").role == "owner"


def test_change_role_without_javascript(app, browser, demo):
    browser.login("ava@acme.test")
    with app.app_context():
        mia_m = _member(demo, "mia@acme.test")
    page = browser.get(f"/settings/members/{mia_m.id}/role")
    assert page.status_code == 200 and "Save role" in page.text
    done = browser.post(f"/settings/members/{mia_m.id}/role", {"role": "admin"})
    assert done.status_code == 303 and done.headers["Location"] == "/settings/members"
    with app.app_context():
        assert _member(demo, "mia@acme.test").role == "admin"
    assert "Mia Member is now admin" in browser.get("/settings/members").text


def test_csrf_is_required_for_member_changes(app, browser, demo):
    browser.login("ava@acme.test")
    with app.app_context():
        mia_m = _member(demo, "mia@acme.test")
    assert browser.post(f"/settings/members/{mia_m.id}/remove", htmx=True,
                        csrf=False).status_code == 400
    with app.app_context():
        assert _member(demo, "mia@acme.test") is not None


def test_removed_user_loses_the_workspace_at_once(app, browser_factory, demo):
    mia = browser_factory()
    mia.login("mia@acme.test")
    assert "Acme Analytics" in mia.get("/").text
    with app.app_context():
        members.remove_member(demo.acme.id, demo.user("ava@acme.test").id,
                              _member(demo, "mia@acme.test").id)
    response = mia.get("/")
    assert response.status_code == 403
    assert "not a member of any workspace" in response.text


def test_admin_crafting_owner_only_member_requests_is_refused(app, browser, demo):
    browser.login("adam@acme.test")
    with app.app_context():
        before = _snapshot()
        ava_m, mia_m = _member(demo, "ava@acme.test"), _member(demo, "mia@acme.test")
    refused = browser.post(f"/settings/members/{ava_m.id}/role", {"role": "member"}, htmx=True)
    assert refused.status_code == 422 and "Only an owner can change an owner" in refused.text
    refused = browser.post(f"/settings/members/{ava_m.id}/remove", htmx=True)
    assert refused.status_code == 422 and "Only an owner can remove an owner" in refused.text
    refused = browser.post(f"/settings/members/{mia_m.id}/role", {"role": "owner"}, htmx=True)
    assert refused.status_code == 422 and "Only an owner can make someone an owner" in refused.text
    refused = browser.post("/settings/members", {"email": "fred@fox.test", "role": "owner"},
                           htmx=True)
    assert refused.status_code == 422 and "Only an owner can make someone an owner" in refused.text
    assert browser.post("/settings/subscription", {"plan": "free"}).status_code == 404
    with app.app_context():
        assert _snapshot() == before
        assert demo.acme.plan == "pro"


def test_bad_member_ids_are_404_not_500(app, browser, demo):
    browser.login("ava@acme.test")
    with app.app_context():
        fred_m = _member(demo, "fred@fox.test", demo.fox)
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", str(fred_m.id)):
        assert browser.get(f"/settings/members/{bad}/remove", htmx=True).status_code == 404
        assert browser.post(f"/settings/members/{bad}/role", {"role": "admin"},
                            htmx=True).status_code == 404


def test_keys_revoked_by_a_removal_say_member_removed_in_row_detail_and_activity(app, browser, demo):
    with app.app_context():
        key_id = keys.create_key(demo.acme.id, demo.user("adam@acme.test").id, "Deploy bot").key.id
        adam_m = _member(demo, "adam@acme.test")
    browser.login("ava@acme.test")
    assert browser.post(f"/settings/members/{adam_m.id}/remove").status_code == 303
    row = browser.get("/settings/api-keys").text
    row = row[row.index(f'<tr id="key-{key_id}"'):]
    assert "by Member removed" in row[:row.index("</tr>")]
    detail = browser.get(f"/settings/api-keys/{key_id}").text
    assert "by Member removed" in detail and "creator removed from workspace" in detail
    activity = browser.get("/settings/activity").text
    revoked = activity[activity.index("Revoked API key Deploy bot") - 400:activity.index("Revoked API key Deploy bot")]
    assert "Member removed" in revoked and "Ava Owner" not in revoked.split("<tr>")[-1]
