"""Settings → API Keys over HTTP: page or fragment, the create dialog and its 422, the one-time
reveal, revoke, the role and plan gates (404 with nothing changed), CSRF, downgrade/upgrade."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from fvapp.extensions import db
from fvapp.models import ApiKey, AuditEvent, utcnow
from fvapp.services import keys, plans, rules
from fvapp.services.errors import Forbidden

PAGE = "/settings/api-keys"
NEW = "/settings/api-keys/new"
KEY = re.compile(r"fvk_live_[0-9A-Za-z]{38}")
CONFIRM = "Any application using it loses access on its next request. This cannot be undone."


def revoke_url(key_id) -> str:
    return f"/settings/api-keys/{key_id}/revoke"


def state(demo):
    """Everything a request could change: every key's columns and every audit event."""
    with demo.app.app_context():
        rows = db.session.execute(sa.select(ApiKey.__table__).order_by(ApiKey.id)).all()
        events = db.session.execute(sa.select(AuditEvent.__table__).order_by(AuditEvent.id)).all()
    return [tuple(r) for r in rows], [tuple(e) for e in events]


def revealed(response) -> str:
    found = set(KEY.findall(response.text))
    assert len(found) == 1, found
    return found.pop()


def make_key(demo, name="CI pipeline", email="ava@acme.test", workspace=None):
    with demo.app.app_context():
        key = keys.create_key((workspace or demo.acme).id, demo.user(email).id, name).key
        db.session.refresh(key)  # loaded while its session lasts
    return key


@pytest.fixture
def adam(browser, demo):
    browser.login("adam@acme.test")
    return browser


# -- page and fragment ------------------------------------------------------------------------


def test_page_or_fragment_by_hx_request(adam):
    page = adam.get(PAGE)
    assert page.status_code == 200 and "<html" in page.text
    assert 'id="api-keys"' in page.text and "0 of 10 active keys" in page.text
    assert "Security guidance" in page.text and "Never commit a key to source control" in page.text
    assert re.search(r'href="/settings/api-keys" aria-current="page">API Keys<', page.text)
    assert "HX-Request" in page.headers.get("Vary", "")

    fragment = adam.get(PAGE, htmx=True)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.text.lstrip().startswith("<section") and 'id="api-keys"' in fragment.text
    assert 'hx-trigger="keysChanged from:body"' in fragment.text
    assert "Security guidance" not in fragment.text


def test_the_page_says_where_to_go_next(adam, app):
    text = adam.get(PAGE).text
    block = re.search(r'<nav class="keys-next" aria-labelledby="keys-next-title">.*?</nav>', text, re.S)
    assert block, "no “Where to go next” block"
    block = block.group(0)
    assert ">Where to go next</h3>" in block
    assert re.search(r'<a href="/api/v1/docs"[^>]*>REST API reference</a>\s*<span[^>]*>OpenAPI 3.1<', block)
    assert '<a href="/api/v1/openapi.json" type="application/json">openapi.json</a>' in block
    assert "<dd><code>http://localhost/api/v1</code></dd>" in block and "Authorization: Bearer" in block
    assert '<a href="/settings/subscription">Plans &amp; billing</a>' in block
    assert "where to go next" not in adam.get(PAGE, htmx=True).text.lower()  # the page's, not the fragment's

    # Both links lead somewhere real: the public OpenAPI 3.1 document and the plans.
    spec = app.test_client().get("/api/v1/openapi.json")
    assert spec.status_code == 200 and spec.get_json()["openapi"].startswith("3.1")
    assert "Pro" in adam.get("/settings/subscription").text


def test_the_create_dialog_is_a_dialog_for_htmx_and_a_page_without(adam):
    dialog = adam.get(NEW, htmx=True)
    assert dialog.status_code == 200 and "<html" not in dialog.text
    assert re.search(r'<dialog[^>]*aria-labelledby="key-create-title"', dialog.text)
    assert 'id="key-create-title"' in dialog.text and 'hx-post="/settings/api-keys"' in dialog.text
    assert ">Name</label>" in dialog.text and "tells your keys apart" in dialog.text

    page = adam.get(NEW)
    assert page.status_code == 200 and "<html" in page.text and "<dialog" not in page.text
    assert '<form method="post" action="/settings/api-keys"' in page.text
    assert 'name="csrf_token"' in page.text


