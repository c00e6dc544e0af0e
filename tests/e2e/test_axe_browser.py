"""axe-core 4 over every page and dialog of the app at desktop and phone width: any
serious or critical violation fails (tests/e2e/axe.py). The error pages (403/404/500/503 in the
app shell) are audited in test_error_pages_browser.py."""

import re

import pytest
from playwright.sync_api import expect

from fvapp.services import keys, members

from .axe import audit
from .conftest import DESKTOP, PHONE, login

# (path, screen, [(link that opens a dialog, the dialog's role, screen)]) after the API Keys section
SETTINGS_SCREENS = [
    ("/settings/members", "members", [("Change role of Adam Admin", "dialog", "role dialog"),
                                      ("Remove Mia Member", "alertdialog", "remove dialog")]),
    ("/settings/subscription", "subscription", [("Switch to Free", "dialog", "plan dialog")]),
    ("/settings/activity", "activity", []),
    ("/settings/no-such-page", "404 signed in", []),
]


def seed(demo):
    ava = demo.user("ava@acme.test")
    # A second workspace, so the header has a workspace menu to audit.
    members.add_member(demo.fox.id, demo.user("fred@fox.test").id, "ava@acme.test", "member")
    keys.create_key(demo.acme.id, ava.id, "Zapier integration")
    for n in range(4):
        old = keys.create_key(demo.acme.id, ava.id, f"Old script {n + 1}").key
        keys.revoke_key(demo.acme.id, old.id, ava.id)


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_no_serious_or_critical_axe_violations(app_context, page_factory, demo, backend, width):
    seed(demo)
    page, watch = page_factory(viewport=DESKTOP if width == "desktop" else PHONE)
    found: list[str] = []
    page.goto("/login")
    audit(page, "login", found)
    page.get_by_label("Email").fill("ava@acme.test")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    audit(page, "login after a wrong password", found)
    login(page, "ava@acme.test")
    audit(page, "initiatives", found)
    page.get_by_label(re.compile("Switch workspace")).click()
    expect(page.get_by_role("button", name=re.compile("Fox Free"))).to_be_visible()
    audit(page, "workspace menu open", found)
    page.keyboard.press("Escape")

    page.goto("/settings/api-keys?revoked=shown")
    audit(page, "keys with active and revoked", found)
    page.get_by_role("button", name="Create key").click()
    create = page.get_by_role("dialog", name="Create API key")
    expect(create.get_by_label("Name")).to_be_focused()
    audit(page, "create dialog", found)
    create.get_by_role("button", name="Create key").click()
    expect(create.get_by_text("Give the key a name")).to_be_visible()
    audit(page, "create dialog with error", found)
    create.get_by_label("Name").fill("CI pipeline")
    create.get_by_role("button", name="Create key").click()
    reveal = page.get_by_role("dialog", name="Copy your new key")
    expect(reveal.get_by_role("button", name="Copy")).to_be_focused()
    audit(page, "reveal dialog", found)
    page.keyboard.press("Escape")
    expect(reveal.get_by_text("Close anyway?")).to_be_visible()
    audit(page, "reveal dialog asking before closing", found)
    reveal.get_by_role("button", name="Close anyway").click()
    page.get_by_role("button", name="Revoke CI pipeline").click()
    expect(page.get_by_role("alertdialog")).to_be_visible()
    audit(page, "revoke dialog", found)
    page.keyboard.press("Escape")
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    page.get_by_role("link", name="Zapier integration").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    audit(page, "key detail dialog", found)
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    ava = demo.user("ava@acme.test")
    for n in range(keys.MAX_ACTIVE_KEYS - 2):
        keys.create_key(demo.acme.id, ava.id, f"Service {n + 1}")
    page.goto("/settings/api-keys")
    expect(page.get_by_text("10 of 10 active keys")).to_be_visible()
    audit(page, "keys at the cap", found)
    page.goto("/settings/api-keys/new")
    audit(page, "create page at the cap", found)

    page.goto("/settings/members")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_label("Add a member by email")).to_be_focused()
    audit(page, "members, add with an error", found)

    for path, screen, dialogs in SETTINGS_SCREENS:
        page.goto(path)
        audit(page, screen, found)
        for link, role, dialog in dialogs:  # opened from its link, audited, closed with Escape
            page.get_by_role("link", name=link).click()
            expect(page.get_by_role(role)).to_be_visible()
            audit(page, dialog, found)
            page.keyboard.press("Escape")

    assert found == [], "\n".join(found)
    watch.assert_clean()
