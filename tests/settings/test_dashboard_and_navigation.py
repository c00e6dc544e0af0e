"""The app shell: dashboard, initiatives, workspace switcher, settings sections, scoping."""

import pytest
from flask import url_for
from sqlalchemy import select

from fvapp import api_app
from fvapp.models import Initiative
from fvapp.services import initiatives
from fvapp.settings import nav


def test_dashboard_lists_initiatives_newest_first(app, browser, demo):
    with app.app_context():
        ava = demo.user("ava@acme.test")
        initiatives.create_initiative(demo.acme.id, ava.id, "Older effort", None)
        initiatives.create_initiative(demo.acme.id, ava.id, "Newer effort", "with words")
    browser.login("ava@acme.test")
    page = browser.get("/").text
    assert page.index("Newer effort") < page.index("Older effort")


def test_create_initiative_through_the_form(browser, demo):
    browser.login("ava@acme.test")
    response = browser.post("/initiatives", {"title": "  Launch v2  ", "description": "Big"})
    assert response.status_code == 303
    item = demo.scalar(select(Initiative))
    assert item.title == "Launch v2" and item.workspace_id == demo.acme.id
    assert "Launch v2" in browser.get("/").text


@pytest.mark.parametrize(
    ("title", "description", "message"),
    [("", "", "Enter a title."), ("   ", "", "Enter a title."),
     ("x" * 201, "", "at most 200"), ("ok", "d" * 10001, "at most 10000")],
)
def test_bad_initiative_input_is_a_clear_error_and_nothing_is_created(
    browser, demo, title, description, message
):
    browser.login("ava@acme.test")
    response = browser.post("/initiatives", {"title": title, "description": description})
    assert response.status_code == 422
    assert message in response.text
    assert demo.scalar(select(Initiative)) is None


def test_title_of_200_characters_is_accepted(browser, demo):
    browser.login("ava@acme.test")
    assert browser.post("/initiatives", {"title": "t" * 200}).status_code == 303


def test_archive_and_unarchive_with_show_archived_toggle(app, browser, demo):
    with app.app_context():
        item_id = initiatives.create_initiative(demo.acme.id, None, "Old plan", None).id
    browser.login("mia@acme.test")  # members use the app too
    assert browser.post(f"/initiatives/{item_id}/archive").status_code == 303
    assert "Old plan" not in browser.get("/", htmx=True).text
    archived = browser.get("/?archived=1").text
    assert "Old plan" in archived and "Show active" in archived
    assert demo.get(Initiative, item_id).archived_at is not None
    browser.post(f"/initiatives/{item_id}/unarchive")
    assert demo.get(Initiative, item_id).archived_at is None
    assert "Old plan" in browser.get("/", htmx=True).text


def test_another_workspaces_initiative_is_a_404(app, browser, demo):
    with app.app_context():
        theirs = initiatives.create_initiative(demo.fox.id, None, "Fox secret", None).id
    browser.login("ava@acme.test")
    assert browser.post(f"/initiatives/{theirs}/archive").status_code == 404
    assert browser.post("/initiatives/not-a-uuid/archive").status_code == 404
    assert demo.get(Initiative, theirs).archived_at is None
    assert "Fox secret" not in browser.get("/").text


def test_htmx_request_gets_the_fragment_and_a_page_gets_the_page(browser, demo):
    browser.login("ava@acme.test")
    page = browser.get("/")
    fragment = browser.get("/", htmx=True)
    assert "<html" in page.text and "<html" not in fragment.text
    assert 'id="initiatives"' in fragment.text
    assert "HX-Request" in page.headers.get("Vary", "")


def test_switcher_changes_workspace_and_the_choice_survives_navigation(app, browser, demo):
    browser.login("adam@acme.test")
    assert "Switch workspace" in browser.get("/").text
    with app.app_context():
        initiatives.create_initiative(demo.fox.id, None, "Fox plan", None)
    assert browser.switch(demo.fox.id).status_code == 303
    assert "Fox plan" in browser.get("/").text
    assert "Fox Free" in browser.get("/settings/general").text
    assert "Fox plan" in browser.get("/?archived=0").text


def test_switcher_refuses_a_workspace_you_are_not_in(browser, demo):
    browser.login("mia@acme.test")
    assert browser.switch(demo.fox.id).status_code == 404
    assert browser.switch("garbage").status_code == 404
    assert "Acme Analytics" in browser.get("/").text


def test_single_workspace_user_sees_no_switcher_menu(browser, demo):
    browser.login("ava@acme.test")
    assert "Switch workspace" not in browser.get("/").text


