"""Key detail view (SPEC §9): opened from the row's name; same gates as the API Keys section."""

from __future__ import annotations

from fvapp.leaks import reports as leaks
from fvapp.services import keys

URL = "https://example.com/paste/1"


def test_detail_page_without_js_and_dialog_with_htmx(app, demo, browser):
    with app.app_context():
        created = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "Nightly export")
        detail_url = f"/settings/api-keys/{created.key.id}"  # loads the row while its session lasts
    browser.login("adam@acme.test")
    section = browser.get("/settings/api-keys").text
    assert f'href="{detail_url}"' in section and f'hx-get="{detail_url}"' in section
    page = browser.get(detail_url)
    assert page.status_code == 200
    assert "<html" in page.text.lower()  # a whole page without JavaScript
    for text in ("Nightly export", created.key.prefix, "Active", "Ava Owner", "Never"):
        assert text in page.text
    assert created.clear not in page.text
    dialog = browser.get(detail_url, htmx=True)
    assert dialog.status_code == 200
    assert '<dialog class="modal" id="key-detail"' in dialog.text and "<html" not in dialog.text.lower()


def test_detail_shows_revocation_by_whom_when_and_why(app, demo, browser):
    with app.app_context():
        ava = demo.user("ava@acme.test")
        manual = keys.create_key(demo.acme.id, ava.id, "Old script").key.id
        keys.revoke_key(demo.acme.id, manual, demo.user("adam@acme.test").id)
        leaked = keys.create_key(demo.acme.id, ava.id, "Leaky")
        leaks.handle_report([leaks.Reported(token=leaked.clear, type="t", url=URL)])
        leaked_id = leaked.key.id
    browser.login("ava@acme.test")
    page = browser.get(f"/settings/api-keys/{manual}").text
    assert "Revoked" in page and "by Adam Admin" in page
    page = browser.get(f"/settings/api-keys/{leaked_id}").text
    assert "Revoked" in page and f"leaked: found public at {URL}" in page and "Revoke…" not in page


def test_detail_gates(app, demo, browser, browser_factory):
    with app.app_context():
        created = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "Gate test")
        path = f"/settings/api-keys/{created.key.id}"
    member = browser_factory()
    member.login("mia@acme.test")
    assert member.get(path).status_code == 404
    assert member.get(path, htmx=True).status_code == 404
    fred = browser_factory()
    fred.login("fred@fox.test")
    assert fred.get(path).status_code == 404
    # Adam is admin of Acme (pro) and of Fox (free): from Fox, Acme's key is not found
    browser.login("adam@acme.test")
    assert browser.get(path).status_code == 200
    browser.switch(demo.fox.id)
    assert browser.get(path).status_code == 404
    assert browser.get("/settings/api-keys/not-a-uuid").status_code == 404


def test_other_paid_workspaces_key_is_404(app, demo, browser):
    from fvapp.extensions import db
    from fvapp.models import Membership, Workspace

    with app.app_context():
        other = Workspace(name="Beta Co", plan="pro")
        db.session.add(other)
        db.session.flush()
        other_id = other.id
        db.session.add(Membership(user_id=demo.user("adam@acme.test").id, workspace_id=other_id, role="owner"))
        db.session.commit()
        acme_key = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "Acme only").key.id
    browser.login("adam@acme.test")
    browser.switch(other_id)
    assert "Beta Co" in browser.get("/settings/api-keys").text  # the section is open to him here
    assert browser.get(f"/settings/api-keys/{acme_key}").status_code == 404
