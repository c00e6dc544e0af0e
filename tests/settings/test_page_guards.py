"""Cross-cutting browser-side guards: the workspace a page was made for, htmx and sign-in,
redirect targets, proxies, paging bounds."""

import pytest
from sqlalchemy import select

from fvapp.models import ApiKey, AuditEvent, Initiative, Membership
from fvapp.services import plans
from tests.support.browser import Browser


def _stale_tab(browser, demo):
    """Adam loads Acme's pages, then switches to Fox Free in another tab."""
    browser.login("adam@acme.test")
    page = browser.get("/settings/general").text
    assert f'name="workspace_guard" value="{demo.acme.id}"' in page
    assert f'"X-Workspace": "{demo.acme.id}"' in page
    with demo.app.app_context():
        plans.set_plan(demo.fox.id, "pro", None)
    browser.switch(demo.fox.id)


def test_a_form_made_for_another_workspace_changes_nothing(browser, demo):
    _stale_tab(browser, demo)
    acme = str(demo.acme.id)
    for path, data in [
        ("/settings/general", {"name": "Renamed by a stale tab"}),
        ("/initiatives", {"title": "Meant for Acme"}),
        ("/settings/api-keys", {"name": "Meant for Acme"}),
        ("/settings/members", {"email": "fred@fox.test", "role": "member"}),
    ]:
        response = browser.post(path, {**data, "workspace_guard": acme})
        assert response.status_code == 409, path
        assert "switched workspace to Fox Free" in response.text
    assert demo.fox.name == "Fox Free"
    assert demo.scalar(select(Initiative)) is None
    assert demo.scalar(select(ApiKey)) is None


def test_an_htmx_request_made_for_another_workspace_changes_nothing(browser, demo):
    _stale_tab(browser, demo)
    response = browser.post("/settings/api-keys", {"name": "Meant for Acme"}, htmx=True,
                            headers={"X-Workspace": str(demo.acme.id)})
    assert response.status_code == 409
    assert demo.scalar(select(ApiKey)) is None
    # the current workspace's own header passes
    response = browser.post("/settings/api-keys", {"name": "For Fox"}, htmx=True,
                            headers={"X-Workspace": str(demo.fox.id)})
    assert response.status_code == 200
    assert demo.scalar(select(ApiKey)).workspace_id == demo.fox.id


def test_switching_workspace_is_not_blocked_by_the_guard(browser, demo):
    browser.login("adam@acme.test")
    response = browser.post("/workspace", {"workspace_id": str(demo.fox.id),
                                           "workspace_guard": str(demo.acme.id)})
    assert response.status_code == 303
    assert "Fox Free" in browser.get("/settings/general").text