# -- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "plan", "expected"),
    [
        ("owner", "pro", ["General", "Members", "Subscription", "API Keys", "Activity"]),
        ("admin", "internal", ["General", "Members", "Subscription", "API Keys", "Activity"]),
        ("admin", "free", ["General", "Members", "Subscription", "Activity"]),
        ("member", "pro", ["General", "Members", "Subscription"]),
        ("member", "free", ["General", "Members", "Subscription"]),
        ("owner", "team", ["General", "Members", "Subscription", "API Keys", "Activity"]),
        ("owner", "consultant", ["General", "Members", "Subscription", "API Keys", "Activity"]),
    ],
)
def test_settings_sections_come_from_role_and_plan(role, plan, expected):
    assert [s.label for s in nav.settings_sections(role, plan)] == expected


def test_settings_nav_shows_the_computed_sections(browser, demo):
    browser.login("mia@acme.test")
    page = browser.get("/settings/general").text
    assert "Members" in page and "API Keys" not in page and "Activity" not in page
    browser.post("/logout")
    browser.login("ava@acme.test")
    page = browser.get("/settings/general").text
    assert "API Keys" in page and "Activity" in page


def test_owner_and_admin_rename_members_cannot(browser_factory, demo):
    admin = browser_factory()
    admin.login("adam@acme.test")
    assert admin.post("/settings/general", {"name": "Acme Inc"}).status_code == 303
    acme = demo.workspace("Acme Inc")
    assert acme is not None
    member = browser_factory()
    member.login("mia@acme.test")
    assert member.post("/settings/general", {"name": "Hacked"}).status_code == 404
    assert demo.workspace("Acme Inc") is not None


def test_rename_validation(browser, demo):
    browser.login("ava@acme.test")
    response = browser.post("/settings/general", {"name": "   "})
    assert response.status_code == 422 and "Enter a workspace name" in response.text
    response = browser.post("/settings/general", {"name": "n" * 101})
    assert response.status_code == 422 and "at most 100" in response.text
    assert demo.acme is not None


def test_members_list_and_subscription_are_visible_to_members(browser, demo):
    browser.login("mia@acme.test")
    members = browser.get("/settings/members").text
    for email in ("ava@acme.test", "adam@acme.test", "mia@acme.test"):
        assert email in members
    assert "fred@fox.test" not in members
    subscription = browser.get("/settings/subscription").text
    assert "Pro" in subscription and "Internal" not in subscription
    assert "Only the workspace owner can change the plan" in subscription


def test_activity_is_hidden_from_members(browser, demo):
    browser.login("mia@acme.test")
    assert browser.get("/settings/activity").status_code == 404


def test_unknown_page_is_an_html_404(browser, demo):
    browser.login("ava@acme.test")
    response = browser.get("/no-such-page")
    assert response.status_code == 404
    assert "text/html" in response.content_type


# -- one WSGI app: the pages, and the API app mounted under /api -----------------------------------


def test_url_for_in_the_api_app_gives_paths_under_its_mount_point(app):
    api = api_app(app)
    with api.test_request_context("/v1/me", base_url="http://localhost/api"):
        assert url_for("api.me") == "/api/v1/me"
        assert url_for("mcp.manifest", _external=True) == "http://localhost/api/mcp"
        assert url_for("static", filename="css/app.css") == "/static/css/app.css"  # the pages'


def test_each_app_links_the_others_pages_from_the_same_root(app, browser, demo):
    client = app.test_client()
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert 'spec-url="/api/v1/openapi.json"' in docs.text
    assert 'src="/static/vendor/redoc/redoc.standalone.js"' in docs.text
    # Served below a path of its own (a proxy's SCRIPT_NAME): both apps build under it.
    prefixed = client.get("/api/v1/docs", base_url="http://localhost/fv")
    assert 'spec-url="/fv/api/v1/openapi.json"' in prefixed.text
    assert 'src="/fv/static/vendor/redoc/redoc.standalone.js"' in prefixed.text
    browser.login("ava@acme.test")
    page = browser.get("/settings/api-keys")
    assert page.status_code == 200
    for link in ('href="/api/v1/docs"', 'href="/api/v1/openapi.json"', 'href="/api/mcp"',
                 '"url": "http://localhost/api/mcp"'):
        assert link in page.text, link


def test_the_forwarded_client_reaches_both_apps(app_factory, demo):
    proxied = app_factory(TRUSTED_PROXY_HOPS=1)
    client = proxied.test_client()
    forwarded = {"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Proto": "https"}
    api = client.get("/api/v1/nowhere", headers=forwarded)
    page = client.get("/nowhere", headers=forwarded)
    # https as the proxy said: both answers carry HSTS (fvapp/security.py, on request.is_secure)
    assert api.status_code == page.status_code == 404
    assert "Strict-Transport-Security" in api.headers
    assert "Strict-Transport-Security" in page.headers
