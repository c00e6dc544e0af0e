"""The leak alert on Settings → API Keys (SPEC §9): owners/admins see it until one dismisses it;
Activity shows the leak revocation and who dismissed the alert."""

from __future__ import annotations

import sqlalchemy as sa

from fvapp.leaks import reports as leaks
from fvapp.models import KeyLeakAlert
from fvapp.services import keys

URL = "https://gist.github.com/someone/abc"


def leak(demo, url=URL, name="CI pipeline"):
    with demo.app.app_context():
        created = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, name)
        leaks.handle_report([leaks.Reported(token=created.clear, type="forcevue_api_key", url=url)])
    return created


def test_alert_shown_to_managers_until_dismissed_without_js(demo, browser, browser_factory):
    created = leak(demo)
    browser.login("ava@acme.test")
    page = browser.get("/settings/api-keys")
    assert page.status_code == 200
    assert "leak-alert" in page.text and "was found public at" in page.text
    assert f'href="{URL}"' in page.text and "CI pipeline" in page.text
    # The row names the revoker as Activity does; the reason is in the key's detail.
    assert "by GitHub secret scanning" in page.text and "by ForceVue" not in page.text
    assert created.clear not in page.text
    admin = browser_factory()
    admin.login("adam@acme.test")
    assert "leak-alert" in admin.get("/settings/api-keys").text
    alert = demo.scalar(sa.select(KeyLeakAlert))
    # without CSRF: refused, still shown
    assert browser.post(f"/settings/api-keys/alerts/{alert.id}/dismiss", csrf=False).status_code == 400
    done = browser.post(f"/settings/api-keys/alerts/{alert.id}/dismiss")
    assert done.status_code == 303
    assert "leak-alert" not in browser.get("/settings/api-keys").text
    assert "leak-alert" not in admin.get("/settings/api-keys").text
    activity = browser.get("/settings/activity").text
    assert "GitHub secret scanning" in activity
    assert "Revoked API key CI pipeline" in activity and "reported public" in activity
    assert "Dismissed the leak alert about API key CI pipeline" in activity
    # again: idempotent, one dismissal recorded
    assert browser.post(f"/settings/api-keys/alerts/{alert.id}/dismiss").status_code == 303
    assert browser.get("/settings/activity").text.count("Dismissed the leak alert") == 1


def test_dismiss_with_htmx_redraws_the_section(demo, browser):
    leak(demo)
    browser.login("adam@acme.test")
    browser.refresh_token("/settings/api-keys")
    alert = demo.scalar(sa.select(KeyLeakAlert))
    response = browser.post(f"/settings/api-keys/alerts/{alert.id}/dismiss", htmx=True)
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#api-keys"
    assert 'id="api-keys"' in response.text and "leak-alert" not in response.text
    assert "Alert dismissed" in response.text
    assert demo.get(KeyLeakAlert, alert.id).dismissed_by_id == demo.user("adam@acme.test").id


def test_members_free_and_other_workspaces_get_404(demo, browser, browser_factory):
    leak(demo)
    alert = demo.scalar(sa.select(KeyLeakAlert))
    member = browser_factory()
    member.login("mia@acme.test")
    assert member.post(f"/settings/api-keys/alerts/{alert.id}/dismiss").status_code == 404
    fred = browser_factory()
    fred.login("fred@fox.test")
    assert fred.post(f"/settings/api-keys/alerts/{alert.id}/dismiss").status_code == 404
    browser.login("adam@acme.test")
    browser.switch(demo.fox.id)  # Adam administers Fox Free too: free plan, and not this alert's
    browser.refresh_token("/settings/general")
    assert browser.post(f"/settings/api-keys/alerts/{alert.id}/dismiss").status_code == 404
    assert browser.post("/settings/api-keys/alerts/not-a-uuid/dismiss").status_code == 404
    assert demo.get(KeyLeakAlert, alert.id).dismissed_at is None


def test_unsafe_url_is_not_a_link(demo, browser):
    leak(demo, url="javascript:alert(1)")
    browser.login("ava@acme.test")
    page = browser.get("/settings/api-keys").text
    assert 'href="javascript:' not in page and "javascript:alert(1)" in page


def test_guidance_links_never_commit_to_the_scanner_docs(demo, browser):
    browser.login("ava@acme.test")
    page = browser.get("/settings/api-keys").text
    assert 'href="/settings/api-keys/scanner" id="scanner-docs">Never commit a key to source control.' in page
    docs = browser.get("/settings/api-keys/scanner")
    assert docs.status_code == 200 and "fvapp-scan" in docs.text and "pre-commit" in docs.text


def test_the_alert_offers_a_replacement_and_the_key(demo, browser):
    leak(demo, name="Marketing site preview builds")
    key_id = demo.scalar(sa.select(KeyLeakAlert.api_key_id))
    browser.login("ava@acme.test")
    page = browser.get("/settings/api-keys").text
    alert = page[page.index('class="alert alert-error leak-alert"'):]
    alert = alert[:alert.index("</div>\n  </div>")]
    assert "revoked by GitHub secret scanning" in alert
    assert 'hx-get="/settings/api-keys/new?name=Marketing+site+preview+builds"' in alert
    assert '<input type="hidden" name="name" value="Marketing site preview builds">' in alert  # without JS
    assert ">Create replacement</button>" in alert
    assert f'href="/settings/api-keys/{key_id}"' in alert and ">View key</a>" in alert
    dialog = browser.get("/settings/api-keys/new?name=Marketing+site+preview+builds", htmx=True).text
    assert 'value="Marketing site preview builds"' in dialog
    # the revoker in the same words in the detail and in Activity
    assert "by GitHub secret scanning" in browser.get(f"/settings/api-keys/{key_id}").text
    assert "GitHub secret scanning" in browser.get("/settings/activity").text