def test_htmx_request_without_a_session_is_told_to_load_the_login_page(browser, demo):
    response = browser.client.get(
        "/settings/api-keys/new",
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/settings/api-keys"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/settings/api-keys"
    assert response.text == ""
    plain = browser.client.get("/settings/members")
    assert plain.status_code == 302 and plain.headers["Location"].startswith("/login?next=")


def test_control_characters_in_next_go_to_the_dashboard(browser, demo):
    for target in ("/%0aX", "/%0d%0aSet-Cookie:x=1", "/%09x", "/%7fx"):
        browser.refresh_token("/login")
        response = browser.client.post(
            f"/login?next={target}",
            data={"email": "ava@acme.test", "password": demo.password, "csrf_token": browser.token},
        )
        assert response.status_code == 303
        assert response.headers["Location"] == "/"
        browser.refresh_token("/")
        browser.post("/logout")


def test_activity_page_numbers_beyond_any_history_are_not_a_500(browser, demo):
    browser.login("ava@acme.test")
    for page in ("9223372036854775807", "-5", "0", "1e9"):
        response = browser.get(f"/settings/activity?page={page}")
        assert response.status_code == 200, page


@pytest.mark.parametrize(("hops", "recorded"), [(1, "203.0.113.9"), (0, "127.0.0.1")],
                         ids=["behind-a-trusted-proxy", "no-trusted-proxies"])
def test_forwarded_headers_give_the_client_address_only_behind_a_trusted_proxy(
        app_factory, demo, hops, recorded):
    person = Browser(app_factory(TRUSTED_PROXY_HOPS=hops).test_client())  # 0 is the default
    person.login("ava@acme.test")
    person.post("/settings/general", {"name": "Acme Renamed"},
                headers={"X-Forwarded-For": "203.0.113.9"})
    event = demo.scalar(select(AuditEvent).where(AuditEvent.action == "workspace.renamed"))
    assert event.ip == recorded


def test_a_member_may_leave_and_the_last_owner_may_not(browser_factory, demo):
    mia = browser_factory()
    mia.login("mia@acme.test")
    mine = demo.scalar(select(Membership).where(
        Membership.user_id == demo.user("mia@acme.test").id))
    page = mia.get("/settings/members").text
    assert "Leave workspace" in page and "Remove Adam Admin" not in page
    dialog = mia.get(f"/settings/members/{mine.id}/remove", htmx=True).text
    assert "Leave Acme Analytics?" in dialog
    response = mia.post(f"/settings/members/{mine.id}/remove", htmx=True)
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/"
    assert demo.get(Membership, mine.id) is None
    event = demo.scalar(select(AuditEvent).where(AuditEvent.action == "member.removed"))
    assert event.actor_id == demo.user("mia@acme.test").id


def test_plan_form_error_over_htmx_lands_on_the_section(browser, demo):
    browser.login("ava@acme.test")
    response = browser.post("/settings/subscription", {"plan": "internal"}, htmx=True)
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#subscription"
    assert "closeDialog" in response.headers["HX-Trigger"]
    assert "Choose Free, Pro, Team or Consultant" in response.text


def test_cli_says_which_database_it_changes(runner, demo, database_url):
    result = runner.invoke(args=["set-plan", "Fox Free", "team"])
    assert result.exit_code == 0
    assert "Database: " in result.output
    assert "Database: " in runner.invoke(args=["seed-demo"]).output


def test_a_form_sent_after_the_session_ended_comes_back_to_its_page(browser, demo):
    from fvapp.services import accounts

    browser.login("ava@acme.test")
    with demo.app.app_context():
        accounts.end_all_sessions(demo.user("ava@acme.test"))  # signed out in another browser
    response = browser.post("/initiatives", {"title": "x"},
                            headers={"Referer": "http://localhost/?archived=1"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/"
    response = browser.post("/logout")
    assert "next=/logout" not in response.headers["Location"]


def test_a_double_slash_under_the_api_is_a_json_404_not_an_html_redirect(app, demo):
    response = app.test_client().post("/api/v1//initiatives", json={"title": "x"})
    assert response.status_code == 404
    assert response.is_json and response.json["code"] == "NOT_FOUND"


def test_seed_demo_refuses_a_production_database_unless_asked(app_factory, demo):
    production = app_factory(ENV_MODE="production", BCRYPT_ROUNDS=12)
    runner = production.test_cli_runner()
    refused = runner.invoke(args=["seed-demo"])
    assert refused.exit_code != 0 and "Refusing to seed" in refused.output
    allowed = runner.invoke(args=["seed-demo", "--allow-production"])
    assert allowed.exit_code == 0, allowed.output


def test_control_characters_and_direction_overrides_are_refused_in_names(browser, demo):
    from fvapp.models import ApiKey

    browser.login("adam@acme.test")
    for name in ("\u202eexe.txt", "CI\r\npipeline", "bell\x07", "esc\x1b[31m"):
        response = browser.post("/settings/api-keys", {"name": name}, htmx=True)
        assert response.status_code == 422, repr(name)
        assert "control characters" in response.text
    assert demo.scalar(select(ApiKey)) is None
    # tabs and line breaks are fine in a description, not in a title
    ok = browser.post("/initiatives", {"title": "Plan", "description": "a\r\n\tb"})
    assert ok.status_code == 303
    assert demo.scalar(select(Initiative)).description == "a\n\tb"
    assert browser.post("/initiatives", {"title": "a\tb"}).status_code == 422


def test_a_field_in_error_takes_the_focus(browser, demo):
    browser.login("ava@acme.test")
    page = browser.post("/initiatives", {"title": ""}).text
    assert 'aria-invalid="true"' in page
    field = page[page.index('id="title"') - 200: page.index('id="title"') + 200]
    assert "autofocus" in field and 'aria-describedby="title-error"' in field


def test_an_update_that_changes_nothing_keeps_updated_at(app_context, demo):
    from fvapp.services import initiatives

    item = initiatives.create_initiative(demo.acme.id, None, "Same", None)
    same = initiatives.update_initiative(demo.acme.id, item.id, title=" Same ", description=None,
                                         archived=False)
    assert same == item
    changed = initiatives.update_initiative(demo.acme.id, item.id, description="new")
    assert changed.updated_at > item.updated_at
    assert initiatives.get_initiative(demo.acme.id, item.id) == changed