def test_the_table_shows_who_when_last_used_and_status(adam, demo):
    used = make_key(demo, "Nightly export")
    idle = make_key(demo, "Idle key", email="adam@acme.test")
    with demo.app.app_context():
        db.session.get(ApiKey, used.id).last_used_at = utcnow() - timedelta(minutes=3)
        keys.revoke_keys_of_creator(demo.acme.id, demo.user("adam@acme.test").id,
                                    demo.user("ava@acme.test").id, keys.REASON_CREATOR_REMOVED)
        db.session.commit()
    text = adam.get(PAGE, htmx=True).text
    assert "1 of 10 active keys" in text
    assert used.prefix in text and idle.prefix in text
    assert re.search(r'<time datetime="[^"]+Z" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">3 minutes ago</time>',
                     text)
    assert ">Never<" in text and "by Ava Owner" in text and "by Adam Admin" in text
    # The row names the revoker as Activity does; the reason itself is in the detail view.
    assert "Revoked" in text and "by Member removed" in text and "creator removed" not in text
    assert text.index("Nightly export") < text.index("Idle key")  # active first
    assert 'aria-label="Revoke Nightly export"' in text
    assert 'aria-label="Revoke Idle key"' not in text  # revoked keys have no revoke button


# -- create and the one-time reveal ---------------------------------------------------------


def test_create_reveals_the_key_once_and_never_again(adam, demo, caplog):
    caplog.set_level(logging.DEBUG)
    response = adam.post(PAGE, {"name": "CI pipeline"}, htmx=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "keysChanged" in response.headers["HX-Trigger"]
    assert "Location" not in response.headers
    clear = revealed(response)
    assert '<dialog' in response.text and 'hx-history="false"' in response.text
    assert "The key is shown only once" in response.text
    assert 'data-copy-target="new-key"' in response.text and ">Done<" in response.text

    key = demo.scalar(sa.select(ApiKey))
    assert key.name == "CI pipeline" and key.created_by_id == demo.user("adam@acme.test").id
    assert key.key_hash == hashlib.sha256(clear.encode()).hexdigest()
    assert key.prefix == clear[:13] + "…"

    body = clear[9:41]
    for later in (adam.get(PAGE), adam.get(PAGE, htmx=True), adam.get(NEW), adam.get(NEW, htmx=True),
                  adam.get(revoke_url(key.id)), adam.get(revoke_url(key.id), htmx=True),
                  adam.get("/settings/activity"), adam.get("/")):
        assert later.status_code == 200
        assert clear not in later.text and body not in later.text
    assert key.prefix in adam.get(PAGE).text
    with adam.client.session_transaction() as session:
        assert body not in repr(dict(session))
    assert body not in caplog.text


def test_create_without_javascript_answers_the_reveal_page(adam):
    response = adam.post(PAGE, {"name": "CI pipeline"})
    assert response.status_code == 200 and "<html" in response.text and "<dialog" not in response.text
    assert response.headers["Cache-Control"] == "no-store" and "HX-Trigger" not in response.headers
    clear = revealed(response)
    assert '<a class="btn btn-primary" href="/settings/api-keys">Done</a>' in response.text
    after = adam.get(PAGE)
    assert clear not in after.text and clear[:13] + "…" in after.text


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize(
    ("name", "message"),
    [("", "Give the key a name"), ("   ", "Give the key a name"), ("x" * 101, "at most 100 characters")],
)
def test_bad_names_rerender_the_dialog_with_422_and_create_nothing(adam, demo, htmx, name, message):
    response = adam.post(PAGE, {"name": name}, htmx=htmx)
    assert response.status_code == 422
    assert message in response.text and 'aria-invalid="true"' in response.text
    assert ("<dialog" in response.text) is htmx and ("<html" in response.text) is not htmx
    assert "HX-Trigger" not in response.headers
    assert not KEY.search(response.text)
    assert state(demo) == ([], [])
    if len(name) > 100:
        assert f'value="{name}"' in response.text  # what was typed comes back to be fixed


def test_html_in_a_name_is_shown_escaped(adam, demo):
    name = '<script>alert("x")</script>'
    adam.post(PAGE, {"name": name}, htmx=True)
    key = demo.scalar(sa.select(ApiKey))
    assert key.name == name
    for response in (adam.get(PAGE), adam.get(revoke_url(key.id), htmx=True)):
        assert "&lt;script&gt;alert(" in response.text and "<script>alert(" not in response.text


def test_at_the_cap_the_button_is_disabled_and_the_server_refuses(adam, demo):
    for n in range(keys.MAX_ACTIVE_KEYS):
        make_key(demo, f"Service {n}")
    page = adam.get(PAGE).text
    assert "10 of 10 active keys" in page and "Revoke a key to create another" in page
    # aria-disabled, not disabled: the button stays reachable by keyboard with its reason.
    assert re.search(r'<button type="button" aria-disabled="true" aria-describedby="create-key-reason"'
                     r'\s+id="create-key"', page)
    assert not re.search(r'<button[^>]*id="create-key"[^>]*\sdisabled[\s>]', page)
    dialog = adam.get(NEW, htmx=True).text
    # The reason instead of a name field next to a dead button.
    assert "Revoke a key to create another" in dialog and 'name="name"' not in dialog and 'type="submit"' not in dialog

    before = state(demo)
    response = adam.post(PAGE, {"name": "Eleventh"}, htmx=True)
    assert response.status_code == 422 and "<dialog" in response.text
    assert "already has 10 active keys" in response.text and "Revoke a key to create another" in response.text
    assert state(demo) == before


def test_the_page_the_dialog_and_the_server_ask_one_cap_function(adam, demo, monkeypatch):
    monkeypatch.setattr(keys, "cap_reached", lambda active: True)  # with no key at all
    page = adam.get(PAGE).text
    assert "0 of 10 active keys" in page and "Revoke a key to create another" in page
    assert re.search(r'<button[^>]*aria-disabled="true"[^>]*\sid="create-key"', page)
    assert 'type="submit"' not in adam.get(NEW, htmx=True).text
    response = adam.post(PAGE, {"name": "First"}, htmx=True)
    assert response.status_code == 422 and "Revoke a key to create another" in response.text
    assert state(demo) == ([], [])


# -- revoke -------------------------------------------------------------------------------------


def test_revoke_through_the_confirmation_updates_the_row_in_place(adam, demo):
    key = make_key(demo)
    confirm = adam.get(revoke_url(key.id), htmx=True)
    assert confirm.status_code == 200 and "<html" not in confirm.text
    assert re.search(r'<dialog[^>]*aria-labelledby="key-revoke-title"[^>]*role="alertdialog"', confirm.text)
    assert "Revoke “CI pipeline”?" in confirm.text and CONFIRM in confirm.text
    assert ">Revoke key</button>" in confirm.text and ">Cancel</a>" in confirm.text

    response = adam.post(revoke_url(key.id), htmx=True)
    assert response.status_code == 200
    assert "closeDialog" in response.headers["HX-Trigger"]
    assert response.headers["HX-Retarget"] == "#api-keys" and response.headers["HX-Reswap"] == "outerHTML"
    assert response.text.lstrip().startswith("<section") and "“CI pipeline” was revoked" in response.text
    assert "Revoked" in response.text and "by Adam Admin" in response.text
    assert 'aria-label="Revoke CI pipeline"' not in response.text
    revoked = demo.get(ApiKey, key.id)
    assert revoked.revoked_at is not None and revoked.revoked_by_id == demo.user("adam@acme.test").id

    again = adam.post(revoke_url(key.id), htmx=True)  # idempotent
    assert again.status_code == 200
    assert demo.get(ApiKey, key.id).revoked_at == revoked.revoked_at
    with demo.app.app_context():
        actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert sorted(actions) == ["api_key.created", "api_key.revoked"]


def test_revoke_without_javascript_is_a_page_and_a_redirect(adam, demo):
    key = make_key(demo)
    page = adam.get(revoke_url(key.id))
    assert "<html" in page.text and "<dialog" not in page.text and "Revoke “CI pipeline”?" in page.text
    assert f'<form method="post" action="{revoke_url(key.id)}"' in page.text
    response = adam.post(revoke_url(key.id))
    assert response.status_code == 303 and response.headers["Location"].endswith(f"{PAGE}#key-{key.id}")
    after = adam.get(PAGE).text
    assert "“CI pipeline” was revoked" in after and "Revoked" in after
    assert 'aria-label="Revoke CI pipeline"' not in after


def test_another_workspaces_key_is_a_404(adam, demo):
    with demo.app.app_context():
        plans.set_plan(demo.fox.id, "pro", actor_id=None)
    theirs = make_key(demo, "Fox key", email="fred@fox.test", workspace=demo.fox)
    before = state(demo)
    for key_id in (theirs.id, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        assert adam.get(revoke_url(key_id), htmx=True).status_code == 404
        assert adam.post(revoke_url(key_id), htmx=True).status_code == 404
        assert adam.post(revoke_url(key_id)).status_code == 404
    assert state(demo) == before


# -- gates ----------------------------------------------------------------------------------------


def section_requests(key_id):
    """Every URL of the section, as htmx and as a plain browser would send it."""
    for htmx in (True, False):
        yield "get", PAGE, htmx
        yield "get", NEW, htmx
        yield "post", PAGE, htmx
        yield "get", revoke_url(key_id), htmx
        yield "post", revoke_url(key_id), htmx


@pytest.mark.parametrize(
    ("email", "switch_to_fox"),
    [("mia@acme.test", False), ("fred@fox.test", False), ("adam@acme.test", True)],
    ids=["member", "free-owner", "free-admin"],
)
def test_members_and_free_workspaces_get_404_everywhere_and_nothing_changes(
    browser, demo, email, switch_to_fox
):
    with demo.app.app_context():
        plans.set_plan(demo.fox.id, "pro", actor_id=None)
    fox_key = make_key(demo, "Made before the downgrade", email="fred@fox.test", workspace=demo.fox)
    with demo.app.app_context():
        plans.set_plan(demo.fox.id, "free", actor_id=None)
    acme_key = make_key(demo)
    key_id = acme_key.id if email == "mia@acme.test" else fox_key.id
    browser.login(email)
    if switch_to_fox:
        assert browser.switch(demo.fox.id).status_code == 303

    assert 'href="/settings/api-keys"' not in browser.get("/settings/general").text
    before = state(demo)
    for method, path, htmx in section_requests(key_id):
        if method == "get":
            response = browser.get(path, htmx=htmx)
        else:
            response = browser.post(path, {"name": "Sneaky"}, htmx=htmx)
        assert response.status_code == 404, (method, path, htmx)
        assert "fvk_live_" not in response.text
    assert state(demo) == before


def section_status(person, key_id) -> list[int]:
    statuses = []
    for method, path, htmx in section_requests(key_id):
        if method == "get":
            statuses.append(person.get(path, htmx=htmx).status_code)
        else:
            statuses.append(person.post(path, {"name": "Sneaky"}, htmx=htmx).status_code)
    return statuses


def test_the_rule_is_one_function(browser_factory, demo, monkeypatch):
    """The nav, every view and the service all ask rules.can_manage_keys: turn its answer
    around and each of them follows, for a role and plan that would say the opposite."""
    assert rules.can_manage_keys("owner", "pro")
    assert rules.can_manage_keys("admin", "consultant")
    assert rules.can_manage_keys("admin", "internal")
    assert not rules.can_manage_keys("member", "team")
    assert not rules.can_manage_keys("owner", "free")
    assert not rules.can_manage_keys(None, "pro")

    ava, mia = demo.user("ava@acme.test"), demo.user("mia@acme.test")
    key = make_key(demo)
    owner = browser_factory()
    owner.login("ava@acme.test")
    assert 'href="/settings/api-keys"' in owner.get("/settings/general").text

    asked = []
    monkeypatch.setattr(rules, "can_manage_keys", lambda role, plan: asked.append(role) or False)
    assert 'href="/settings/api-keys"' not in owner.get("/settings/general").text
    before = state(demo)
    assert section_status(owner, key.id) == [404] * 10
    assert state(demo) == before
    with demo.app.app_context(), pytest.raises(Forbidden):
        keys.create_key(demo.acme.id, ava.id, "Owner, refused")
    with demo.app.app_context(), pytest.raises(Forbidden):
        keys.revoke_key(demo.acme.id, key.id, ava.id)
    assert state(demo) == before and set(asked) == {"owner"}

    monkeypatch.setattr(rules, "can_manage_keys", lambda role, plan: True)
    member = browser_factory()
    member.login("mia@acme.test")
    nav = member.get("/settings/general").text
    assert re.search(r'<a href="/settings/api-keys"\s*>API Keys</a>', nav)
    assert member.get(PAGE).status_code == 200
    with demo.app.app_context():
        assert keys.create_key(demo.acme.id, mia.id, "Member, let in").key.is_active


def test_owners_and_admins_of_paid_workspaces_are_let_in(browser_factory, demo):
    for email in ("ava@acme.test", "adam@acme.test"):
        person = browser_factory()
        person.login(email)
        assert person.get(PAGE).status_code == 200
        assert 'href="/settings/api-keys"' in person.get("/settings/general").text


def test_signed_out_requests_go_to_the_login(app, demo):
    client = app.test_client()
    response = client.get(PAGE)
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_keys_survive_a_downgrade_and_reappear_after_an_upgrade(adam, browser_factory, demo):
    clear = revealed(adam.post(PAGE, {"name": "CI pipeline"}, htmx=True))
    with demo.app.app_context():
        plans.set_plan(demo.acme.id, "free", actor_id=demo.user("ava@acme.test").id)
    ava = browser_factory()
    ava.login("ava@acme.test")
    assert adam.get(PAGE).status_code == 404 and ava.get(PAGE).status_code == 404
    assert demo.scalar(sa.select(ApiKey)).revoked_at is None  # hidden, not revoked

    with demo.app.app_context():
        plans.set_plan(demo.acme.id, "pro", actor_id=demo.user("ava@acme.test").id)
    page = ava.get(PAGE).text
    assert "CI pipeline" in page and clear[:13] + "…" in page and "1 of 10 active keys" in page
    assert 'aria-label="Revoke CI pipeline"' in page and clear not in page


# -- CSRF -------------------------------------------------------------------------------------------


def test_state_changes_need_the_csrf_token(adam, demo):
    key = make_key(demo)
    before = state(demo)
    assert adam.post(PAGE, {"name": "No token"}, htmx=True, csrf=False).status_code == 400
    assert adam.post(PAGE, {"name": "No token"}, csrf=False).status_code == 400
    assert adam.post(PAGE, {"name": "Bad token"}, htmx=True, csrf=False,
                     headers={"X-CSRFToken": "forged"}).status_code == 400
    assert adam.post(revoke_url(key.id), htmx=True, csrf=False).status_code == 400
    assert adam.post(revoke_url(key.id), csrf=False).status_code == 400
    assert state(demo) == before
    assert adam.post(revoke_url(key.id), htmx=True).status_code == 200  # with the header: fine


def test_resending_the_same_create_form_does_not_mint_a_second_key(browser, demo):
    """Without JavaScript, reloading the reveal page re-sends its POST: nothing new is created."""
    browser.login("adam@acme.test")
    form = browser.get("/settings/api-keys/new").text
    once = re.search(r'name="form_once" type="hidden" value="([^"]+)"', form).group(1)
    first = browser.post("/settings/api-keys", {"name": "Reloaded", "form_once": once})
    assert first.status_code == 200 and "fvk_live_" in first.text
    again = browser.post("/settings/api-keys", {"name": "Reloaded", "form_once": once})
    assert again.status_code == 200
    assert "already created" in again.text
    assert not re.search(r"fvk_live_[0-9A-Za-z]{38}", again.text)
    assert demo.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 1
    fresh = browser.get("/settings/api-keys/new").text
    assert re.search(r'name="form_once" type="hidden" value="([^"]+)"', fresh).group(1) != once


# -- real data: one line of Last used, the Revoked group, names ---------------------------------


def revoked_keys(demo, count, prefix="Old script"):
    made = []
    with demo.app.app_context():
        ava = demo.user("ava@acme.test")
        for n in range(count):
            key = keys.create_key(demo.acme.id, ava.id, f"{prefix} {n + 1}").key
            keys.revoke_key(demo.acme.id, key.id, ava.id)
            db.session.execute(sa.update(ApiKey).where(ApiKey.id == key.id)
                               .values(revoked_at=utcnow() - timedelta(days=count - n)))
            db.session.commit()
            made.append(key.id)
    return made


def groups(text):
    """(names in the active group, names in the Revoked group) of a keys section."""
    active = re.search(r'<tbody class="keys-active">(.*?)</tbody>', text, re.S).group(1)
    revoked = re.search(r'<tbody class="keys-revoked"[^>]*>(.*?)</tbody>', text, re.S)
    names = lambda part: re.findall(r'class="key-name"[^>]*>([^<]+)</a>', part)  # noqa: E731
    return names(active), names(revoked.group(1)) if revoked else []


def test_rows_keep_origin_usage_and_reason_for_the_detail_view(adam, demo):
    key = make_key(demo, "Nightly export")
    with demo.app.app_context():
        db.session.execute(sa.update(ApiKey).where(ApiKey.id == key.id).values(
            last_used_at=utcnow() - timedelta(minutes=3), last_used_ip="203.0.113.9",
            last_used_user_agent="GitHub-Actions-Runner/2.321.0 python-requests/2.32.3"))
        db.session.commit()
    text = adam.get(PAGE, htmx=True).text
    row = re.search(rf'<tr id="key-{key.id}".*?</tr>', text, re.S).group(0)
    assert "3 minutes ago" in row
    assert "203.0.113.9" not in row and "GitHub-Actions" not in row and "<svg" not in row
    assert '<span class="badge badge-active">Active</span>' in row
    detail = adam.get(f"{PAGE}/{key.id}", htmx=True).text
    assert "203.0.113.9" in detail and "GitHub-Actions-Runner" in detail


def test_revoked_keys_are_a_group_under_the_active_ones_and_old_ones_fold(adam, demo):
    revoked_keys(demo, 5)
    make_key(demo, "Zapier integration")
    text = adam.get(PAGE, htmx=True).text
    active, revoked = groups(text)
    assert active == ["Zapier integration"]
    assert revoked == ["Old script 5", "Old script 4", "Old script 3"]  # most recently revoked first
    assert 'id="revoked-group">Revoked <span class="keys-group-count">(5)</span>' in text
    assert 'href="/settings/api-keys?revoked=shown#revoked-keys">Show all revoked keys (5)</a>' in text
    assert 'hx-get="/settings/api-keys"' in text
    shown = adam.get(PAGE + "?revoked=shown", htmx=True).text
    assert groups(shown)[1] == [f"Old script {n}" for n in range(5, 0, -1)]
    assert "Show all revoked keys" not in shown  # never a link to the page already open
    assert 'hx-get="/settings/api-keys?revoked=shown"' in shown  # a refresh keeps them shown


@pytest.mark.parametrize("page", [PAGE, PAGE + "?revoked=shown"])
def test_a_key_revoked_a_moment_ago_stays_where_it_was(adam, demo, page):
    revoked_keys(demo, 5)
    first = make_key(demo, "Zapier integration")
    make_key(demo, "Nightly export")
    current = {"HX-Current-URL": "http://localhost" + page}
    answer = adam.post(revoke_url(first.id), htmx=True, headers=current).text
    active, revoked = groups(answer)
    assert active == ["Nightly export", "Zapier integration"]  # in its place, marked revoked
    row = re.search(rf'<tr id="key-{first.id}"[^>]*>.*?</tr>', answer, re.S).group(0)
    assert "is-revoked" in row and "autofocus" in row and "badge-revoked" in row and "by Adam Admin" in row
    if page.endswith("shown"):
        assert len(revoked) == 5 and "Show all revoked keys" not in answer
        assert 'hx-get="/settings/api-keys?revoked=shown"' in answer
    else:
        assert len(revoked) == 3 and "Show all revoked keys (6)" in answer  # it counts too
    # The next refresh puts it at the top of the Revoked group: never folded away.
    refreshed = adam.get(page, htmx=True, headers=current).text
    assert groups(refreshed)[1][0] == "Zapier integration"


def test_revoke_without_javascript_keeps_revoked_keys_shown(adam, demo):
    revoked_keys(demo, 5)
    key = make_key(demo)
    confirm = adam.get(revoke_url(key.id) + "?revoked=shown").text
    assert '<input type="hidden" name="revoked" value="shown">' in confirm
    response = adam.post(revoke_url(key.id), data={"revoked": "shown"})
    assert response.headers["Location"].endswith(f"{PAGE}?revoked=shown#key-{key.id}")


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize("typed", ["CI pipeline", "  ci PIPELINE ", "Ci Pipeline"])
def test_a_name_another_active_key_uses_is_refused_with_422(adam, demo, htmx, typed):
    make_key(demo, "CI pipeline")
    before = state(demo)
    response = adam.post("/settings/api-keys", data={"name": typed}, htmx=htmx)
    assert response.status_code == 422
    assert "Another active key is already named “CI pipeline”" in response.text
    assert 'aria-invalid="true"' in response.text
    assert state(demo) == before


def test_a_revoked_keys_name_can_be_used_again(adam, demo):
    old = make_key(demo, "CI pipeline")
    with demo.app.app_context():
        keys.revoke_key(demo.acme.id, old.id, demo.user("ava@acme.test").id)
    response = adam.post("/settings/api-keys", data={"name": "CI pipeline"}, htmx=True)
    assert response.status_code == 200 and "Copy your new key" in response.text


def test_the_name_rule_holds_in_the_service_too(demo, app):
    with app.app_context():
        keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "Deploy bot")
        with pytest.raises(keys.NameInUse) as refused:
            keys.create_key(demo.acme.id, demo.user("adam@acme.test").id, "DEPLOY BOT ")
        assert refused.value.field == "name"
        assert keys.name_taken(demo.acme.id, " deploy bot") == "Deploy bot"
        assert keys.name_taken(demo.acme.id, "Deploy bots") is None


def test_the_name_field_counts_and_shows_the_example(adam):
    dialog = adam.get(NEW, htmx=True).text
    assert 'placeholder="e.g. CI pipeline"' in dialog
    assert 'data-count="100"' in dialog and 'data-count-for="name"' in dialog and ">0/100<" in dialog


def test_create_replacement_suggests_the_name_and_at_the_cap_names_a_key_to_revoke(adam, demo):
    dialog = adam.get(NEW + "?name=Marketing+site+preview+builds", htmx=True).text
    assert 'value="Marketing site preview builds"' in dialog and ">29/100<" in dialog
    with demo.app.app_context():
        ava = demo.user("ava@acme.test")
        made = [keys.create_key(demo.acme.id, ava.id, f"Key {n}").key.id for n in range(10)]
        db.session.execute(sa.update(ApiKey).values(last_used_at=utcnow()))
        db.session.execute(sa.update(ApiKey).where(ApiKey.id == made[3]).values(
            last_used_at=utcnow() - timedelta(days=40)))
        db.session.commit()
    at_cap = adam.get(NEW + "?name=Key+11", htmx=True).text
    assert "already has 10 active keys" in at_cap
    assert re.search(rf'Revoke “<a href="/settings/api-keys/{made[3]}/revoke"[^>]*>Key 3</a>” first', at_cap)
